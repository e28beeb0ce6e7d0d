"""Who funded what: the funding lines of one applied entry. Pure: no I/O.

Every money entry the ledger applies gets lines, each naming a ``flow``, the ``merchant`` it is attributed to and,
for stored value and coupons, the ``issuer`` whose money or promise it is:

=================  =========================================================================================
``sv_in``          stored value bought with cash or a bank card at ``merchant`` (= ``issuer``), minor units
``bonus``          the top-up bonus ``merchant`` gave (and funds)
``sv_out``         stored value spent for goods delivered by ``merchant``; ``issuer`` is the merchant whose
                   top-ups it came from (first in, first out); negative when a refund or void gives it back
``fee``            a membership fee paid in cash or by bank card at ``merchant`` (the program's revenue)
``pts_issued``     points ``merchant`` issued (``points``; they cost it the program's price per point)
``pts_redeemed``   points redeemed at ``merchant`` (it is paid their price)
``coupon``         a coupon discount ``merchant`` gave; ``issuer`` is the merchant that funds the coupon
=================  =========================================================================================

Refunds and voids reverse what their original did, attributed to the original's merchant (a refund at the spa of
a restaurant sale takes back the restaurant's figures). Stored value is tracked per member as lots by issuer, spent
first in, first out; what a refund gives back returns to the issuers it came from (the last spent first), so the
lots always add up to the member's balance and the outstanding stored value of every issuer is exact.

Spending more than the lots hold (offline spending at two terminals can overdraw) takes the rest from the
program (a negative lot): the operator carries an overdraft until the member tops up again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from cardkit.core.money import round_half_up
from cardkit.journal import EntryKind

PROGRAM = "program"  # the same party as ledger.merchants.models.PROGRAM (this module stays free of the database)

SV_FLOWS = ("sv_in", "bonus", "sv_out")
FLOWS = ("sv_in", "bonus", "sv_out", "fee", "pts_issued", "pts_redeemed", "coupon")

Lots = tuple[tuple[str, int], ...]
"""A member's stored value as (issuer, amount) lots, oldest first."""


class Line(NamedTuple):
    """A tuple, not a frozen dataclass: about 1.3 are made per applied entry, and a frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` per field) cost 2.5 times as much."""

    flow: str
    merchant: str
    issuer: str = ""
    amount: int = 0
    """Minor units (stored value, bonus, fees, coupons), signed."""
    points: int = 0

    @property
    def sv_delta(self) -> int:
        """What this line does to its issuer's outstanding stored value."""
        if self.flow in ("sv_in", "bonus"):
            return self.amount
        return -self.amount if self.flow == "sv_out" else 0


@dataclass(frozen=True, slots=True)
class Original:
    """The entry a refund or void names, as the funding lines recorded it (with every earlier reversal)."""

    kind: str
    merchant: str
    lines: tuple[Line, ...]
    reversals: tuple[Line, ...] = ()
    """Lines of refunds already applied against it."""


class Funded(NamedTuple):
    lines: tuple[Line, ...]
    lots: Lots


def opening_lots(balance: int) -> Lots:
    """A member's opening balance (set when they joined or were imported) is the program's stored value."""
    return ((PROGRAM, balance),) if balance else ()


def lots_total(lots: Lots) -> int:
    return sum(amount for _, amount in lots)


def lots_by_issuer(lots: Lots) -> dict[str, int]:
    out: dict[str, int] = {}
    for issuer, amount in lots:
        out[issuer] = out.get(issuer, 0) + amount
    return out


def _compact(lots: Iterable[tuple[str, int]]) -> Lots:
    """Drop empty lots and merge neighbours of one issuer (keeps the state small and canonical)."""
    out: list[tuple[str, int]] = []
    for issuer, amount in lots:
        if amount == 0:
            continue
        if out and out[-1][0] == issuer and (out[-1][1] > 0) == (amount > 0):
            out[-1] = (issuer, out[-1][1] + amount)
        else:
            out.append((issuer, amount))
    return tuple(out)


