"""The ledger's authorization decision, pure: live figures in, approve or decline (with a reason) out.

Live figures are the applied state (``MemberProjection``) less what open holds already promised to other
terminals: available balance = applied balance − stored value of open holds, the same for points, and a coupon is
free when it is the member's, not used by an applied entry and not in an open hold. Credits (refunds, voids: a
negative hold) never add to what is available before their entry is applied, so a race can only make the ledger
more careful, never less.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass

from cardkit.authorization import AuthorizationRequest


@dataclass(frozen=True, slots=True)
class OpenHold:
    """A hold that is still counted: approved, its entry not yet applied, not expired."""

    entry_uuid: str
    sv: int
    points: int
    coupons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LiveFigures:
    currency: str
    balance: int
    """Applied balance (minor units)."""
    points: int
    used_coupons: Set[str]
    member_coupons: Set[str]


@dataclass(frozen=True, slots=True)
class Decision:
    approved: bool
    reason: str = ""
    available_balance: int = 0
    available_points: int = 0


def decide(request: AuthorizationRequest, figures: LiveFigures, holds: Iterable[OpenHold]) -> Decision:
    """Approve ``request`` if the live figures after ``holds`` cover it; otherwise say why not."""
    holds = list(holds)
    balance = figures.balance - sum(h.sv for h in holds if h.sv > 0)
    points = figures.points - sum(h.points for h in holds if h.points > 0)
    held_coupons = {c for h in holds for c in h.coupons}

    def no(reason: str) -> Decision:
        return Decision(False, reason, balance, points)

    if request.currency != figures.currency:
        return no("currency")
    for coupon in request.coupons:
        if coupon not in figures.member_coupons:
            return no("coupon_unknown")
        if coupon in figures.used_coupons:
            return no("coupon_used")
        if coupon in held_coupons:
            return no("coupon_held")
    if request.sv > 0 and request.sv > balance:
        return no("insufficient_balance")
    if request.points > 0 and request.points > points:
        return no("insufficient_points")
    return Decision(True, "", balance - max(request.sv, 0), points - max(request.points, 0))
