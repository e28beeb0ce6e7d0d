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

Durability: a hold is committed without waiting for the disk (SQLite ``synchronous=normal`` in WAL, PostgreSQL
``synchronous_commit = off`` for this transaction only): a crash of the ledger process loses nothing, a power cut
may lose the last fraction of a second of holds. A hold is a guard against concurrent spending, not a record of
money (the terminal's journal entry is, and batches stay fully synchronous), so the worst a lost hold allows is
one concurrent payment that the ledger then applies and flags like any double spend; waiting for an fsync would
add its 2–12 ms to every sale.

Read order. On PostgreSQL every read is one statement, so one snapshot (READ COMMITTED, taken after the member's
lock): the holds, which of them are applied and the balance agree with each other exactly. On SQLite (per-statement
snapshots): open holds, then which of them are applied, then the applied balance. A batch committing between two
reads can only count a payment twice (a decline that a retry would approve), never not at all.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import peewee

from cardkit.authorization import APPROVED, AUTH_FIELD, DECLINED, AuthorizationAnswer, AuthorizationRequest
from cardkit.core.state import MemberState
from cardkit.journal import JournalEntry
from ledger import events, store
from ledger.authorize_decision import LiveFigures, OpenHold, decide
from ledger.errors import LedgerError

holds_db = peewee.DatabaseProxy()
_sqlite_writer = threading.Lock()
IN_CHUNK = 500
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
        pragmas = {**store.SQLITE_PRAGMAS, "cache_size": -8192, "synchronous": "normal"}
        database = peewee.SqliteDatabase(str(path), pragmas=pragmas,
                                         timeout=int(store.SQLITE_PRAGMAS["busy_timeout"]) / 1000)
    holds_db.initialize(database)
    database.create_tables([Authorization], safe=True)
    return database


@contextlib.contextmanager
def _write_transaction() -> Iterator[None]:
    """The holds' write transaction. On SQLite, threads of this process queue on a lock first: SQLite's own wait
    for a busy file polls with growing sleeps, which under 50 concurrent requests let some wait seconds."""
    database = holds_db.obj
    if isinstance(database, peewee.SqliteDatabase):
        with _sqlite_writer, database.atomic("IMMEDIATE"):
            yield
        return
    with database.atomic():
        yield


def _lock_member(member_id: str) -> None:
    if store.is_postgres():
        # One round trip for both (each is a wait for the server and for the GIL back, under load): the commit
        # does not wait for the disk (see "Durability" in the module doc), and the member's lock is taken.
        store.db.execute_sql("SET LOCAL synchronous_commit = off; SELECT pg_advisory_xact_lock(hashtext(%s))",
                             (f"cardpos-member:{member_id}",))


@dataclass(frozen=True)
class Outcome:
    answer: AuthorizationAnswer
    replayed: bool


def _sql(database: Any, text: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Plain SQL on the hot path (``?`` marks; ``%s`` on PostgreSQL): the query builder cost more than the queries."""
    if isinstance(database, peewee.PostgresqlDatabase):
        text = text.replace("?", "%s")
    cursor = database.execute_sql(text, params)
    return list(cursor.fetchall()) if cursor.description else []


_T = '"authorization"'
_ANSWER_COLUMNS = '"request_digest", "terminal_id", "decision", "reason", "auth_id"'
_INSERT = (f'INSERT INTO {_T} ("entry_uuid", "auth_id", "terminal_id", "member_id", "request_digest", "sv", "points", '
           '"coupons", "decision", "reason", "state", "created_ms", "expires_ms", "closed_ms") '
           'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')


def authorize(request: AuthorizationRequest, digest: bytes, *, terminal_id: str, now_ms: int,
              ttl_ms: int = DEFAULT_HOLD_TTL_MS) -> Outcome:
    """Decide ``request`` and record the decision (a hold when approved), or replay the recorded one."""
    # The PostgreSQL path sends its own BEGIN and COMMIT, so only outside a caller's transaction.
    if store.is_postgres() and not store.db.obj.in_transaction():
        return _authorize_postgres(request, digest, terminal_id=terminal_id, now_ms=now_ms, ttl_ms=ttl_ms)
    holds = holds_db.obj
    with _write_transaction():
        _lock_member(request.member_id)
        existing = _sql(holds, f'SELECT {_ANSWER_COLUMNS} FROM {_T} WHERE "entry_uuid" = ?', (request.entry_uuid,))
        if existing:
            return _replay(request, digest, terminal_id, existing[0])
        decision, reason = _decide_locked(request, now_ms)
        auth_id = secrets.token_hex(8)
        _sql(holds, _INSERT, _insert_params(request, digest, terminal_id, auth_id, decision, reason, now_ms, ttl_ms))
        return Outcome(AuthorizationAnswer(request.entry_uuid, decision, reason, auth_id), replayed=False)


def _replay(request: AuthorizationRequest, digest: bytes, terminal_id: str, recorded: Sequence[Any]) -> Outcome:
    recorded_digest, recorded_terminal, decision, reason, auth_id = recorded
    if recorded_digest != digest.hex() or recorded_terminal != terminal_id:
        raise AuthorizationConflict(f"entry {request.entry_uuid} was authorized before with another request")
    return Outcome(AuthorizationAnswer(request.entry_uuid, str(decision), str(reason), str(auth_id)), replayed=True)


def _insert_params(request: AuthorizationRequest, digest: bytes, terminal_id: str, auth_id: str, decision: str,
                   reason: str, now_ms: int, ttl_ms: int) -> tuple[Any, ...]:
    return (request.entry_uuid, auth_id, terminal_id, request.member_id, digest.hex(), request.sv, request.points,
            json.dumps(sorted(request.coupons)), decision, reason, HELD if decision == APPROVED else DECLINED_STATE,
            now_ms, now_ms + ttl_ms, None if decision == APPROVED else now_ms)


def _postgres_read() -> str:
    """Everything a decision reads, as one statement (one snapshot): the recorded answer for the uuid, the
    member's held rows each with whether its entry is applied, whether the request's own entry is applied, the
    member's figures, and which of the requested coupons are the member's."""
    applied = store.AppliedEntry._meta.table_name
    member, proj = store.Member._meta.table_name, store.MemberProjection._meta.table_name
    coupon = store.Coupon._meta.table_name
    return (
        f'SELECT (SELECT json_build_array({_ANSWER_COLUMNS}) FROM {_T} WHERE "entry_uuid" = %s), '
        f'(SELECT json_agg(json_build_array(a."entry_uuid", a."sv", a."points", a."coupons", a."expires_ms", '
        f'EXISTS (SELECT 1 FROM "{applied}" e WHERE e."uuid" = a."entry_uuid"))) '
        f'FROM {_T} a WHERE a."member_id" = %s AND a."state" = %s), '
        f'EXISTS (SELECT 1 FROM "{applied}" WHERE "uuid" = %s), '
        f'(SELECT json_build_array(m."currency", m."opening_balance", m."opening_points", p."balance", p."points", '
        f'CASE WHEN %s THEN p."state" END) FROM "{member}" m LEFT JOIN "{proj}" p ON p."member_id" = m."member_id" '
        f'WHERE m."member_id" = %s), '
        f'(SELECT json_agg("coupon_id") FROM "{coupon}" WHERE "member_id" = %s AND "coupon_id" = ANY(%s::text[]))')


def _authorize_postgres(request: AuthorizationRequest, digest: bytes, *, terminal_id: str, now_ms: int,
                        ttl_ms: int) -> Outcome:
    """The PostgreSQL path in two round trips instead of eight: every round trip is a wait for the server and
    then for the GIL back, and under batch load the GIL waits were what an authorization spent its time on.

    1. ``BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_advisory_xact_lock(..); SELECT <every read>``:
       sent as one query string, the statements still run one after another, each with its own snapshot under
       READ COMMITTED, so the reads see every hold committed by whoever held the member's lock before us.
    2. ``UPDATE <settled / expired>; INSERT <the decision>; COMMIT`` (or ``COMMIT`` alone for a replay).

    Peewee runs psycopg2 in autocommit mode and sends BEGIN itself, so sending it here is the same transaction
    it would open; on any error the transaction is rolled back before the error goes on."""
    database = store.db.obj
    member_id = request.member_id
    read = ("BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_advisory_xact_lock(hashtext(%s)); "
            + _postgres_read())
    params = (f"cardpos-member:{member_id}", request.entry_uuid, member_id, HELD, request.entry_uuid,
              bool(request.coupons), member_id, member_id, sorted(request.coupons))
    try:
        recorded, held, own_applied, figures_row, coupons = database.execute_sql(read, params).fetchone()
        if recorded is not None:
            outcome = _replay(request, digest, terminal_id, recorded)
            database.execute_sql("COMMIT")
            return outcome
        rows: list[OpenRow] = [(str(u), int(sv), int(pts), list(json.loads(c)) if c else [], int(exp))
                               for u, sv, pts, c, exp, _ in held or ()]
        applied = {str(row[0]) for row in held or () if row[5]}
        if own_applied:
            applied.add(request.entry_uuid)
        figures = _figures_from_row(figures_row, bool(request.coupons))
        decision, reason = _decide_read(request, figures, rows, applied, now_ms, frozenset(coupons or ()))
        auth_id = secrets.token_hex(8)
        write: str = ""
        write_params: tuple[Any, ...] = ()
        if figures is not None and request.entry_uuid not in applied:  # what the SQLite path closes too
            write, write_params = _closing_statements(rows, applied, now_ms)
        write += _INSERT.replace("?", "%s") + "; COMMIT"
        write_params += _insert_params(request, digest, terminal_id, auth_id, decision, reason, now_ms, ttl_ms)
        database.execute_sql(write, write_params)
        return Outcome(AuthorizationAnswer(request.entry_uuid, decision, reason, auth_id), replayed=False)
    except BaseException:
        with contextlib.suppress(Exception):
            database.execute_sql("ROLLBACK")
        raise


def _closing_statements(rows: list[OpenRow], applied: set[str], now_ms: int) -> tuple[str, tuple[Any, ...]]:
    """``UPDATE`` statements (``;``-terminated) moving settled and expired held rows to their state."""
    text = ""
    params: tuple[Any, ...] = ()
    for state, uuids in _closing(rows, applied, now_ms):
        if uuids:
            text += f'UPDATE {_T} SET "state" = %s, "closed_ms" = %s WHERE "entry_uuid" = ANY(%s::text[]) ' \
                    'AND "state" = %s; '
            params += (state, now_ms, uuids, HELD)
    return text, params


def _applied(uuids: Iterable[str]) -> set[str]:
    wanted = sorted(set(uuids))
    found: set[str] = set()
    table = store.AppliedEntry._meta.table_name
    for start in range(0, len(wanted), IN_CHUNK):  # SQLite allows 999 parameters in older builds
        chunk = wanted[start:start + IN_CHUNK]
        rows = _sql(store.db.obj, f'SELECT "uuid" FROM "{table}" WHERE "uuid" IN ({", ".join("?" * len(chunk))})',
                    chunk)
        found.update(str(row[0]) for row in rows)
    return found


OpenRow = tuple[str, int, int, list[str], int]


def _open_rows(member_id: str) -> list[OpenRow]:
    """``(uuid, sv, points, coupons, expires_ms)`` of the member's held rows."""
    rows = _sql(holds_db.obj, f'SELECT "entry_uuid", "sv", "points", "coupons", "expires_ms" FROM {_T} '
                              'WHERE "member_id" = ? AND "state" = ?', (member_id, HELD))
    return [(str(u), int(sv), int(pts), list(json.loads(c)) if c else [], int(exp)) for u, sv, pts, c, exp in rows]


def _figures(member_id: str, with_coupons: bool) -> LiveFigures | None:
    """The member's applied figures (projection, else opening), in one statement; None for no such member."""
    member, proj = store.Member._meta.table_name, store.MemberProjection._meta.table_name
    rows = _sql(store.db.obj, f'SELECT m."currency", m."opening_balance", m."opening_points", p."balance", '
                              f'p."points", p."state" FROM "{member}" m LEFT JOIN "{proj}" p ON p."member_id" = '
                              'm."member_id" WHERE m."member_id" = ?', (member_id,))
    return _figures_from_row(rows[0] if rows else None, with_coupons)


def _figures_from_row(row: Sequence[Any] | None, with_coupons: bool) -> LiveFigures | None:
    """``(currency, opening_balance, opening_points, balance, points, state)`` as live figures."""
    if row is None:
        return None
    currency, opening_balance, opening_points, balance, points, state = row
    used: frozenset[str] = frozenset()
    if with_coupons and state:
        used = MemberState.from_mapping(json.loads(state)).used_coupons
    return LiveFigures(currency=str(currency), balance=int(opening_balance if balance is None else balance),
                       points=int(opening_points if points is None else points), used_coupons=used,
                       member_coupons=frozenset())


def _decide_locked(request: AuthorizationRequest, now_ms: int) -> tuple[str, str]:
    """Inside the member's lock: close what is settled or expired, then decide on the live figures."""
    rows = _open_rows(request.member_id)
    applied = _applied([*(r[0] for r in rows), request.entry_uuid])  # before the balance: see the module doc
    figures = _figures(request.member_id, bool(request.coupons))
    if figures is not None and request.entry_uuid not in applied:
        _close(rows, applied, now_ms)
    coupons: frozenset[str] = frozenset()
    if figures is not None and request.entry_uuid not in applied and request.coupons:
        coupons = frozenset(str(c.coupon_id) for c in store.Coupon.select(store.Coupon.coupon_id).where(
            (store.Coupon.member_id == request.member_id) & store.Coupon.coupon_id.in_(list(request.coupons))))
    return _decide_read(request, figures, rows, applied, now_ms, coupons)


def _decide_read(request: AuthorizationRequest, figures: LiveFigures | None, rows: list[OpenRow],
                 applied: set[str], now_ms: int, member_coupons: frozenset[str]) -> tuple[str, str]:
    """The decision on what was read (pure): ``member_coupons`` are the requested coupons that are the member's."""
    if figures is None:
        return DECLINED, "unknown_member"
    if request.entry_uuid in applied:
        return DECLINED, "already_recorded"
    holds = [OpenHold(u, sv, pts, tuple(coupons)) for u, sv, pts, coupons, exp in rows
             if u not in applied and exp > now_ms]
    decision = decide(request, replace(figures, member_coupons=member_coupons), holds)
    return (APPROVED, "") if decision.approved else (DECLINED, decision.reason)


def _closing(rows: list[OpenRow], applied: set[str], now_ms: int) -> list[tuple[str, list[str]]]:
    """The held rows to move: ``[(settled, uuids), (expired, uuids)]``."""
    settled = [r[0] for r in rows if r[0] in applied]
    expired = [r[0] for r in rows if r[0] not in applied and r[4] <= now_ms]
    return [(SETTLED, settled), (EXPIRED, expired)]


def _close(rows: list[OpenRow], applied: set[str], now_ms: int) -> None:
    for state, uuids in _closing(rows, applied, now_ms):
        _set_state(uuids, state, now_ms)


def _set_state(uuids: list[str], state: str, now_ms: int) -> None:
    for start in range(0, len(uuids), IN_CHUNK):
        Authorization.update(state=state, closed_ms=now_ms).where(
            Authorization.entry_uuid.in_(uuids[start:start + IN_CHUNK]) & (Authorization.state == HELD)).execute()


def sweep(now_ms: int, *, limit: int = 10_000) -> dict[str, int]:
    """Settle holds whose entry is applied and expire the ones past their time; returns counts by new state."""
    with _write_transaction():
        query = Authorization.select(Authorization.entry_uuid, Authorization.expires_ms).where(
            Authorization.state == HELD).limit(limit).tuples()
        rows: list[OpenRow] = [(str(u), 0, 0, [], int(exp)) for u, exp in query.iterator()]
        applied = _applied(r[0] for r in rows)
        _close(rows, applied, now_ms)
    expired = sum(1 for r in rows if r[0] not in applied and r[4] <= now_ms)
    return {SETTLED: len(applied), EXPIRED: expired}


def settle_entries(entries: Iterable[JournalEntry], now_ms: int) -> int:
    """The synced entries settle their holds (called after their batch committed: ``install``). Only entries that
    went through authorization carry the ``auth`` field; a hold whose entry is applied but not yet settled here
    is still not counted (the decision checks applied uuids), so this keeps the open set small, nothing more."""
    uuids = [e.uuid for e in entries if AUTH_FIELD in e.payload]
    if not uuids:
        return 0
    with _write_transaction():
        _set_state(uuids, SETTLED, now_ms)
    return len(uuids)


def _on_event(event: events.LedgerEvent) -> None:
    if isinstance(event, events.BatchApplied):
        settle_entries(event.entries, event.received_ms)


def install() -> None:
    """Settle holds as their entries' batches are applied (an ``events`` observer)."""
    events.subscribe(_on_event)


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