def spend(lots: Lots, amount: int) -> tuple[list[tuple[str, int]], Lots]:
    """Take ``amount`` from the oldest positive lots; returns what came from each issuer and the lots left."""
    taken: list[tuple[str, int]] = []
    left: list[tuple[str, int]] = []
    need = amount
    for issuer, lot in lots:
        if need > 0 and lot > 0:
            take = min(lot, need)
            taken.append((issuer, take))
            need -= take
            lot -= take
        left.append((issuer, lot))
    if need > 0:  # an overdraft: the program carries it
        taken.append((PROGRAM, need))
        left.append((PROGRAM, -need))
    return taken, _compact(left)


def give_back(lots: Lots, returned: Sequence[tuple[str, int]]) -> Lots:
    """Stored value returned to its issuers goes to the front: it was spent first, it is spent first again."""
    return _compact([*returned, *lots])


def take_back(lots: Lots, issuer: str, amount: int) -> Lots:
    """Remove ``amount`` of ``issuer``'s stored value (a voided top-up), newest lot first; what that issuer no
    longer holds leaves a negative lot of it (the void was allowed because the balance covered it)."""
    left = list(lots)
    need = amount
    for index in range(len(left) - 1, -1, -1):
        lot_issuer, lot = left[index]
        if need > 0 and lot_issuer == issuer and lot > 0:
            take = min(lot, need)
            left[index] = (lot_issuer, lot - take)
            need -= take
    if need > 0:
        left.append((issuer, -need))
    return _compact(left)


def _int(payload: Mapping[str, Any], key: str) -> int:
    value = payload.get(key, 0)
    return value if type(value) is int else 0


