"""Held authorizations as admins and the clock see them: list, release by hand, expire on a schedule.

The holds themselves are ``ledger.authorize``'s ``authorization`` rows (docs/sync-protocol.md §3f has the state
machine). The decision path closes a member's settled and expired holds lazily, when that member is next
authorized; this module adds what does not wait for a next authorization:

- **The sweep** (``sweep``), run by every ledger server process every ``CARDPOS_LEDGER_HOLD_SWEEP_S`` seconds
  (default 60) on its background loop (``ledger.periodic``): holds whose entry was applied become ``settled``,
  holds past their expiry become ``expired``. Each expiry is written to the audit log (action ``hold_expire``,
  actor ``hold-sweep``, the hold's id as subject) in the same ledger transaction as the expiry is decided, so an
  expiry without its audit line can only follow a crash between the two commits on SQLite, where the holds live
  in a file of their own. With several worker processes (PostgreSQL) one sweeps at a time (an advisory lock that
  the others skip).
- **Release** (``release``): an admin gives a hold back before it expires (its operation will never come: the
  till broke before recording it), with a reason, audited as ``hold_release``. A hold that is settled (its
  operation is applied, even if the sweep has not marked it yet), expired, released or a decline holds nothing
  and is refused with the reason.
- **Listing** (``list_holds``): newest first, by member and state.

``CARDPOS_LEDGER_HOLD_TTL_S`` (default 1800, the 30 minutes of ``authorize.DEFAULT_HOLD_TTL_MS``) is how long a
new hold lasts. Both settings are read from the environment of ``ledger serve`` (its workers inherit it); a value
that is not a whole number is logged and ignored, and one out of range is brought within it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import peewee

from cardkit.core.money import Money
from ledger import authorize, periodic, store
from ledger.authorize import EXPIRED, HELD, RELEASED, SETTLED, STATES, Authorization
from ledger.env_settings import env_int
from ledger.errors import LedgerError

log = logging.getLogger("cardpos.ledger.holds")

TTL_ENV = "CARDPOS_LEDGER_HOLD_TTL_S"
SWEEP_ENV = "CARDPOS_LEDGER_HOLD_SWEEP_S"
DEFAULT_SWEEP_S = 60
DEFAULT_TTL_S = authorize.DEFAULT_HOLD_TTL_MS // 1000
SWEEP_JOB = "hold-sweep"
SWEEP_ACTOR = "hold-sweep"
SWEEP_LIMIT = 10_000
"""Most holds one sweep looks at; the next sweep takes the rest."""
MAX_REASON = 200
LIST_LIMIT = 200
PG_SWEEP_LOCK = "cardpos-hold-sweep"


class HoldRefused(LedgerError):
    """An admin's action on a hold that is not possible (unknown, or no longer held)."""


@dataclass(frozen=True, slots=True)
class HoldSettings:
    ttl_s: int = DEFAULT_TTL_S
    """How long a new hold lasts when its operation does not reach the ledger."""
    sweep_s: int = DEFAULT_SWEEP_S
    """How often a ledger server process sweeps settled and expired holds."""

    @property
    def ttl_ms(self) -> int:
        return self.ttl_s * 1000


def settings_from_env() -> HoldSettings:
    return HoldSettings(ttl_s=env_int(TTL_ENV, DEFAULT_TTL_S, 1, 7 * 86_400),
                        sweep_s=env_int(SWEEP_ENV, DEFAULT_SWEEP_S, 1, 86_400))


def install(settings: HoldSettings | None = None) -> HoldSettings:
    """Sweep on this server process's background loop; returns the settings (the API holds for ``ttl_ms``)."""
    settings = settings or settings_from_env()
    periodic.register(SWEEP_JOB, settings.sweep_s, scheduled_sweep)
    return settings


# -- the sweep ---------------------------------------------------------------------------------------------------
@dataclass
class SweepReport:
    settled: int = 0
    expired: list[str] = field(default_factory=list)
    """Ids of the holds this sweep expired (each written to the audit log)."""
    skipped: bool = False
    """Another worker process was sweeping (PostgreSQL)."""


def scheduled_sweep(now_ms: int) -> SweepReport:
    report = sweep(now_ms)
    if report.expired:
        log.info("held authorizations expired", extra={"fields": {"count": len(report.expired)}})
    return report


_DUE_COLUMNS = (Authorization.entry_uuid, Authorization.auth_id, Authorization.member_id,
                Authorization.terminal_id, Authorization.sv, Authorization.points, Authorization.coupons,
                Authorization.created_ms, Authorization.expires_ms)


