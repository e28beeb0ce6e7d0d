"""The counter calls the screens make, in one place: each returns a zero-argument callable for a worker.

The screens collect what the cashier chose; these functions know the counter's signatures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cardkit.core import loyalty
from cardkit.core.money import Money
from terminal.ui.view import Tapped

if TYPE_CHECKING:
    from terminal.offline.cashiers import Cashier
    from terminal.service.counter import Counter

Call = Callable[[], Any]


def _id(cashier: Cashier | None) -> str | None:
    return cashier.cashier_id if cashier is not None else None


def preview_sale(counter: Counter, card: Tapped, amount: Money, *, coupons: Sequence[str], points: int,
                 tender: str, cashier: Cashier | None) -> Call:
    return lambda: counter.preview_sale(card.claims, amount, tender=tender, coupon_ids=list(coupons),
                                        redeem_points=points)


def sale(counter: Counter, card: Tapped, amount: Money, *, coupons: Sequence[str], points: int, tender: str,
         cashier: Cashier | None) -> Call:
    return lambda: counter.sale(card.claims, amount, tender=tender, coupon_ids=list(coupons),
                                redeem_points=points, cashier_id=_id(cashier))


def preview_topup(counter: Counter, card: Tapped, amount: Money, *, tender: str) -> Call:
    # Pure quote on the figures shown: the bonus the rules add. The top-up itself re-quotes under the lock.
    return lambda: loyalty.quote_topup(card.view.state, counter.rules, amount=amount, tender=tender,
                                       card_id=card.card_id, offline=counter.offline)


def topup(counter: Counter, card: Tapped, amount: Money, *, tender: str, cashier: Cashier | None) -> Call:
    return lambda: counter.topup(card.claims, amount, tender=tender, cashier_id=_id(cashier))


def refund(counter: Counter, orig_uuid: str, amount: Money, *, supervisor: Cashier,
           cashier: Cashier | None) -> Call:
    return lambda: counter.refund(orig_uuid, amount, supervisor=supervisor, cashier_id=_id(cashier))


def void(counter: Counter, orig_uuid: str, *, supervisor: Cashier, cashier: Cashier | None) -> Call:
    return lambda: counter.void(orig_uuid, supervisor=supervisor, cashier_id=_id(cashier))


def redeem(counter: Counter, card: Tapped, points: int, item: str, *, cashier: Cashier | None) -> Call:
    return lambda: counter.redeem(card.claims, points, item, cashier_id=_id(cashier))


def upgrade(counter: Counter, card: Tapped, *, cashier: Cashier | None) -> Call:
    return lambda: counter.upgrade_tier(card.claims, cashier_id=_id(cashier))


def update_member(counter: Counter, member_id: str, *, notes: str, prefs: dict[str, str],
                  cashier: Cashier | None) -> Call:
    return lambda: counter.update_member(member_id, notes=notes, prefs=prefs, cashier_id=_id(cashier))


def history(counter: Counter, card_id: str, n: int) -> Call:
    return lambda: counter.history(card_id, n=n)


def member_view(counter: Counter, card: Tapped) -> Call:
    return lambda: counter.member_view(card.claims)


def z_report(counter: Counter, since_ms: int) -> Call:
    return lambda: counter.z_report(since_ms)
