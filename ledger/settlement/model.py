"""A period's settlement statement, the netting to fewest transfers, and the liability and reserve report. Pure.

Positions (docs/merchants.md has a worked example): for every merchant,

    credit = stored value redeemed at it + points redeemed at it (at the program's price) + coupons it honoured
    debit  = stored value it took in + bonus it funded + fees it collected + points it issued (at the price)
             + coupons it funds
    net    = credit − debit      (positive: the float holder pays the merchant; negative: the merchant pays)

The program operator holds the float: its position is minus the sum of the merchants', so the positions of a
period always sum to exactly zero. With ``float_holder = "direct"`` the same positions are settled between the
parties themselves, netted to the fewest transfers.

Entries that arrived after their own period was closed count in the next open period as adjustments: listed
apart, by the period they belong to, and included in the positions settled.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cardkit.core.money import round_half_up
from ledger.errors import LedgerError
from ledger.settlement.funding import PROGRAM

FORMAT = "cardpos-settlement/1"
SIGNING_CONTEXT = b"cardpos settlement statement v1\n"
"""Prefixed to the statement bytes before signing, so a statement signature can never pass for another document's."""

ITEMS = ("sv_taken_in", "bonus_funded", "sv_redeemed", "fees_collected", "points_issued", "points_issued_cost",
         "points_redeemed", "points_redeemed_value", "coupons_funded", "coupons_honoured", "net")
EXACT_NETTING_MAX = 15
"""Up to this many parties with a position, the fewest transfers are found exactly (subset search); beyond it,
largest debtor to largest creditor, which needs at most one transfer fewer than the parties."""


@dataclass(frozen=True, slots=True)
class Sum:
    """Funding lines of one period added up by (flow, merchant, issuer, adjustment-from)."""

    flow: str
    merchant: str
    issuer: str
    late_from: str | None
    amount: int
    points: int


@dataclass(frozen=True, slots=True)
class PointCost:
    minor: int = 1
    points: int = 1

    def of(self, points: int) -> int:
        return round_half_up(points * self.minor, self.points)


@dataclass
class Items:
    sv_taken_in: int = 0
    bonus_funded: int = 0
    sv_redeemed: int = 0
    fees_collected: int = 0
    points_issued: int = 0
    points_redeemed: int = 0
    coupons_funded: int = 0
    coupons_honoured: int = 0

    def add(self, item: Sum, party: str) -> None:
        if item.flow == "sv_in" and item.merchant == party:
            self.sv_taken_in += item.amount
        elif item.flow == "bonus" and item.merchant == party:
            self.bonus_funded += item.amount
        elif item.flow == "sv_out" and item.merchant == party:
            self.sv_redeemed += item.amount
        elif item.flow == "fee" and item.merchant == party:
            self.fees_collected += item.amount
        elif item.flow == "pts_issued" and item.merchant == party:
            self.points_issued += item.points
        elif item.flow == "pts_redeemed" and item.merchant == party:
            self.points_redeemed += item.points
        if item.flow == "coupon":
            if item.issuer == party:
                self.coupons_funded += item.amount
            if item.merchant == party:
                self.coupons_honoured += item.amount

    def row(self, party: str, cost: PointCost) -> dict[str, Any]:
        issued_cost, redeemed_value = cost.of(self.points_issued), cost.of(self.points_redeemed)
        credit = self.sv_redeemed + redeemed_value + self.coupons_honoured
        debit = self.sv_taken_in + self.bonus_funded + self.fees_collected + issued_cost + self.coupons_funded
        return {"party": party, "sv_taken_in": self.sv_taken_in, "bonus_funded": self.bonus_funded,
                "sv_redeemed": self.sv_redeemed, "fees_collected": self.fees_collected,
                "points_issued": self.points_issued, "points_issued_cost": issued_cost,
                "points_redeemed": self.points_redeemed, "points_redeemed_value": redeemed_value,
                "coupons_funded": self.coupons_funded, "coupons_honoured": self.coupons_honoured,
                "net": credit - debit}


@dataclass(frozen=True, slots=True)
class Setup:
    """What a statement is computed with besides the lines: the program and its merchants."""

    period: str
    currency: str
    program: str = "cardpos program"
    float_holder: str = "operator"
    point_cost: PointCost = field(default_factory=PointCost)
    merchants: Mapping[str, str] = field(default_factory=dict)
    """Merchant id → name, every merchant of the program (those without lines get a row of zeros)."""


