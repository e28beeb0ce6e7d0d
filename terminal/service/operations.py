"""The cashier operations on a member's card: sale, top-up, points for a gift, tier upgrade, membership fee, details.

Each one starts from a verified card's claims: quote (pure core) -> offline limits -> journal append -> receipt,
holding the operation lock from quote to committed append so two programs cannot spend the same balance.
Nothing is acknowledged that was not stored: a ``Receipt`` is built only from the entry the journal returned after
its commit; any error before that leaves the journal as it was and says why in one sentence.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from cardkit.cards.verdict import CardClaims
from cardkit.core import loyalty
from cardkit.core.members import Tier
from cardkit.core.money import Money
from cardkit.errors import DomainError
from cardkit.journal import EntryKind
from terminal.service import receipt_lines
from terminal.service.authorization import AuthorizationPath, ask
from terminal.service.desk import Desk, member_state, record
from terminal.service.limits import check_known_balance, check_offline_cash_topup, check_offline_limits
from terminal.service.lookups import held_coupons
from terminal.service.receipt import Receipt

Q = TypeVar("Q", bound=loyalty.Quote)


def _decide(desk: Desk, card: CardClaims, quote_at: Callable[[bool], Q],
            takes: Callable[[Q], tuple[int, int, tuple[str, ...]]]) -> tuple[Q, bool, AuthorizationPath | None,
                                                                           str | None]:
    """The quote to record, whether it is offline, the authorization path and the entry uuid it was asked under.

    ``quote_at(offline)`` quotes (offline limits included when offline); ``takes(quote)`` is the stored value,
    points and coupons the quote takes. With an authorizer and something to take, the ledger is asked first
    (``terminal.service.authorization``): approved online, no offline limits; no answer in time, quoted again
    offline under the limits; declined, ``DomainError`` and nothing is recorded."""
    if desk.authorizer is None:
        offline = desk.offline
        return quote_at(offline), offline, None, None
    quote = quote_at(False)
    sv, points, coupons = takes(quote)
    if sv <= 0 and points <= 0 and not coupons:
        offline = desk.offline
        return (quote_at(True) if offline else quote), offline, None, None
    entry_uuid = str(uuid.UUID(bytes=desk.randbytes(16), version=4))
    path = ask(desk.authorizer, entry_uuid=entry_uuid, member_id=card.member_id, card_id=card.card_id,
               currency=desk.rules.currency, sv=sv, points=points, coupons=coupons)
    if path.online:
        return quote, False, path, entry_uuid
    return quote_at(True), True, path, entry_uuid


def _sale_takes(q: loyalty.SaleQuote) -> tuple[int, int, tuple[str, ...]]:
    return q.sv_debit, q.pts_redeem, tuple(q.coupons)


def preview_sale(desk: Desk, card: CardClaims, amount: Money, *, tender: str, coupon_ids: Sequence[str] = (),
                 redeem_points: int = 0) -> loyalty.SaleQuote:
    """The sale's figures for the confirm screen, without recording anything (raises DomainError)."""
    return _quote_sale(desk, card, amount, tender=tender, coupon_ids=coupon_ids, redeem_points=redeem_points,
                       offline=desk.offline)


def _quote_sale(desk: Desk, card: CardClaims, amount: Money, *, tender: str, coupon_ids: Sequence[str],
                redeem_points: int, offline: bool) -> loyalty.SaleQuote:
    check_known_balance(desk, card.member_id, sv_debit=amount.minor if tender == "sv" else 0,
                        points=redeem_points, coupons=len(coupon_ids))
    state, cached = member_state(desk, card.member_id, card.tier)
    quote = loyalty.quote_sale(state, held_coupons(cached), desk.rules, amount=amount,
                               coupon_ids=coupon_ids, redeem_points=redeem_points, tender=tender,
                               now=desk.clock(), card_id=card.card_id, offline=offline)
    check_offline_limits(desk, card, quote.sv_debit, offline)
    return quote


def sale(desk: Desk, card: CardClaims, amount: Money, *, tender: str, coupon_ids: Sequence[str] = (),
         redeem_points: int = 0, cashier_id: str | None = None, manual: bool = False) -> Receipt:
    with desk.operation_lock.hold():
        q, offline, path, entry_uuid = _decide(
            desk, card, lambda off: _quote_sale(desk, card, amount, tender=tender, coupon_ids=coupon_ids,
                                                redeem_points=redeem_points, offline=off), _sale_takes)
        lines = receipt_lines.sale_lines(q.payload, tier=q.after.tier.value, after=q.after)
        return record(desk, q, cashier_id, lines, offline, manual=manual, path=path, entry_uuid=entry_uuid)


