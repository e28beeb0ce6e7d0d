"""Reading the funding lines into statements, closing periods (signed, hashed into the audit log), and the
liability and reserve report. The I/O around the pure ``model``."""

from __future__ import annotations

import datetime
from typing import Any

import peewee
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger import store
from ledger.errors import LedgerError
from ledger.home import current
from ledger.merchants import admin as merchants
from ledger.merchants.models import Merchant
from ledger.settlement import model, periods
from ledger.settlement.funding import PROGRAM
from ledger.settlement.records import ClosedPeriod, FundingLine, FundingTotal


def setup_now(period: str) -> model.Setup:
    settings = merchants.program_settings()
    names = {str(m.merchant_id): str(m.name) for m in Merchant.select()}
    return model.Setup(period=period, currency=str(settings.currency), program=str(settings.name),
                       float_holder=str(settings.float_holder),
                       point_cost=model.PointCost(int(settings.point_cost_minor), int(settings.point_cost_points)),
                       merchants=names)


def setup_of(document: dict[str, Any]) -> model.Setup:
    """The setup a stored statement was computed with (so recomputing it never depends on today's settings)."""
    return model.Setup(period=document["period"], currency=document["currency"], program=document["program"],
                       float_holder=document["float_holder"],
                       point_cost=model.PointCost(document["point_cost"]["minor"], document["point_cost"]["points"]),
                       merchants={p["party"]: p["name"] for p in document["parties"] if p["party"] != PROGRAM})


def period_sums(period: str, currency: str) -> list[model.Sum]:
    """The period's funding lines added up: its rows of ``FundingTotal`` (kept as the lines are written)."""
    t = FundingTotal
    query: Any = (t.select(t.flow, t.merchant_id, t.issuer_id, t.late_from, t.currency, t.amount, t.points)
                  .where(t.period == period)
                  .order_by(t.late_from, t.flow, t.merchant_id, t.issuer_id, t.currency).tuples())
    sums = []
    for flow, merchant, issuer, late_from, cur, amount, points in query:
        if cur != currency:
            raise LedgerError(f"period {period} has {cur} entries but the program settles in {currency}; "
                              "a program settles in one currency")
        sums.append(model.Sum(str(flow), str(merchant), str(issuer), str(late_from) or None, int(amount),
                              int(points)))
    return sums


def _outstanding(where: Any, source: type[FundingLine] | type[FundingTotal] = FundingLine) -> dict[str, int]:
    """Stored value by issuer from the lines (or the totals) ``where`` selects: taken in and bonus less
    redeemed."""
    f = source
    signed = peewee.Case(f.flow, (("sv_in", f.amount), ("bonus", f.amount), ("sv_out", f.amount * -1)), 0)
    query: Any = (f.select(f.issuer_id, peewee.fn.SUM(signed))
                  .where(where & f.flow.in_(("sv_in", "bonus", "sv_out"))).group_by(f.issuer_id).tuples())
    return {str(issuer): int(total or 0) for issuer, total in query}


def _opening_balances(created_before_ms: int, created_from_ms: int = 0) -> int:
    m = store.Member
    total = (m.select(peewee.fn.SUM(m.opening_balance))
             .where((m.created_ms < created_before_ms) & (m.created_ms >= created_from_ms)).scalar())
    return int(total or 0)


def liability(period: str, sums: list[model.Sum]) -> list[dict[str, Any]]:
    opening = _outstanding(FundingTotal.period < period, FundingTotal)
    start, end = periods.start_ms(period), periods.end_ms(period)
    opening[PROGRAM] = opening.get(PROGRAM, 0) + _opening_balances(start)
    joined = {PROGRAM: _opening_balances(end, start)}
    return model.liability_rows(opening, joined, [s for s in sums if s.late_from is None],
                                [s for s in sums if s.late_from is not None])


def compute(period: str, setup: model.Setup, closed_ms: int | None) -> dict[str, Any]:
    sums = period_sums(period, setup.currency)
    return model.statement(setup, sums, liability(period, sums), closed_ms=closed_ms)


def closed(period: str) -> ClosedPeriod | None:
    return ClosedPeriod.get_or_none(ClosedPeriod.period == period)


def draft(period: str) -> dict[str, Any]:
    """The statement as it stands (a closed period: its signed statement)."""
    row = closed(period)
    if row is not None:
        return model_document(row)
    return compute(period, setup_now(period), None)


def model_document(row: ClosedPeriod) -> dict[str, Any]:
    import json

    document: dict[str, Any] = json.loads(bytes(row.statement))
    document["signature"] = {"sha256": row.sha256, "ed25519": row.signature, "root_key": row.root_key}
    return document