def split_by_weight(total: int, weights: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """``total`` shared among parties in proportion to their weights, by cumulative rounding: the shares add up
    to ``total`` exactly. With no positive weight the first party (or the program) takes it all."""
    positive = [(party, w) for party, w in weights if w > 0]
    if not positive:
        return [(weights[0][0] if weights else PROGRAM, total)] if total else []
    whole = sum(w for _, w in positive)
    shares: list[tuple[str, int]] = []
    running = given = 0
    for party, weight in positive:
        running += weight
        share = round_half_up(total * running, whole) - given
        given += share
        shares.append((party, share))
    return [(p, s) for p, s in shares if s]


def _returned(original: Original, amount: int) -> list[tuple[str, int]]:
    """Split stored value given back by a refund or void over the issuers the original spent, the last spent
    first, never more per issuer than the original took less what earlier refunds gave back."""
    left: dict[str, int] = {}
    order: list[str] = []
    for line in original.lines:
        if line.flow == "sv_out":
            if line.issuer not in left:
                order.append(line.issuer)
            left[line.issuer] = left.get(line.issuer, 0) + line.amount
    for line in original.reversals:
        if line.flow == "sv_out":
            left[line.issuer] = left.get(line.issuer, 0) + line.amount  # reversal lines are negative
    out: list[tuple[str, int]] = []
    need = amount
    for issuer in reversed(order):
        take = min(max(left.get(issuer, 0), 0), need)
        if take:
            out.append((issuer, take))
            need -= take
    if need > 0:  # more back than the original took (a damaged or foreign original): the program's
        out.append((PROGRAM, need))
    out.reverse()
    return out


def _coupon_lines(merchant: str, total: int, weights: Sequence[tuple[str, int]]) -> list[Line]:
    return [Line("coupon", merchant, funder, share) for funder, share in split_by_weight(total, weights)]


def fund_entry(kind: str, payload: Mapping[str, Any], *, merchant: str, lots: Lots,
               original: Original | None = None,
               coupon_weights: Sequence[tuple[str, int]] = ()) -> Funded:
    """The lines of one entry at ``merchant`` and the member's lots after it.

    ``original``: for a refund or void, the entry it reverses (None when the ledger does not hold it: then the
    reversal is attributed to ``merchant`` and the stored value it gives back to the program).
    ``coupon_weights``: for a sale with coupons, each coupon's funder and its face value on this sale, to share
    the discount among funders (one coupon: its funder takes the whole discount).
    """
    lines: list[Line] = []
    if kind == EntryKind.TOPUP:
        amount, bonus = _int(payload, "amount"), _int(payload, "bonus")
        lines += [Line("sv_in", merchant, merchant, amount), Line("bonus", merchant, merchant, bonus)]
        lots = _compact([*lots, (merchant, amount + bonus)])
    elif kind == EntryKind.SALE:  # the most common entry by far: no line is made only to be dropped below
        taken, lots = spend(lots, _int(payload, "sv"))
        lines += [Line("sv_out", merchant, issuer, amount) for issuer, amount in taken]
        earned, redeemed = _int(payload, "pts_earn"), _int(payload, "pts_redeem")
        coupon_disc = _int(payload, "coupon_disc")
        if earned:
            lines.append(Line("pts_issued", merchant, points=earned))
        if redeemed:
            lines.append(Line("pts_redeemed", merchant, points=redeemed))
        if coupon_disc:  # no discount, no coupon lines (whatever the weights)
            lines += _coupon_lines(merchant, coupon_disc, coupon_weights)
        return Funded(tuple(lines), lots)  # every line above moves something: nothing to drop
    elif kind in (EntryKind.REFUND, EntryKind.VOID):
        lines, lots = _reverse(kind, payload, merchant, lots, original)
    elif kind == EntryKind.REDEEM:
        lines.append(Line("pts_redeemed", merchant, points=_int(payload, "pts")))
    elif kind == EntryKind.MEMBERSHIP_FEE:
        amount = _int(payload, "amount")
        if payload.get("tender") == "sv":  # the program's fee paid from the program's float
            taken, lots = spend(lots, amount)
            lines += [Line("sv_out", PROGRAM, issuer, share) for issuer, share in taken]
        else:
            lines.append(Line("fee", merchant, PROGRAM, amount))
    return Funded(tuple(line for line in lines if line.amount or line.points), lots)


def _reverse(kind: str, payload: Mapping[str, Any], merchant: str, lots: Lots,
             original: Original | None) -> tuple[list[Line], Lots]:
    owner = original.merchant if original is not None else merchant
    sv = _int(payload, "sv")
    if original is not None and original.kind == EntryKind.TOPUP and kind == EntryKind.VOID:
        topup = {line.flow: line.amount for line in original.lines}
        amount, bonus = topup.get("sv_in", 0), topup.get("bonus", 0)
        if amount + bonus != -sv:  # the void's own figures win; the bonus is what the original recorded
            bonus = min(bonus, max(-sv, 0))
            amount = -sv - bonus
        return ([Line("sv_in", owner, owner, -amount), Line("bonus", owner, owner, -bonus)],
                take_back(lots, owner, amount + bonus))
    lines: list[Line] = []
    if sv > 0:
        returned = (_returned(original, sv) if original is not None else [(PROGRAM, sv)])
        lines += [Line("sv_out", owner, issuer, -amount) for issuer, amount in returned]
        lots = give_back(lots, returned)
    elif sv < 0:  # a void of a top-up the ledger does not hold
        lines += [Line("sv_in", owner, owner, sv)]
        lots = take_back(lots, owner, -sv)
    lines.append(Line("pts_issued", owner, points=-_int(payload, "pts_rev")))
    lines.append(Line("pts_redeemed", owner, points=-_int(payload, "pts_back")))
    if kind == EntryKind.VOID and original is not None and payload.get("coupons_back"):
        lines += [Line("coupon", line.merchant, line.issuer, -line.amount)
                  for line in original.lines if line.flow == "coupon"]
    return lines, lots