def topup(desk: Desk, card: CardClaims, amount: Money, *, tender: str, cashier_id: str | None = None,
          manual: bool = False) -> Receipt:
    with desk.operation_lock.hold():
        offline = desk.offline
        state, _ = member_state(desk, card.member_id, card.tier)
        q = loyalty.quote_topup(state, desk.rules, amount=amount, tender=tender, card_id=card.card_id,
                                offline=offline)
        check_offline_cash_topup(desk, card, amount.minor, tender, offline)
        return record(desk, q, cashier_id, receipt_lines.topup_lines(q.payload, after=q.after), offline,
                      manual=manual)


def redeem(desk: Desk, card: CardClaims, points: int, item: str, *, cashier_id: str | None = None,
           manual: bool = False) -> Receipt:
    """Points for a gift item."""
    with desk.operation_lock.hold():
        check_known_balance(desk, card.member_id, points=points, what="redeem")
        state, _ = member_state(desk, card.member_id, card.tier)
        q, offline, path, entry_uuid = _decide(
            desk, card, lambda off: loyalty.quote_redeem(state, desk.rules, points=points, item=item,
                                                         card_id=card.card_id, offline=off),
            lambda quote: (0, quote.points, ()))
        gift = desk.rules.gift(item, desk.store_id)  # an item of the catalogue is named on the receipt
        return record(desk, q, cashier_id, receipt_lines.redeem_lines(q.payload, gift=gift, after=q.after),
                      offline, manual=manual, path=path, entry_uuid=entry_uuid)


def redeem_gift(desk: Desk, card: CardClaims, item_id: str, *, cashier_id: str | None = None,
                manual: bool = False) -> Receipt:
    """Points for an item of the store's gift catalogue: its points come from the rules, never from the caller."""
    gift = desk.rules.gift(item_id, desk.store_id)
    if gift is None:
        raise DomainError(f"No gift {item_id!r} in this store's catalogue", code="gift_unknown",
                          params={"item": item_id})
    return redeem(desk, card, gift.points, gift.item_id, cashier_id=cashier_id, manual=manual)


def upgrade_tier(desk: Desk, card: CardClaims, *, cashier_id: str | None = None, manual: bool = False) -> Receipt:
    """Move the member to the tier their yearly spend reached (the ledger then issues a replacement card)."""
    with desk.operation_lock.hold():
        offline = desk.offline
        state, _ = member_state(desk, card.member_id, card.tier)
        q = loyalty.quote_tier_upgrade(state, desk.rules, card_id=card.card_id)
        lines = receipt_lines.tier_upgrade_lines(q.payload, yearly_spend=state.yearly_spend_money)
        return record(desk, q, cashier_id, lines, offline, manual=manual)


def pay_membership_fee(desk: Desk, card: CardClaims, tier: Tier, *, tender: str, cashier_id: str | None = None,
                       manual: bool = False) -> Receipt:
    """A year of ``tier`` for its annual fee."""
    with desk.operation_lock.hold():
        check_known_balance(desk, card.member_id, sv_debit=1 if tender == "sv" else 0, what="membership_fee")
        state, _ = member_state(desk, card.member_id, card.tier)

        def quote_at(off: bool) -> loyalty.FeeQuote:
            q = loyalty.quote_membership_fee(state, desk.rules, tier=tier, tender=tender, now=desk.clock(),
                                             card_id=card.card_id, offline=off)
            check_offline_limits(desk, card, q.sv_debit, off)
            return q

        q, offline, path, entry_uuid = _decide(desk, card, quote_at, lambda quote: (quote.sv_debit, 0, ()))
        lines = receipt_lines.membership_fee_lines(q.payload, after=q.after)
        return record(desk, q, cashier_id, lines, offline, manual=manual, path=path, entry_uuid=entry_uuid)


def update_member(desk: Desk, member_id: str, *, notes: str | None = None, prefs: Mapping[str, Any] | None = None,
                  cashier_id: str | None = None) -> Receipt:
    """Record new notes and/or preferences (encrypted at rest; synced so every store sees them)."""
    if notes is None and prefs is None:
        raise DomainError("Nothing to update: give notes or preferences", code="bad_input",
                          sentence="nothing_to_update")
    payload: dict[str, Any] = {"member": member_id}
    if notes is not None:
        payload["notes"] = notes
    if prefs is not None:
        payload["prefs"] = {str(k): str(v) for k, v in prefs.items()}
    with desk.operation_lock.hold():
        entry = desk.store.journal.append(EntryKind.MEMBER_UPDATE, payload, cashier_id)
    return Receipt(entry=entry, lines=tuple(receipt_lines.member_update_lines()), after=None, offline=desk.offline)