def sweep(now_ms: int) -> SweepReport:
    """Settle held authorizations whose entry is applied and expire the ones past their time, auditing each
    expiry (see the module doc)."""
    due = _dicts(Authorization.select(*_DUE_COLUMNS).where(
        (Authorization.state == HELD) & (Authorization.expires_ms <= now_ms)).limit(SWEEP_LIMIT))
    if not due:  # nothing can expire: settle without taking the ledger's write lock
        return SweepReport(settled=authorize.sweep(now_ms, limit=SWEEP_LIMIT)[SETTLED])
    with store.atomic_write():
        if not _sweep_lock():
            return SweepReport(skipped=True)
        counts = authorize.sweep(now_ms, limit=SWEEP_LIMIT)
        uuids = [str(row["entry_uuid"]) for row in due]
        closed_now: set[str] = set()
        for start in range(0, len(uuids), authorize.IN_CHUNK):  # SQLite's parameter limit
            closed_now.update(str(u) for (u,) in _tuples(Authorization.select(Authorization.entry_uuid).where(
                Authorization.entry_uuid.in_(uuids[start:start + authorize.IN_CHUNK])
                & (Authorization.state == EXPIRED) & (Authorization.closed_ms == now_ms))))
        expired = [row for row in due if str(row["entry_uuid"]) in closed_now]
        _audit_expiries(expired, now_ms)
    return SweepReport(settled=counts[SETTLED], expired=[str(row["auth_id"]) for row in expired])


def _audit_expiries(expired: list[dict[str, Any]], now_ms: int) -> None:
    """One audit line per expired hold, in bulk on the transaction's cursor (plain DB-API: the query builder's
    ``insert_many`` cost four times what the database spent storing the rows)."""
    if not expired:
        return
    p = store.db.param
    details = store.AuditLog.details
    rows = [(now_ms, SWEEP_ACTOR, "hold_expire", str(row["auth_id"]), details.db_value(_audit_details(row)))
            for row in expired]
    store.db.cursor().executemany(
        f'INSERT INTO "{store.AuditLog._meta.table_name}" ("at_ms", "actor", "action", "subject", "details") '
        f"VALUES ({p}, {p}, {p}, {p}, {p})", rows)


def _tuples(query: Any) -> list[tuple[Any, ...]]:
    """A query's rows as plain tuples (peewee's stubs type ``.tuples()`` as models)."""
    return list(query.tuples())


def _dicts(query: Any) -> list[dict[str, Any]]:
    return list(query.dicts())


def _sweep_lock() -> bool:
    """One sweeping process at a time on PostgreSQL (released at the end of the transaction); SQLite's write
    lock already serializes the ledger's processes."""
    if not store.is_postgres():
        return True
    cursor = store.db.execute_sql("SELECT pg_try_advisory_xact_lock(hashtext(%s))", (PG_SWEEP_LOCK,))
    row = cursor.fetchone()
    return bool(row and row[0])


def _audit_details(row: dict[str, Any]) -> dict[str, Any]:
    return {"entry": str(row["entry_uuid"]), "member": str(row["member_id"]), "terminal": str(row["terminal_id"]),
            "sv": int(row["sv"]), "points": int(row["points"]), "coupons": list(row["coupons"] or []),
            "created_ms": int(row["created_ms"]), "expires_ms": int(row["expires_ms"])}


# -- release by an admin -----------------------------------------------------------------------------------------
def _find(hold_id: str) -> Authorization:
    hold_id = hold_id.strip()
    row = None
    if hold_id:
        row = Authorization.get_or_none((Authorization.auth_id == hold_id) | (Authorization.entry_uuid == hold_id))
    if row is None:
        raise HoldRefused(f"no authorization {hold_id!r}; 'cardpos ledger holds list' shows them")
    return row


def _applied(entry_uuid: str) -> bool:
    return store.AppliedEntry.select(store.AppliedEntry.id).where(store.AppliedEntry.uuid == entry_uuid).exists()


