"""Online authorization at the ledger: holds keyed by the entry's uuid, serialized per member.

State machine of one ``Authorization`` row (docs/sync-protocol.md, "Online authorization"):

    (request) ──approved──▶ held ──its entry applied──▶ settled
                  │           ├──expires_ms passed───▶ expired
                  │           └──released by an admin / the terminal──▶ released
                  └─declined─▶ declined (kept so a retry gets the same answer)

A retried request with the same uuid and body gets the recorded answer and never holds twice; the same uuid with
another body is refused (``uuid_reused``). Settlement is derived, not pushed: a hold whose uuid is an applied entry
no longer counts (the applied balance already has it), so the batch path needs no change and never waits on this
one; rows are moved to ``settled`` / ``expired`` lazily when the member is next authorized and by ``sweep``.

Where the rows live, and how concurrent authorizations for one member are serialized:
- **PostgreSQL**: the ``authorization`` table in the ledger database; each authorization takes
  ``pg_advisory_xact_lock`` on the member, so two workers never decide for the same member at once, while batch
  applies (which lock the ``members`` counter row) and authorizations for other members go on in parallel.
- **SQLite**: a file of its own next to the ledger database (``authorizations.sqlite3``). SQLite has one write
  lock per file and a 100-op batch apply holds the ledger file's for tens of milliseconds (seconds of queue under
  load), so an authorization written there would wait behind every queued batch and time out. In its own file it
  takes only its own tiny write lock (``BEGIN IMMEDIATE``, a few reads and one insert) and reads the ledger file
  through WAL without waiting.

Read order (READ COMMITTED on PostgreSQL, per-statement snapshots on SQLite): open holds, then which of them are
applied, then the applied balance. A batch committing between two reads can only count a payment twice (a
decline that a retry would approve), never not at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee

from cardkit.authorization import APPROVED, DECLINED, AuthorizationAnswer, AuthorizationRequest
from ledger import projection, store
from ledger.authorize_decision import LiveFigures, OpenHold, decide
from ledger.errors import LedgerError

holds_db = peewee.DatabaseProxy()
"""The database of the ``authorization`` table: the ledger's own on PostgreSQL, its own file on SQLite."""

HOLDS_SQLITE_NAME = "authorizations.sqlite3"
DEFAULT_HOLD_TTL_MS = 30 * 60 * 1000
"""A hold not followed by its entry within 30 minutes expires (a terminal syncs every 30 s when online)."""

HELD, SETTLED, RELEASED, EXPIRED, DECLINED_STATE = "held", "settled", "released", "expired", "declined"
STATES = (HELD, SETTLED, RELEASED, EXPIRED, DECLINED_STATE)


class AuthorizationConflict(LedgerError):
    """The same entry uuid was authorized before with another request body."""


class Authorization(peewee.Model):
    """One authorization request and its decision, keyed by the uuid of the journal entry it is for."""

    entry_uuid = peewee.CharField(primary_key=True, max_length=36)
    auth_id = peewee.CharField(max_length=16, unique=True)
    terminal_id = peewee.CharField(max_length=40)
    member_id = peewee.CharField(max_length=40)
    request_digest = peewee.CharField(max_length=64)
    sv = peewee.BigIntegerField()
    points = peewee.BigIntegerField()
    coupons = store.JSONField(default=list)
    decision = peewee.CharField(max_length=8)
    reason = peewee.CharField(max_length=32, default="")
    state = peewee.CharField(max_length=8)
    created_ms = peewee.BigIntegerField()
    expires_ms = peewee.BigIntegerField()
    closed_ms = peewee.BigIntegerField(null=True)

    class Meta:
        database = holds_db
        table_name = "authorization"
        legacy_table_names = False
        indexes = ((("member_id", "state"), False), (("state", "expires_ms"), False))


def holds_path() -> Path | None:
    """The SQLite file of the holds (None on PostgreSQL)."""
    database = store.db.obj
    if isinstance(database, peewee.SqliteDatabase):
        return Path(database.database).with_name(HOLDS_SQLITE_NAME)
    return None


def open_holds() -> peewee.Database:
    """Bind the ``authorization`` table next to the open ledger database and create it if needed."""
    path = holds_path()
    database: peewee.Database
    if path is None:
        database = store.db.obj
    else:
        store.private_sqlite_files(path)
        pragmas = {**store.SQLITE_PRAGMAS, "cache_size": -8192}
        database = peewee.SqliteDatabase(str(path), pragmas=pragmas,
                                         timeout=int(store.SQLITE_PRAGMAS["busy_timeout"]) / 1000)
    holds_db.initialize(database)
    database.create_tables([Authorization], safe=True)
    return database


def _write_transaction() -> Any:
    database = holds_db.obj
    if isinstance(database, peewee.SqliteDatabase):
        return database.atomic("IMMEDIATE")
    return database.atomic()


def _lock_member(member_id: str) -> None:
    if store.is_postgres():
        store.db.execute_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cardpos-member:{member_id}",))


@dataclass(frozen=True)
class Outcome:
    answer: AuthorizationAnswer
    replayed: bool


