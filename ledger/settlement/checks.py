"""Settlement invariants ``ledger verify`` checks (issue 17):

- every member's stored value and points equal their opening figures plus their funding lines (no money entry
  went unrecorded), and their lots by issuer add up to their balance;
- the program's liability, the outstanding stored value of every issuer, equals the sum of member balances;
- every line counts in its own month, or, as an adjustment, in a later one after its own month was closed;
- every closed period: its bytes match their hash and the audit log, its signature verifies with the root key,
  its positions sum to zero and its entries still give exactly the closed statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import peewee

from cardkit.core.state import MemberState
from ledger import store
from ledger.home import current
from ledger.settlement import books, periods
from ledger.settlement.funding import PROGRAM
from ledger.settlement.records import ClosedPeriod, FundingLine, FundingTotal, MemberLots


def _member_totals() -> dict[str, tuple[int, int]]:
    f = FundingLine
    sv = peewee.Case(f.flow, (("sv_in", f.amount), ("bonus", f.amount), ("sv_out", f.amount * -1)), 0)
    pts = peewee.Case(f.flow, (("pts_issued", f.points), ("pts_redeemed", f.points * -1)), 0)
    query: Any = f.select(f.member_id, peewee.fn.SUM(sv), peewee.fn.SUM(pts)).group_by(f.member_id).tuples()
    return {str(mid): (int(a or 0), int(p or 0)) for mid, a, p in query}


def check_members(folded: Mapping[str, MemberState]) -> list[str]:
    """``folded``: every member's state as their entries give it (``ledger.verify.verify_members``)."""
    problems = []
    totals = _member_totals()
    lots = {str(r.member_id): r.lots for r in MemberLots.select()}
    balances = 0
    for member in store.Member.select().order_by(store.Member.member_id):
        mid = str(member.member_id)
        state = folded.get(mid)
        balance = state.balance if state is not None else int(member.opening_balance)
        points = state.points if state is not None else int(member.opening_points)
        balances += balance
        sv, pts = totals.get(mid, (0, 0))
        if int(member.opening_balance) + sv != balance:
            problems.append(f"member {mid}: stored value {balance} but opening plus funding lines give "
                            f"{int(member.opening_balance) + sv} (an entry without its funding record)")
        if int(member.opening_points) + pts != points:
            problems.append(f"member {mid}: points {points} but opening plus funding lines give "
                            f"{int(member.opening_points) + pts}")
        if mid in lots and sum(int(a) for _, a in lots[mid]) != balance:
            problems.append(f"member {mid}: stored value by issuer adds up to "
                            f"{sum(int(a) for _, a in lots[mid])}, not the balance {balance}")
    outstanding = books.outstanding_at(2**62)
    if sum(outstanding.values()) != balances:
        problems.append(f"the program's liability ({sum(outstanding.values())}: outstanding stored value of every "
                        f"issuer) does not equal the sum of member balances ({balances})")
    return problems


def check_periods() -> list[str]:
    problems = []
    closed = {str(p.period): p for p in ClosedPeriod.select()}
    f = FundingLine
    query: Any = (f.select(f.terminal_id, f.seq, f.period, f.late_from, f.wall_ms)
                  .where(f.late_from.is_null(False)).tuples())
    for terminal_id, seq, period, late_from, wall_ms in query.iterator():
        own = periods.period_of(int(wall_ms))
        if late_from != own or own not in closed or period <= own:
            problems.append(f"entry {terminal_id}/{seq}: counted in {period} as an adjustment of {late_from}, "
                            f"but it is dated {own}")
    distinct: Any = f.select(f.period).distinct().tuples()
    for (period,) in distinct:
        outside = (f.select().where((f.period == period) & f.late_from.is_null()
                                    & ((f.wall_ms < periods.start_ms(period))
                                       | (f.wall_ms >= periods.end_ms(period)))).count())
        if outside:
            problems.append(f"settlement {period}: {outside} funding line(s) dated outside the period count in it")
    problems += check_totals()
    root = current().keys.root_public()
    for period in sorted(closed):
        problems += books.check_closed(closed[period], root)
    return problems


def check_totals() -> list[str]:
    """The totals statements are computed from add up to the funding lines, group by group."""
    f, t = FundingLine, FundingTotal
    late = peewee.fn.COALESCE(f.late_from, "")
    lines: Any = (f.select(f.period, late, f.flow, f.merchant_id, f.issuer_id, f.currency, peewee.fn.SUM(f.amount),
                           peewee.fn.SUM(f.points), peewee.fn.COUNT(f.id))
                  .group_by(f.period, late, f.flow, f.merchant_id, f.issuer_id, f.currency).tuples())
    from_lines = {tuple(str(v) for v in row[:6]): (int(row[6]), int(row[7]), int(row[8])) for row in lines.iterator()}
    totals: Any = t.select(t.period, t.late_from, t.flow, t.merchant_id, t.issuer_id, t.currency, t.amount, t.points,
                           t.lines).tuples()
    kept = {tuple(str(v) for v in row[:6]): (int(row[6]), int(row[7]), int(row[8])) for row in totals.iterator()}
    problems = []
    for key in sorted(set(from_lines) | set(kept)):
        if from_lines.get(key, (0, 0, 0)) != kept.get(key, (0, 0, 0)):
            period, late_from, flow, merchant, issuer, currency = key
            problems.append(f"settlement {period}: the {flow} total of {merchant} (issuer {issuer}, {currency}"
                            f"{', adjustment of ' + late_from if late_from else ''}) is "
                            f"{kept.get(key, (0, 0, 0))[:2]} but its funding lines add up to "
                            f"{from_lines.get(key, (0, 0, 0))[:2]} (amount, points)")
    return problems


def verify_settlement(folded: Mapping[str, MemberState]) -> list[str]:
    return check_members(folded) + check_periods()


__all__ = ["PROGRAM", "verify_settlement"]