def release(hold_id: str, *, reason: str, actor: str, now_ms: int) -> dict[str, Any]:
    """Release the held authorization ``hold_id`` (its 16-hex id, or its entry's uuid) for ``reason``; audited.
    Raises ``HoldRefused`` for an unknown id or a hold that no longer holds anything."""
    reason = " ".join(reason.split())
    if not reason:
        raise HoldRefused("--reason must say why the hold is released (it goes to the audit log)")
    if len(reason) > MAX_REASON:
        raise HoldRefused(f"--reason is at most {MAX_REASON} characters, not {len(reason)}")
    row = _find(hold_id)
    auth_id = str(row.auth_id)
    _refuse_unless_held(row, now_ms)
    details = {**_audit_details(row.__data__), "reason": reason}
    with store.atomic_write():
        store.AuditLog.create(at_ms=now_ms, actor=actor, action="hold_release", subject=auth_id, details=details)
        if not authorize.release(str(row.entry_uuid), now_ms):  # the sweep or a sync closed it meanwhile
            _refuse_unless_held(_find(auth_id), now_ms)
            raise HoldRefused(f"authorization {auth_id} is no longer held")  # rolls the audit line back
    return {"auth_id": auth_id, "state": RELEASED, **details}


def _refuse_unless_held(row: Authorization, now_ms: int) -> None:
    auth_id = str(row.auth_id)
    state = str(row.state)
    if state == HELD and _applied(str(row.entry_uuid)):
        state = SETTLED  # applied, not yet marked by the sweep
    if state == HELD:
        return
    when = f" at {_iso(int(row.closed_ms))}" if row.closed_ms is not None and state != SETTLED else ""
    words = {
        SETTLED: "is already settled: its operation is applied at the ledger (a refund or void gives money back)",
        EXPIRED: f"already expired{when}; it holds nothing",
        RELEASED: f"was already released{when}; it holds nothing",
        authorize.DECLINED_STATE: "was declined; it never held anything",
    }.get(state, f"is {state}, not held")
    raise HoldRefused(f"authorization {auth_id} {words}")


def _iso(ms: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- listing -----------------------------------------------------------------------------------------------------
def list_holds(*, member: str | None = None, state: str | None = None, terminal: str | None = None,
               limit: int = LIST_LIMIT, now_ms: int) -> list[dict[str, Any]]:
    """Authorizations, newest first. A held one says whether its entry is applied (settled at the next sweep)
    and whether it is past its expiry (expired at the next sweep)."""
    if state is not None and state not in STATES:
        raise HoldRefused(f"--state is one of {', '.join(STATES)}, not {state!r}")
    query = Authorization.select()
    if member:
        query = query.where(Authorization.member_id == member)
    if state:
        query = query.where(Authorization.state == state)
    if terminal:
        query = query.where(Authorization.terminal_id == terminal)
    rows = list(query.order_by(Authorization.created_ms.desc(), Authorization.auth_id).limit(limit))
    applied = _applied_among(str(r.entry_uuid) for r in rows if r.state == HELD)
    currencies = _currencies({str(r.member_id) for r in rows})
    out = []
    for r in rows:
        currency = currencies.get(str(r.member_id))
        out.append({
            "auth_id": str(r.auth_id), "entry": str(r.entry_uuid), "state": str(r.state),
            "member": str(r.member_id), "terminal": str(r.terminal_id), "currency": currency,
            "sv": int(r.sv), "sv_text": Money(int(r.sv), currency).to_decimal_string() if currency else str(r.sv),
            "points": int(r.points), "coupons": list(r.coupons or []), "decision": str(r.decision),
            "reason": str(r.reason), "created_ms": int(r.created_ms), "expires_ms": int(r.expires_ms),
            "closed_ms": None if r.closed_ms is None else int(r.closed_ms),
            "entry_applied": str(r.entry_uuid) in applied,
            "past_expiry": r.state == HELD and int(r.expires_ms) <= now_ms,
        })
    return out


def _applied_among(uuids: Iterable[str]) -> set[str]:
    wanted = sorted(set(uuids))
    found: set[str] = set()
    for start in range(0, len(wanted), authorize.IN_CHUNK):
        chunk = wanted[start:start + authorize.IN_CHUNK]
        found.update(str(u) for (u,) in _tuples(store.AppliedEntry.select(store.AppliedEntry.uuid).where(
            store.AppliedEntry.uuid.in_(chunk))))
    return found


def _currencies(member_ids: set[str]) -> dict[str, str]:
    if not member_ids:
        return {}
    query = store.Member.select(store.Member.member_id, store.Member.currency).where(
        store.Member.member_id.in_(sorted(member_ids)))
    return {str(m): str(c) for m, c in _tuples(query)}


def counts() -> dict[str, int]:
    return authorize.counts_by_state()


def open_for_admin() -> peewee.Database:
    """Bind the holds table in an admin command (the ledger is open)."""
    return authorize.open_holds()