def authorize(request: AuthorizationRequest, digest: bytes, *, terminal_id: str, now_ms: int,
              ttl_ms: int = DEFAULT_HOLD_TTL_MS) -> Outcome:
    """Decide ``request`` and record the decision (a hold when approved), or replay the recorded one."""
    with _write_transaction():
        _lock_member(request.member_id)
        existing = Authorization.get_or_none(Authorization.entry_uuid == request.entry_uuid)
        if existing is not None:
            if existing.request_digest != digest.hex() or existing.terminal_id != terminal_id:
                raise AuthorizationConflict(f"entry {request.entry_uuid} was authorized before with another request")
            return Outcome(_answer(existing), replayed=True)
        decision, reason = _decide_locked(request, now_ms)
        row = Authorization.create(
            entry_uuid=request.entry_uuid, auth_id=secrets.token_hex(8), terminal_id=terminal_id,
            member_id=request.member_id, request_digest=digest.hex(), sv=request.sv, points=request.points,
            coupons=list(request.coupons), decision=decision, reason=reason,
            state=HELD if decision == APPROVED else DECLINED_STATE, created_ms=now_ms, expires_ms=now_ms + ttl_ms,
            closed_ms=None if decision == APPROVED else now_ms)
        return Outcome(_answer(row), replayed=False)


def _answer(row: Authorization) -> AuthorizationAnswer:
    return AuthorizationAnswer(entry_uuid=str(row.entry_uuid), decision=str(row.decision), reason=str(row.reason),
                               auth_id=str(row.auth_id))


def _applied(uuids: Iterable[str]) -> set[str]:
    wanted = sorted(set(uuids))
    if not wanted:
        return set()
    query = store.AppliedEntry.select(store.AppliedEntry.uuid).where(store.AppliedEntry.uuid.in_(wanted))
    return {str(row.uuid) for row in query}


def _decide_locked(request: AuthorizationRequest, now_ms: int) -> tuple[str, str]:
    """Inside the member's lock: close what is settled or expired, then decide on the live figures."""
    member = store.Member.get_or_none(store.Member.member_id == request.member_id)
    if member is None:
        return DECLINED, "unknown_member"
    rows = list(Authorization.select().where((Authorization.member_id == request.member_id)
                                             & (Authorization.state == HELD)))
    applied = _applied([*(str(r.entry_uuid) for r in rows), request.entry_uuid])  # before the balance: see above
    state = projection.projected_state(member)
    if request.entry_uuid in applied:
        return DECLINED, "already_recorded"
    _close(rows, applied, now_ms)
    holds = [OpenHold(str(r.entry_uuid), int(r.sv), int(r.points), tuple(r.coupons or ()))
             for r in rows if str(r.entry_uuid) not in applied and int(r.expires_ms) > now_ms]
    coupons: set[str] = set()
    if request.coupons:
        coupons = {str(c.coupon_id) for c in store.Coupon.select(store.Coupon.coupon_id).where(
            (store.Coupon.member_id == request.member_id) & store.Coupon.coupon_id.in_(list(request.coupons)))}
    figures = LiveFigures(currency=str(member.currency), balance=state.balance, points=state.points,
                          used_coupons=state.used_coupons, member_coupons=coupons)
    decision = decide(request, figures, holds)
    return (APPROVED, "") if decision.approved else (DECLINED, decision.reason)


def _close(rows: list[Authorization], applied: set[str], now_ms: int) -> None:
    settled = [str(r.entry_uuid) for r in rows if str(r.entry_uuid) in applied]
    expired = [str(r.entry_uuid) for r in rows if str(r.entry_uuid) not in applied and int(r.expires_ms) <= now_ms]
    for state, uuids in ((SETTLED, settled), (EXPIRED, expired)):
        if uuids:
            Authorization.update(state=state, closed_ms=now_ms).where(
                Authorization.entry_uuid.in_(uuids) & (Authorization.state == HELD)).execute()


def sweep(now_ms: int, *, limit: int = 10_000) -> dict[str, int]:
    """Settle holds whose entry is applied and expire the ones past their time; returns counts by new state."""
    with _write_transaction():
        rows = list(Authorization.select().where(Authorization.state == HELD).limit(limit))
        applied = _applied(str(r.entry_uuid) for r in rows)
        _close(rows, applied, now_ms)
    expired = sum(1 for r in rows if str(r.entry_uuid) not in applied and int(r.expires_ms) <= now_ms)
    return {SETTLED: len(applied), EXPIRED: expired}


def release(entry_uuid: str, now_ms: int) -> bool:
    """Release a hold whose entry will never come (an admin's decision); False when it was not held."""
    with _write_transaction():
        count = Authorization.update(state=RELEASED, closed_ms=now_ms).where(
            (Authorization.entry_uuid == entry_uuid) & (Authorization.state == HELD)).execute()
    return bool(count)


def counts_by_state() -> dict[str, int]:
    query = Authorization.select(Authorization.state, peewee.fn.COUNT(Authorization.entry_uuid)).group_by(
        Authorization.state).tuples()
    rows: list[tuple[Any, Any]] = list(query)  # type: ignore[arg-type]  # .tuples() rows
    return {str(row[0]): int(row[1]) for row in rows}