def _rows(sums: Iterable[Sum], parties: Sequence[str], cost: PointCost) -> list[dict[str, Any]]:
    items = {p: Items() for p in parties}
    for s in sums:
        for party in {s.merchant, s.issuer} & set(parties):
            items[party].add(s, party)
    return [items[p].row(p, cost) for p in parties]


def _operator_row(rows: list[dict[str, Any]]) -> None:
    """The program operator's net balances the merchants' (it holds the float)."""
    own = next(r for r in rows if r["party"] == PROGRAM)
    others = sum(r["net"] for r in rows if r["party"] != PROGRAM)
    own["own_net"] = own["net"]
    own["net"] = -others


def statement(setup: Setup, sums: Sequence[Sum], liability: Sequence[Mapping[str, Any]],
              *, closed_ms: int | None = None) -> dict[str, Any]:
    """The statement of ``setup.period`` from its funding-line sums and its liability rows (``liability_rows``)."""
    named = {*setup.merchants, *(s.merchant for s in sums), *(s.issuer for s in sums if s.issuer)} - {PROGRAM}
    parties = [*sorted(named), PROGRAM]
    regular = _rows((s for s in sums if s.late_from is None), parties, setup.point_cost)
    _operator_row(regular)
    adjustments = []
    for late_from in sorted({s.late_from for s in sums if s.late_from is not None}):
        rows = _rows((s for s in sums if s.late_from == late_from), parties, setup.point_cost)
        _operator_row(rows)
        adjustments += [{"from_period": late_from, **row} for row in rows if any(
            row[k] for k in ITEMS)]
    positions = {r["party"]: r["net"] for r in regular}
    for row in adjustments:
        positions[row["party"]] += row["net"]
    if sum(positions.values()) != 0:  # cannot happen: the operator's row balances every period by construction
        raise LedgerError(f"the positions of {setup.period} do not sum to zero")
    names = {**setup.merchants, PROGRAM: setup.program}
    return {
        "format": FORMAT, "period": setup.period, "currency": setup.currency, "program": setup.program,
        "float_holder": setup.float_holder, "closed_ms": closed_ms, "status": "closed" if closed_ms else "draft",
        "point_cost": {"minor": setup.point_cost.minor, "points": setup.point_cost.points},
        "parties": [{"name": names.get(r["party"], r["party"]), **r} for r in regular],
        "adjustments": adjustments,
        "positions": [{"party": p, "net": n} for p, n in sorted(positions.items())],
        "transfers": [{"from": a, "to": b, "amount": amount}
                      for a, b, amount in transfers(positions, setup.float_holder)],
        "liability": list(liability),
    }


def liability_rows(opening: Mapping[str, int], joined: Mapping[str, int], regular: Iterable[Sum],
                   adjustments: Iterable[Sum]) -> list[dict[str, Any]]:
    """Per issuer: opening + joined (opening balances of members who joined) + taken in (top-ups and bonus)
    − redeemed ± adjustments = closing. ``opening`` is the closing of everything before the period."""
    rows: dict[str, dict[str, int]] = {}

    def row(issuer: str) -> dict[str, int]:
        return rows.setdefault(issuer, {"opening": 0, "joined": 0, "taken_in": 0, "redeemed": 0,
                                        "adjustments": 0, "closing": 0})

    for issuer, amount in opening.items():
        row(issuer)["opening"] += amount
    for issuer, amount in joined.items():
        row(issuer)["joined"] += amount
    for s in regular:
        if s.flow in ("sv_in", "bonus"):
            row(s.issuer)["taken_in"] += s.amount
        elif s.flow == "sv_out":
            row(s.issuer)["redeemed"] += s.amount
    for s in adjustments:
        if s.flow in ("sv_in", "bonus"):
            row(s.issuer)["adjustments"] += s.amount
        elif s.flow == "sv_out":
            row(s.issuer)["adjustments"] -= s.amount
    out = []
    for issuer in sorted(rows):
        r = rows[issuer]
        r["closing"] = r["opening"] + r["joined"] + r["taken_in"] - r["redeemed"] + r["adjustments"]
        out.append({"issuer": issuer, **r})
    return out


