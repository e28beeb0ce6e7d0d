"""Quotes: check one cashier operation against a member's state and the rules, and compute its journal payload.

Every function here is pure. A quote either raises ``DomainError(message, code=..., sentence=..., params=...)``
whose message tells the cashier what to do (in English; ``sentence`` and ``params`` say it in the cashier's
language at the edge, ``terminal/i18n``), or returns a quote whose ``payload`` is exactly the journal payload of
docs/internals.md and whose ``after`` is ``apply_entry(state, kind, payload)`` — the state the member will have
once it is journaled.

Order of a sale (docs/loyalty-rules.md has worked examples):
  1. tier discount  = round_half_up(gross × tier discount_bp / 10000)
  2. coupons        each checked (held, unused, valid now, min spend on the amount after the tier discount, stacking);
                    fixed coupons take their amount, percent coupons round_half_up(after_tier × bp / 10000);
                    their sum is capped at the amount after the tier discount
  3. points         whole redemption units only, worth at most round_down(after_coupons × max_redeem_bp / 10000)
  4. net            = gross − tier − coupons − points (never below zero)
  5. points earned  = round_down(net × multiplier_bp / (10000 × earn_minor_per_point))
A stored-value sale needs balance ≥ net. Refunds share stored value, redeemed and earned points in proportion to the
refunded amount, by cumulative rounding: after refunds totalling R of a net N, share(X) = round_half_up(X × R / N)
has been returned in all; each refund returns share(R_after) − share(R_before), so the last refund takes the
remainder and the refunds of a sale add up exactly to its figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cardkit.core.members import Coupon, Tier
from cardkit.core.money import Money, round_down, round_half_up
from cardkit.core.rules import BP_ONE, Rules, TopupBonus
from cardkit.core.state import MemberState, apply_entry
from cardkit.errors import DomainError
from cardkit.journal import EntryKind

TENDERS = ("sv", "cash", "bank_card")
"""Stored value (the member's balance) or an external tender that is only recorded, not processed."""
EXTERNAL_TENDERS = ("cash", "bank_card")
YEAR_S = 365 * 86_400


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    """A checked operation ready to journal."""

    kind: EntryKind
    payload: dict[str, Any]
    after: MemberState
    sv_debit: int = 0
    """Stored value this operation takes from the balance (what offline risk limits bound)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SaleQuote(Quote):
    gross: Money
    tier_disc: Money
    coupon_disc: Money
    pts_disc: Money
    net: Money
    pts_earn: int
    pts_redeem: int
    coupons: tuple[str, ...]
    tender: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TopupQuote(Quote):
    amount: Money
    bonus: Money
    tender: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundQuote(Quote):
    amount: Money
    sv: Money
    pts_back: int
    pts_rev: int
    tender: str
    remaining_after: Money
    """What can still be refunded on the original sale after this refund."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VoidQuote(Quote):
    sv: Money
    pts_back: int
    pts_rev: int
    coupons_back: tuple[str, ...]
    original_kind: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RedeemQuote(Quote):
    points: int
    item: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FeeQuote(Quote):
    amount: Money
    tier: Tier
    until: int
    tender: str


def _decline(code: str, message: str, *, sentence: str | None = None, **params: Any) -> DomainError:
    """A decline: ``code`` for scripts and advice, ``message`` in English, ``sentence`` (default: the code) and
    ``params`` (codes, numbers, Money: never words) to say it in another language."""
    return DomainError(message, code=code, sentence=sentence, params=params)


AMOUNT_WORDS = {"sale": "sale amount", "topup": "top-up amount", "refund": "refund amount"}
"""What an amount is for, in the English messages (``what`` in the params: one of these keys)."""


def _check_amount(amount: Money, currency: str, state: MemberState, what: str) -> None:
    words = AMOUNT_WORDS[what]
    if not isinstance(amount, Money):
        raise _decline("bad_amount", f"The {words} must be an amount of money", sentence="amount_not_money",
                       what=what)
    if amount.currency != currency or state.currency != currency:
        raise _decline("currency_mismatch",
                       f"The {words} is in {amount.currency} but this store's rules and the member's account use "
                       f"{currency}; enter the amount in {currency}", sentence="amount_currency",
                       what=what, given=amount.currency, currency=currency)
    if amount.minor <= 0:
        raise _decline("bad_amount", f"The {words} must be more than zero", sentence="amount_not_positive",
                       what=what)


def _check_tender(tender: str, allowed: Sequence[str]) -> None:
    if tender not in allowed:
        names = ", ".join(allowed)
        raise _decline("bad_tender", f"Tender {tender!r} cannot be used here; choose one of: {names}",
                       tender=tender, allowed=list(allowed))


def _check_balance(state: MemberState, needed: int, currency: str) -> None:
    if needed > state.balance:
        raise _decline(
            "insufficient_balance",
            f"Stored value is {Money(state.balance, currency)} but {Money(needed, currency)} is needed; "
            "top up first or pay the difference by cash or bank card",
            balance=Money(state.balance, currency), needed=Money(needed, currency),
        )


def _finish(kind: EntryKind, state: MemberState, payload: dict[str, Any]) -> MemberState:
    after = apply_entry(state, kind, payload)
    # Belt and braces: no quote may ever leave a negative balance or points behind.
    if after.balance < 0:
        _check_balance(state, state.balance - after.balance, state.currency)
    if after.points < 0:
        raise _decline("points_insufficient",
                       f"The member has {state.points} points but this needs {state.points - after.points}",
                       sentence="points_insufficient", points=state.points, needed=state.points - after.points)
    return after


# -- sale -------------------------------------------------------------------------------------------------------
def _coupon_value(coupon: Coupon, base: Money) -> Money:
    if coupon.amount_off is not None:
        if coupon.amount_off.currency != base.currency:
            raise _decline("coupon_invalid", f"Coupon {coupon.coupon_id} is in another currency and cannot be used",
                           sentence="coupon_currency", coupon=coupon.coupon_id)
        return coupon.amount_off
    if coupon.percent_off_bp is not None:
        return base.percent_bp(coupon.percent_off_bp)
    raise _decline("coupon_invalid", f"Coupon {coupon.coupon_id} has no discount; it cannot be used",
                   sentence="coupon_no_discount", coupon=coupon.coupon_id)


def _coupon_discount(
    state: MemberState, held: Sequence[Coupon], rules: Rules, coupon_ids: Sequence[str], base: Money, now: int,
) -> Money:
    ids = list(coupon_ids)
    if not ids:
        return Money.zero(base.currency)
    if len(set(ids)) != len(ids):
        raise _decline("coupon_used", "The same coupon was entered twice; each coupon can be used once",
                       sentence="coupon_twice")
    if len(ids) > rules.coupons.max_stacked:
        raise _decline("too_many_coupons",
                       f"At most {rules.coupons.max_stacked} coupons can be used on one sale; remove "
                       f"{len(ids) - rules.coupons.max_stacked}", sentence="coupons_max",
                       most=rules.coupons.max_stacked, extra=len(ids) - rules.coupons.max_stacked)
    by_id = {c.coupon_id: c for c in held}
    total = Money.zero(base.currency)
    for coupon_id in ids:
        coupon = by_id.get(coupon_id)
        if coupon is None:
            raise _decline("coupon_unknown", f"Coupon {coupon_id} is not one of this member's coupons",
                           coupon=coupon_id)
        if not rules.accepts_coupon(coupon.funder):
            raise _decline("coupon_not_accepted",
                           f"Coupon {coupon_id} is not accepted at this merchant's stores; remove it from the sale",
                           coupon=coupon_id)
        if coupon_id in state.used_coupons:
            raise _decline("coupon_used", f"Coupon {coupon_id} has already been used; remove it from the sale",
                           coupon=coupon_id)
        if now < coupon.valid_from:
            raise _decline("coupon_not_yet_valid", f"Coupon {coupon_id} is not valid yet; remove it from the sale",
                           coupon=coupon_id)
        if now > coupon.valid_until:
            raise _decline("coupon_expired", f"Coupon {coupon_id} has expired; remove it from the sale",
                           coupon=coupon_id)
        if coupon.min_spend is not None and base < coupon.min_spend:
            raise _decline("coupon_min_spend",
                           f"Coupon {coupon_id} needs a spend of at least {coupon.min_spend} after the member "
                           f"discount (this sale: {base}); remove it or add items",
                           coupon=coupon_id, min_spend=coupon.min_spend, base=base)
        if len(ids) > 1 and not coupon.stackable:
            raise _decline("too_many_coupons",
                           f"Coupon {coupon_id} cannot be combined with other coupons; use it on its own",
                           sentence="coupon_alone", coupon=coupon_id)
        total = total + _coupon_value(coupon, base)
    return total.min(base)


def quote_sale(
    state: MemberState,
    coupons: Sequence[Coupon],
    rules: Rules,
    *,
    amount: Money,
    coupon_ids: Sequence[str] = (),
    redeem_points: int = 0,
    tender: str,
    now: int,
    card_id: str,
    offline: bool,
) -> SaleQuote:
    """Check and price a sale of ``amount`` (gross) for the member; ``coupons`` are the coupons the member holds."""
    _check_amount(amount, rules.currency, state, "sale")
    _check_tender(tender, TENDERS)
    cur = rules.currency
    tier_rule = rules.tier(state.tier)
    tier_disc = amount.percent_bp(tier_rule.discount_bp)
    after_tier = amount - tier_disc
    coupon_disc = _coupon_discount(state, coupons, rules, coupon_ids, after_tier, now)
    after_coupons = after_tier - coupon_disc

    if type(redeem_points) is not int or redeem_points < 0:
        raise _decline("bad_points", "Points to redeem must be a whole number, zero or more",
                       sentence="points_not_whole")
    pts = rules.points
    if redeem_points % pts.redeem_points_per_unit:
        step = pts.redeem_points_per_unit
        lower = redeem_points - redeem_points % step
        raise _decline("points_step", f"Points are redeemed in steps of {step}; enter {lower} or {lower + step}",
                       step=step, lower=lower, upper=lower + step)
    if redeem_points > state.points:
        raise _decline("points_insufficient",
                       f"The member has {state.points} points, fewer than the {redeem_points} asked for",
                       sentence="points_fewer", points=state.points, asked=redeem_points)
    # A cap rounds down so that the stated share of the bill is never exceeded.
    cap = round_down(after_coupons.minor * pts.max_redeem_bp_of_bill, BP_ONE)
    max_units = cap // pts.redeem_unit_minor
    units = redeem_points // pts.redeem_points_per_unit
    if units > max_units:
        raise _decline("points_cap",
                       f"Points can pay at most {Money(max_units * pts.redeem_unit_minor, cur)} of this bill; "
                       f"redeem at most {max_units * pts.redeem_points_per_unit} points",
                       most=Money(max_units * pts.redeem_unit_minor, cur),
                       points=max_units * pts.redeem_points_per_unit)
    pts_disc = Money(units * pts.redeem_unit_minor, cur)
    net = after_coupons - pts_disc
    pts_earn = round_down(net.minor * tier_rule.points_multiplier_bp, BP_ONE * pts.earn_minor_per_point)
    sv = net.minor if tender == "sv" else 0
    if tender == "sv":
        _check_balance(state, sv, cur)
    used = tuple(coupon_ids)
    payload: dict[str, Any] = {
        "card": card_id, "member": state.member_id, "cur": cur,
        "gross": amount.minor, "tier_disc": tier_disc.minor, "coupon_disc": coupon_disc.minor,
        "pts_disc": pts_disc.minor, "net": net.minor, "tender": tender, "sv": sv,
        "pts_earn": pts_earn, "pts_redeem": redeem_points, "coupons": list(used), "offline": offline,
    }
    return SaleQuote(
        kind=EntryKind.SALE, payload=payload, after=_finish(EntryKind.SALE, state, payload), sv_debit=sv,
        gross=amount, tier_disc=tier_disc, coupon_disc=coupon_disc, pts_disc=pts_disc, net=net,
        pts_earn=pts_earn, pts_redeem=redeem_points, coupons=used, tender=tender,
    )


# -- top-up -----------------------------------------------------------------------------------------------------
def topup_bonus(rules: Rules, amount: Money) -> Money:
    """The single best bonus for a top-up of ``amount``: the largest bonus whose minimum the amount reaches."""
    best: TopupBonus | None = None
    for rule in rules.topup_bonuses:
        if amount >= rule.min_amount and (best is None or rule.bonus > best.bonus):
            best = rule
    return best.bonus if best is not None else Money.zero(amount.currency)


def quote_topup(
    state: MemberState, rules: Rules, *, amount: Money, tender: str, card_id: str, offline: bool,
) -> TopupQuote:
    """Stored value bought with an external tender, plus the best top-up bonus."""
    _check_amount(amount, rules.currency, state, "topup")
    if tender == "sv":
        raise _decline("bad_tender", "A top-up is paid by cash or bank card, not from stored value",
                       sentence="topup_from_sv")
    _check_tender(tender, EXTERNAL_TENDERS)
    bonus = topup_bonus(rules, amount)
    payload: dict[str, Any] = {
        "card": card_id, "member": state.member_id, "cur": rules.currency, "amount": amount.minor,
        "bonus": bonus.minor, "tender": tender, "offline": offline,
    }
    return TopupQuote(kind=EntryKind.TOPUP, payload=payload, after=_finish(EntryKind.TOPUP, state, payload),
                      amount=amount, bonus=bonus, tender=tender)


# -- refund and void --------------------------------------------------------------------------------------------
def _check_original(state: MemberState, original: Mapping[str, Any], kind: str) -> None:
    if original.get("member") != state.member_id:
        raise _decline("wrong_member", f"That {kind} belongs to another member; tap the card used for it",
                       kind=str(kind))
    if original.get("cur") != state.currency:
        raise _decline("currency_mismatch", f"That {kind} was in another currency and cannot be reversed here",
                       sentence="original_currency", kind=str(kind))


def _check_supervisor(supervisor: str) -> None:
    if not isinstance(supervisor, str) or not supervisor.strip():
        raise _decline("supervisor_required", "Refunds and voids need a supervisor; ask one to approve")


def _share(total: int, part: int, whole: int) -> int:
    """``total`` × ``part`` / ``whole`` rounded half up (the cumulative share of a refund)."""
    return round_half_up(total * part, whole)


def quote_refund(
    state: MemberState,
    original_sale_payload: Mapping[str, Any],
    original_uuid: str,
    *,
    refund_amount: Money,
    already_refunded_minor: int,
    supervisor: str,
    card_id: str | None = None,
    offline: bool,
    voided: bool = False,
) -> RefundQuote:
    """A (partial) refund of a sale: value back to the sale's tender, points shared in proportion (see module doc)."""
    _check_supervisor(supervisor)
    original = original_sale_payload
    _check_original(state, original, EntryKind.SALE)
    if voided:
        raise _decline("already_voided", "That sale has been voided; there is nothing left to refund",
                       sentence="refund_after_void")
    _check_amount(refund_amount, state.currency, state, "refund")
    net = int(original.get("net", 0))
    if net <= 0:
        raise _decline("not_refundable",
                       "That sale was paid entirely with coupons or points; a supervisor can void it instead",
                       sentence="nothing_paid")
    if already_refunded_minor < 0 or already_refunded_minor > net:
        raise _decline("refund_exceeds", "The refunds recorded for that sale do not add up; call support",
                       sentence="refunds_inconsistent")
    remaining = net - already_refunded_minor
    cur = state.currency
    if refund_amount.minor > remaining:
        raise _decline("refund_exceeds",
                       f"At most {Money(remaining, cur)} can still be refunded on that sale "
                       f"({Money(already_refunded_minor, cur)} of {Money(net, cur)} already refunded)",
                       remaining=Money(remaining, cur), refunded=Money(already_refunded_minor, cur),
                       net=Money(net, cur))
    before, after_total = already_refunded_minor, already_refunded_minor + refund_amount.minor
    sv_total = int(original.get("sv", 0))
    redeemed = int(original.get("pts_redeem", 0))
    earned = int(original.get("pts_earn", 0))
    sv = _share(sv_total, after_total, net) - _share(sv_total, before, net)
    pts_back = _share(redeemed, after_total, net) - _share(redeemed, before, net)
    pts_rev = _share(earned, after_total, net) - _share(earned, before, net)
    if state.points + pts_back - pts_rev < 0:
        raise _decline("points_insufficient",
                       f"This refund takes back {pts_rev - pts_back} points earned on the sale but the member has "
                       f"only {state.points}; refund a smaller amount or ask a supervisor",
                       sentence="refund_points", back=pts_rev - pts_back, points=state.points)
    tender = str(original.get("tender", "cash"))
    payload: dict[str, Any] = {
        "card": card_id if card_id is not None else original.get("card"), "member": state.member_id, "cur": cur,
        "orig": original_uuid, "amount": refund_amount.minor, "sv": sv, "pts_back": pts_back, "pts_rev": pts_rev,
        "tender": tender, "supervisor": supervisor, "offline": offline,
    }
    return RefundQuote(
        kind=EntryKind.REFUND, payload=payload, after=_finish(EntryKind.REFUND, state, payload),
        amount=refund_amount, sv=Money(sv, cur), pts_back=pts_back, pts_rev=pts_rev, tender=tender,
        remaining_after=Money(net - after_total, cur),
    )


def quote_void(
    state: MemberState,
    original_kind: str,
    original_payload: Mapping[str, Any],
    original_uuid: str,
    *,
    already_refunded_minor: int,
    voided: bool,
    supervisor: str,
    card_id: str | None = None,
    offline: bool,
) -> VoidQuote:
    """Reverse a whole sale or top-up; refused once it has been voided or (partly) refunded."""
    _check_supervisor(supervisor)
    if original_kind not in (EntryKind.SALE, EntryKind.TOPUP):
        raise _decline("not_voidable", f"A {original_kind} cannot be voided; only sales and top-ups can",
                       kind=original_kind)
    _check_original(state, original_payload, original_kind)
    if voided:
        raise _decline("already_voided", f"That {original_kind} has already been voided", kind=original_kind)
    if already_refunded_minor:
        raise _decline("already_refunded",
                       "That sale has been partly refunded, so it can no longer be voided; refund the rest instead")
    cur = state.currency
    o = original_payload
    if original_kind == EntryKind.SALE:
        sv, pts_back, pts_rev = int(o["sv"]), int(o["pts_redeem"]), int(o["pts_earn"])
        coupons_back: tuple[str, ...] = tuple(o.get("coupons", ()))
        spend = int(o["net"])
        if state.points + pts_back - pts_rev < 0:
            raise _decline("points_insufficient",
                           f"Voiding takes back {pts_rev - pts_back} points earned on the sale but the member has "
                           f"only {state.points}; a refund of part of the sale may still be possible",
                           sentence="void_points", back=pts_rev - pts_back, points=state.points)
    else:
        sv = -(int(o["amount"]) + int(o["bonus"]))
        pts_back = pts_rev = spend = 0
        coupons_back = ()
        if state.balance + sv < 0:
            raise _decline("insufficient_balance",
                           f"The top-up has already been spent (balance {Money(state.balance, cur)}, the void needs "
                           f"{Money(-sv, cur)}); it can no longer be voided", sentence="topup_spent",
                           balance=Money(state.balance, cur), needed=Money(-sv, cur))
    payload: dict[str, Any] = {
        "card": card_id if card_id is not None else o.get("card"), "member": state.member_id, "cur": cur,
        "orig": original_uuid, "sv": sv, "pts_back": pts_back, "pts_rev": pts_rev,
        "coupons_back": list(coupons_back), "spend": spend, "supervisor": supervisor, "offline": offline,
    }
    return VoidQuote(kind=EntryKind.VOID, payload=payload, after=_finish(EntryKind.VOID, state, payload),
                     sv=Money(sv, cur), pts_back=pts_back, pts_rev=pts_rev, coupons_back=coupons_back,
                     original_kind=original_kind)


# -- points for a gift, tiers, membership -----------------------------------------------------------------------
def quote_redeem(
    state: MemberState, rules: Rules, *, points: int, item: str, card_id: str, offline: bool,
) -> RedeemQuote:
    """Spend points on a gift item outside a sale."""
    if type(points) is not int or points <= 0:
        raise _decline("bad_points", "Points to redeem must be a whole number more than zero",
                       sentence="points_not_positive")
    if not item or not item.strip():
        raise _decline("bad_item", "Say which gift item the points are for")
    if points > state.points:
        raise _decline("points_insufficient",
                       f"The member has {state.points} points, fewer than the {points} this gift needs",
                       sentence="points_gift", points=state.points, needed=points)
    payload: dict[str, Any] = {"card": card_id, "member": state.member_id, "pts": points, "item": item.strip(),
                               "offline": offline}
    return RedeemQuote(kind=EntryKind.REDEEM, payload=payload, after=_finish(EntryKind.REDEEM, state, payload),
                       points=points, item=item.strip())


def tier_upgrade_due(state: MemberState, rules: Rules) -> Tier | None:
    """The highest tier above the member's that their yearly spend reaches, or None."""
    due: Tier | None = None
    for tier in Tier:
        threshold = rules.tier(tier).upgrade_yearly_spend
        if tier.rank > state.tier.rank and threshold is not None and state.yearly_spend >= threshold.minor:
            due = tier
    return due


def quote_tier_upgrade(state: MemberState, rules: Rules, *, card_id: str) -> Quote:
    """Move the member up to the tier their yearly spend reaches (a replacement card is then issued)."""
    due = tier_upgrade_due(state, rules)
    if due is None:
        raise _decline("tier_not_due",
                       f"Yearly spend {state.yearly_spend_money} does not reach a higher tier yet",
                       spend=state.yearly_spend_money)
    payload: dict[str, Any] = {"member": state.member_id, "card": card_id, "from": state.tier.value,
                               "to": due.value}
    return Quote(kind=EntryKind.TIER_UPGRADE, payload=payload, after=_finish(EntryKind.TIER_UPGRADE, state, payload))


def quote_membership_fee(
    state: MemberState, rules: Rules, *, tier: Tier, tender: str, now: int, card_id: str, offline: bool,
) -> FeeQuote:
    """A year of ``tier`` for its annual fee; renewing extends from the current paid-until date."""
    _check_tender(tender, TENDERS)
    if state.currency != rules.currency:
        raise _decline("currency_mismatch", f"The member's account is not in {rules.currency}",
                       sentence="account_currency", currency=rules.currency)
    fee = rules.tier(tier).annual_fee
    if fee is None:
        raise _decline("no_fee", f"The {tier.value} tier cannot be bought; it is reached by yearly spend",
                       tier=tier.value)
    if tier.rank < state.tier.rank:
        raise _decline("tier_lower", f"The member is already {state.tier.value}, above {tier.value}",
                       current=state.tier.value, tier=tier.value)
    if tender == "sv":
        _check_balance(state, fee.minor, rules.currency)
    until = max(now, state.fee_paid_until) + YEAR_S
    payload: dict[str, Any] = {
        "card": card_id, "member": state.member_id, "cur": rules.currency, "amount": fee.minor, "tender": tender,
        "tier": tier.value, "until": until, "offline": offline,
    }
    return FeeQuote(kind=EntryKind.MEMBERSHIP_FEE, payload=payload,
                    after=_finish(EntryKind.MEMBERSHIP_FEE, state, payload),
                    sv_debit=fee.minor if tender == "sv" else 0, amount=fee, tier=tier, until=until, tender=tender)