def _lock_applies() -> None:
    """Hold off entries being applied while a period closes: ``ledger.apply`` writes funding lines holding the
    ``members`` counter row, so taking it here orders the two (SQLite's write lock already does)."""
    if store.is_postgres():
        list(store.VersionCounter.select().where(store.VersionCounter.name == "members").for_update())


def close(period: str, *, actor: str, early: bool = False) -> tuple[ClosedPeriod, bool]:
    """Close ``period``: compute its statement, sign it with the root key, write its hash to the audit log.
    Returns the closed period and whether it was closed now (False: it was already; nothing changes)."""
    period = periods.check_period(period)
    ledger = current()
    now = ledger.now_ms()
    with store.atomic_write():
        _lock_applies()
        row = closed(period)
        if row is not None:
            return row, False
        if not early and now < periods.end_ms(period):
            day = datetime.datetime.fromtimestamp(periods.end_ms(period) / 1000, datetime.UTC).date()
            raise LedgerError(f"period {period} is not over until {day} 00:00 UTC; close it then (or now with "
                              "--early: entries dated in it that arrive later settle in the next period)")
        document = compute(period, setup_now(period), now)
        data = model.canonical_bytes(document)
        signature = ledger.keys.root().sign(model.signed_message(data)).hex()
        row = ClosedPeriod.create(period=period, closed_ms=now, actor=actor, statement=data,
                                  sha256=model.digest(data), signature=signature,
                                  root_key=ledger.keys.root_public().hex())
        store.AuditLog.create(at_ms=now, actor=actor, action="settlement_close", subject=period,
                              details={"sha256": row.sha256, "signature": signature,
                                       "transfers": len(document["transfers"])})
    return row, True


def check_closed(row: ClosedPeriod, root_public: bytes) -> list[str]:
    """A closed period's problems: its bytes altered, its signature or audit hash wrong, or its entries no longer
    giving the same statement."""
    import json

    period = str(row.period)
    data = bytes(row.statement)
    problems = []
    if model.digest(data) != row.sha256:
        problems.append(f"settlement {period}: the stored statement does not match its hash")
    try:
        Ed25519PublicKey.from_public_bytes(root_public).verify(bytes.fromhex(row.signature),
                                                               model.signed_message(data))
    except (InvalidSignature, ValueError):
        problems.append(f"settlement {period}: the statement's signature does not verify with the root key")
    audit = (store.AuditLog.select().where((store.AuditLog.action == "settlement_close")
                                           & (store.AuditLog.subject == period)).first())
    if audit is None or (audit.details or {}).get("sha256") != row.sha256:
        problems.append(f"settlement {period}: the audit log does not hold the statement's hash")
    try:
        document = json.loads(data)
        again = model.canonical_bytes(compute(period, setup_of(document), int(row.closed_ms)))
    except (ValueError, KeyError, LedgerError) as exc:
        return [*problems, f"settlement {period}: the statement cannot be recomputed ({exc})"]
    if again != data:
        problems.append(f"settlement {period}: its entries no longer give the closed statement (a closed period "
                        "was changed)")
    if sum(p["net"] for p in document.get("positions", [])) != 0:
        problems.append(f"settlement {period}: the positions do not sum to zero")
    return problems


# -- liability and reserve --------------------------------------------------------------------------------------
def day_bounds(day: str) -> int:
    try:
        date = datetime.date.fromisoformat(day)
    except ValueError:
        raise LedgerError(f"a day is written YYYY-MM-DD, not {day!r}") from None
    return int(datetime.datetime(date.year, date.month, date.day, tzinfo=datetime.UTC).timestamp()) * 1000


def outstanding_at(end_ms: int) -> dict[str, int]:
    """Stored value outstanding by issuing merchant at ``end_ms`` (entries by their own time, opening balances
    of members who had joined)."""
    out = _outstanding(FundingLine.wall_ms < end_ms)
    out[PROGRAM] = out.get(PROGRAM, 0) + _opening_balances(end_ms)
    return {k: v for k, v in out.items() if v or k == PROGRAM}


def reserve_report(day: str | None = None) -> dict[str, Any]:
    ledger = current()
    if day is None:
        day = datetime.datetime.fromtimestamp(ledger.now_ms() / 1000, datetime.UTC).date().isoformat()
    end = day_bounds(day) + 86_400_000
    quarter = periods.quarter_start(day_bounds(day))
    settings = merchants.program_settings()
    names = {str(m.merchant_id): str(m.name) for m in Merchant.select()}
    names[PROGRAM] = str(settings.name)
    return model.reserve_report(day, outstanding_at(end), outstanding_at(quarter), int(settings.reserve_bp), names,
                                str(settings.currency))