# -- netting ----------------------------------------------------------------------------------------------------
def transfers(positions: Mapping[str, int], float_holder: str) -> list[tuple[str, str, int]]:
    """Who pays whom: with the operator holding the float every merchant settles with it; netted directly, the
    fewest transfers that settle every position. (payer, payee, minor units), in a stable order."""
    if float_holder == "operator":
        out = []
        for party, net in sorted(positions.items()):
            if party != PROGRAM and net:
                out.append((PROGRAM, party, net) if net > 0 else (party, PROGRAM, -net))
        return out
    open_positions = {p: n for p, n in positions.items() if n}
    groups = (_zero_sum_groups(open_positions) if len(open_positions) <= EXACT_NETTING_MAX
              else [sorted(open_positions)])
    out = []
    for group in groups:
        out += _greedy({p: open_positions[p] for p in group})
    return sorted(out)


def _greedy(positions: Mapping[str, int]) -> list[tuple[str, str, int]]:
    """Largest debtor pays largest creditor until all are settled: n − 1 transfers for n parties at most."""
    credit = {p: n for p, n in positions.items() if n > 0}
    debit = {p: -n for p, n in positions.items() if n < 0}
    out = []
    while credit and debit:
        payee = max(sorted(credit), key=lambda p: credit[p])
        payer = max(sorted(debit), key=lambda p: debit[p])
        amount = min(credit[payee], debit[payer])
        out.append((payer, payee, amount))
        for book, party in ((credit, payee), (debit, payer)):
            book[party] -= amount
            if not book[party]:
                del book[party]
    return out


def _zero_sum_groups(positions: Mapping[str, int]) -> list[list[str]]:
    """Split the parties into the most groups that each sum to zero (each group of k needs k − 1 transfers, so
    the most groups is the fewest transfers). Dynamic programming over subsets: fine up to ~15 parties."""
    parties = sorted(positions)
    n = len(parties)
    if n == 0:
        return []
    full = (1 << n) - 1
    total = [0] * (1 << n)
    for mask in range(1, 1 << n):
        low = (mask & -mask).bit_length() - 1
        total[mask] = total[mask & (mask - 1)] + positions[parties[low]]
    best = [-1] * (1 << n)  # most zero-sum groups that exactly cover mask, -1: impossible
    choice = [0] * (1 << n)
    best[0] = 0
    for mask in range(1, full + 1):
        if total[mask] != 0:
            continue
        low = mask & -mask
        rest = mask ^ low
        sub = rest
        while True:  # the group holding the lowest party: low | sub, sub ⊆ rest
            group = low | sub
            if total[group] == 0 and best[mask ^ group] >= 0 and best[mask ^ group] + 1 > best[mask]:
                best[mask], choice[mask] = best[mask ^ group] + 1, group
            if sub == 0:
                break
            sub = (sub - 1) & rest
    groups = []
    mask = full
    while mask:
        group = choice[mask]
        groups.append([parties[i] for i in range(n) if group >> i & 1])
        mask ^= group
    return groups


def fewest_transfers_count(positions: Mapping[str, int]) -> int:
    """The least number of transfers that settles ``positions`` (brute force over partitions; for tests)."""
    open_positions = [p for p, n in positions.items() if n]
    return len(open_positions) - len(_zero_sum_groups({p: positions[p] for p in open_positions}))


# -- bytes, hash ------------------------------------------------------------------------------------------------
def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signed_message(data: bytes) -> bytes:
    return SIGNING_CONTEXT + data


# -- liability and reserve --------------------------------------------------------------------------------------
def reserve_report(day: str, outstanding: Mapping[str, int], previous_quarter: Mapping[str, int],
                   reserve_bp: int, names: Mapping[str, str], currency: str) -> dict[str, Any]:
    """Outstanding stored value by issuing merchant at the end of ``day`` and the reserve it requires: a share
    (``reserve_bp``) of each issuer's outstanding balance at the end of the previous quarter."""
    issuers = sorted(set(outstanding) | set(previous_quarter))
    rows = []
    for issuer in issuers:
        base = max(previous_quarter.get(issuer, 0), 0)
        rows.append({"issuer": issuer, "name": names.get(issuer, issuer), "outstanding": outstanding.get(issuer, 0),
                     "previous_quarter_end": previous_quarter.get(issuer, 0),
                     "reserve": round_half_up(base * reserve_bp, 10_000)})
    return {"day": day, "currency": currency, "reserve_bp": reserve_bp, "issuers": rows,
            "total_outstanding": sum(r["outstanding"] for r in rows),
            "total_reserve": sum(r["reserve"] for r in rows)}
