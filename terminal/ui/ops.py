"""The counter calls the screens make, in one place: each builds a zero-argument callable for a worker.

The screens collect what the cashier chose; these functions know the counter's signatures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from terminal.core.money import Money

Call = Callable[[], Any]


def quote_sale(counter: Any, card_id: str, amount: Money, *, coupons: Sequence[str], points: int,
               tender: str, cashier: Any) -> Call:
    return lambda: counter.quote_sale(card_id, amount, coupon_ids=list(coupons), redeem_points=points,
                                      tender=tender, cashier=cashier)


def sale(counter: Any, card_id: str, amount: Money, *, coupons: Sequence[str], points: int, tender: str,
         cashier: Any) -> Call:
    return lambda: counter.sale(card_id, amount, coupon_ids=list(coupons), redeem_points=points, tender=tender,
                                cashier=cashier)


def quote_topup(counter: Any, card_id: str, amount: Money, *, tender: str, cashier: Any) -> Call:
    return lambda: counter.quote_topup(card_id, amount, tender=tender, cashier=cashier)


def topup(counter: Any, card_id: str, amount: Money, *, tender: str, cashier: Any) -> Call:
    return lambda: counter.topup(card_id, amount, tender=tender, cashier=cashier)


def refund(counter: Any, orig_uuid: str, amount: Money, *, supervisor: str, cashier: Any) -> Call:
    return lambda: counter.refund(orig_uuid, amount, supervisor=supervisor, cashier=cashier)


def void(counter: Any, orig_uuid: str, *, supervisor: str, cashier: Any) -> Call:
    return lambda: counter.void(orig_uuid, supervisor=supervisor, cashier=cashier)


def upgrade(counter: Any, card_id: str, *, cashier: Any) -> Call:
    return lambda: counter.upgrade_tier(card_id, cashier=cashier)


def update_member(counter: Any, member_id: str, *, notes: str, prefs: dict[str, str], cashier: Any) -> Call:
    return lambda: counter.update_member(member_id, notes=notes, prefs=prefs, cashier=cashier)


def history(counter: Any, card_id: str, n: int) -> Call:
    return lambda: counter.history(card_id, n=n)


def member_view(counter: Any, card_id: str) -> Call:
    return lambda: counter.member_view(card_id)


def z_report(counter: Any, since_ms: int) -> Call:
    return lambda: counter.z_report(since_ms)
