"""The worked examples of docs/loyalty-rules.md, and one test per decline code."""

from __future__ import annotations

from typing import Any

import pytest

from cardkit.core.loyalty import (
    quote_membership_fee,
    quote_redeem,
    quote_refund,
    quote_sale,
    quote_tier_upgrade,
    quote_topup,
    quote_void,
    tier_upgrade_due,
    topup_bonus,
)
from cardkit.core.members import Coupon, Tier
from cardkit.core.money import Money
from cardkit.core.rules import Rules
from cardkit.core.state import MemberState, apply_entry
from cardkit.errors import DomainError

RULES = Rules.default()
NOW = 1_800_000_000
M = Money.parse


def member(**over: Any) -> MemberState:
    values: dict[str, Any] = {"member_id": "m1", "currency": "CNY", "balance": 100_000, "points": 500,
                              "tier": Tier.PREFERRED}
    values.update(over)
    return MemberState(**values)


TEN_OFF = Coupon("TEN", amount_off=M("10.00"), min_spend=M("100.00"), stackable=True)
PCT5 = Coupon("PCT5", percent_off_bp=500, stackable=True)
SOLO = Coupon("SOLO", amount_off=M("3.00"))
LATER = Coupon("LATER", amount_off=M("1.00"), valid_from=NOW + 10)
OLD = Coupon("OLD", amount_off=M("1.00"), valid_until=NOW - 1)
HELD = [TEN_OFF, PCT5, SOLO, LATER, OLD]


def sale(state: MemberState | None = None, amount: str = "123.45", **kw: Any) -> Any:
    args: dict[str, Any] = {"coupon_ids": (), "redeem_points": 0, "tender": "sv", "now": NOW, "card_id": "card-1",
                            "offline": True}
    args.update(kw)
    return quote_sale(state or member(), HELD, RULES, amount=M(amount), **args)


def test_example_1_preferred_member_sale_with_coupon_and_points() -> None:
    q = sale(coupon_ids=["TEN"], redeem_points=200)
    # 10% of 123.45 is 12.345 -> 12.35 (half up); 111.10 - 10.00 coupon - 2.00 points = 99.10
    assert (q.tier_disc, q.coupon_disc, q.pts_disc, q.net) == (M("12.35"), M("10.00"), M("2.00"), M("99.10"))
    # 99.10 x 1.25 = 123.875 points -> 123 (always down)
    assert q.pts_earn == 123
    assert q.payload == {
        "card": "card-1", "member": "m1", "cur": "CNY", "gross": 12345, "tier_disc": 1235, "coupon_disc": 1000,
        "pts_disc": 200, "net": 9910, "tender": "sv", "sv": 9910, "pts_earn": 123, "pts_redeem": 200,
        "coupons": ["TEN"], "offline": True,
    }
    assert q.after == apply_entry(member(), "sale", q.payload)
    assert (q.after.balance, q.after.points) == (100_000 - 9910, 500 - 200 + 123)
    assert q.sv_debit == 9910


def test_example_2_percent_coupon_is_taken_on_the_amount_after_the_tier_discount() -> None:
    q = sale(amount="80.00", coupon_ids=["PCT5"], tender="cash")
    # 80.00 - 8.00 tier = 72.00; 5% of 72.00 = 3.60
    assert (q.tier_disc, q.coupon_disc, q.net, q.payload["sv"]) == (M("8.00"), M("3.60"), M("68.40"), 0)


def test_example_3_topup_bonus_takes_the_single_best_tier() -> None:
    assert topup_bonus(RULES, M("199.99")) == M("0.00")
    assert topup_bonus(RULES, M("500.00")) == M("50.00")
    assert topup_bonus(RULES, M("999.99")) == M("50.00")
    assert topup_bonus(RULES, M("5000.00")) == M("120.00")
    q = quote_topup(member(balance=0), RULES, amount=M("500.00"), tender="cash", card_id="card-1", offline=False)
    assert q.payload == {"card": "card-1", "member": "m1", "cur": "CNY", "amount": 50000, "bonus": 5000,
                         "tender": "cash", "offline": False}
    assert q.after.balance == 55000


def test_example_4_two_partial_refunds_add_up_exactly() -> None:
    q = sale(coupon_ids=["TEN"], redeem_points=200)
    first = quote_refund(q.after, q.payload, "u-1", refund_amount=M("50.00"), already_refunded_minor=0,
                         supervisor="sup", offline=True)
    # 200 x 50.00/99.10 = 100.9 -> 101 back; 123 x 50.00/99.10 = 62.06 -> 62 taken back
    assert (first.sv, first.pts_back, first.pts_rev) == (M("50.00"), 101, 62)
    assert first.remaining_after == M("49.10")
    second = quote_refund(first.after, q.payload, "u-1", refund_amount=M("49.10"), already_refunded_minor=5000,
                          supervisor="sup", offline=True)
    assert (second.sv, second.pts_back, second.pts_rev) == (M("49.10"), 99, 61)
    assert (second.after.balance, second.after.points, second.after.yearly_spend) == (100_000, 500, 0)
    assert second.after.used_coupons == {"TEN"}  # refunds never hand a coupon back
    assert second.payload["orig"] == "u-1" and second.payload["supervisor"] == "sup"


def test_example_5_void_puts_everything_back_including_coupons() -> None:
    q = sale(coupon_ids=["TEN"], redeem_points=200)
    v = quote_void(q.after, "sale", q.payload, "u-1", already_refunded_minor=0, voided=False, supervisor="sup",
                   offline=True)
    assert v.after == member()
    assert v.payload["coupons_back"] == ["TEN"] and v.payload["sv"] == 9910 and v.payload["spend"] == 9910


def test_void_of_a_topup_takes_amount_and_bonus_back() -> None:
    t = quote_topup(member(balance=0), RULES, amount=M("500.00"), tender="cash", card_id="card-1", offline=False)
    v = quote_void(t.after, "topup", t.payload, "u-2", already_refunded_minor=0, voided=False, supervisor="s",
                   offline=False)
    assert v.payload["sv"] == -55000 and v.after == member(balance=0)


def test_redeem_tiers_and_fee() -> None:
    r = quote_redeem(member(), RULES, points=300, item="tote bag", card_id="card-1", offline=True)
    assert r.payload == {"card": "card-1", "member": "m1", "pts": 300, "item": "tote bag", "offline": True}
    assert r.after.points == 200
    spender = member(tier=Tier.STANDARD, yearly_spend=M("10000.00").minor)
    assert tier_upgrade_due(spender, RULES) == Tier.GOLD
    assert tier_upgrade_due(member(yearly_spend=100), RULES) is None
    up = quote_tier_upgrade(spender, RULES, card_id="card-1")
    assert up.payload == {"member": "m1", "card": "card-1", "from": "standard", "to": "gold"}
    fee = quote_membership_fee(member(tier=Tier.STANDARD), RULES, tier=Tier.GOLD, tender="sv", now=NOW,
                               card_id="card-1", offline=True)
    assert fee.payload["amount"] == 29900 and fee.payload["until"] == NOW + 365 * 86400
    assert (fee.after.tier, fee.after.balance, fee.sv_debit) == (Tier.GOLD, 100_000 - 29900, 29900)
    renewed = quote_membership_fee(fee.after, RULES, tier=Tier.GOLD, tender="cash", now=NOW + 5,
                                   card_id="card-1", offline=True)
    assert renewed.until == NOW + 2 * 365 * 86400  # renewal extends from the paid-until date


def _code(call: Any) -> str:
    with pytest.raises(DomainError) as caught:
        call()
    message = str(caught.value)
    assert message and "\n" not in message
    return caught.value.code


def test_sale_declines_each_have_a_code() -> None:
    assert _code(lambda: sale(state=member(balance=100))) == "insufficient_balance"
    assert _code(lambda: sale(coupon_ids=["TEN"], state=member(used_coupons=frozenset({"TEN"})))) == "coupon_used"
    assert _code(lambda: sale(coupon_ids=["TEN", "TEN"])) == "coupon_used"
    assert _code(lambda: sale(coupon_ids=["OLD"])) == "coupon_expired"
    assert _code(lambda: sale(coupon_ids=["LATER"])) == "coupon_not_yet_valid"
    assert _code(lambda: sale(coupon_ids=["NOPE"])) == "coupon_unknown"
    # 110.00 - 11.00 tier = 99.00 is under the 100.00 minimum spend of TEN
    assert _code(lambda: sale(amount="110.00", coupon_ids=["TEN"])) == "coupon_min_spend"
    assert _code(lambda: sale(coupon_ids=["TEN", "PCT5", "SOLO"])) == "too_many_coupons"
    assert _code(lambda: sale(coupon_ids=["TEN", "SOLO"])) == "too_many_coupons"  # SOLO does not stack
    assert _code(lambda: sale(redeem_points=600)) == "points_insufficient"
    assert _code(lambda: sale(redeem_points=150)) == "points_step"
    assert _code(lambda: sale(amount="5.00", redeem_points=300)) == "points_cap"  # 50% of 4.50 is 2.25
    assert _code(lambda: sale(amount="0.00")) == "bad_amount"
    assert _code(lambda: sale(tender="voucher")) == "bad_tender"
    assert _code(lambda: quote_sale(member(), [], RULES, amount=Money(100, "USD"), tender="cash", now=NOW,
                                    card_id="c", offline=False)) == "currency_mismatch"


def test_min_spend_exactly_met_passes() -> None:
    # 111.12 - 11.11 (10% of 111.12 = 11.112 -> 11.11) = 100.01 >= 100.00
    assert sale(amount="111.12", coupon_ids=["TEN"]).coupon_disc == M("10.00")


def test_coupons_never_take_the_bill_below_zero() -> None:
    big = Coupon("BIG", amount_off=M("50.00"))
    q = quote_sale(member(), [big], RULES, amount=M("20.00"), coupon_ids=["BIG"], tender="sv", now=NOW,
                   card_id="c", offline=False)
    assert (q.coupon_disc, q.net, q.pts_earn, q.payload["sv"]) == (M("18.00"), M("0.00"), 0, 0)


def test_refund_and_void_declines() -> None:
    q = sale(coupon_ids=["TEN"], redeem_points=200)
    after = q.after

    def refund(amount: str, done: int = 0, **kw: Any) -> Any:
        args: dict[str, Any] = {"supervisor": "sup", "offline": True}
        args.update(kw)
        return quote_refund(after, q.payload, "u", refund_amount=M(amount), already_refunded_minor=done, **args)

    assert _code(lambda: refund("99.11")) == "refund_exceeds"
    assert _code(lambda: refund("10.00", done=9000)) == "refund_exceeds"
    assert _code(lambda: refund("10.00", voided=True)) == "already_voided"
    assert _code(lambda: refund("10.00", supervisor=" ")) == "supervisor_required"
    assert _code(lambda: quote_refund(member(member_id="m2"), q.payload, "u", refund_amount=M("1.00"),
                                      already_refunded_minor=0, supervisor="s", offline=True)) == "wrong_member"
    plain = sale()  # earns 139 points and redeems none
    spent = MemberState("m1", "CNY", balance=plain.after.balance, points=100, tier=Tier.PREFERRED)
    assert _code(lambda: quote_refund(spent, plain.payload, "u", refund_amount=M("111.10"), already_refunded_minor=0,
                                      supervisor="s", offline=True)) == "points_insufficient"
    assert _code(lambda: quote_void(spent, "sale", plain.payload, "u", already_refunded_minor=0, voided=False,
                                    supervisor="s", offline=True)) == "points_insufficient"

    def void(**kw: Any) -> Any:
        args: dict[str, Any] = {"already_refunded_minor": 0, "voided": False, "supervisor": "sup", "offline": True}
        args.update(kw)
        return quote_void(after, "sale", q.payload, "u", **args)

    assert _code(lambda: void(voided=True)) == "already_voided"
    assert _code(lambda: void(already_refunded_minor=100)) == "already_refunded"
    assert _code(lambda: quote_void(after, "redeem", {"member": "m1"}, "u", already_refunded_minor=0,
                                    voided=False, supervisor="s", offline=True)) == "not_voidable"
    t = quote_topup(member(balance=0), RULES, amount=M("500.00"), tender="cash", card_id="c", offline=False)
    drained = MemberState("m1", "CNY", balance=100, tier=Tier.PREFERRED)
    assert _code(lambda: quote_void(drained, "topup", t.payload, "u", already_refunded_minor=0, voided=False,
                                    supervisor="s", offline=True)) == "insufficient_balance"


def test_other_declines() -> None:
    assert _code(lambda: quote_topup(member(), RULES, amount=M("10.00"), tender="sv", card_id="c",
                                     offline=False)) == "bad_tender"
    assert _code(lambda: quote_redeem(member(), RULES, points=501, item="mug", card_id="c",
                                      offline=False)) == "points_insufficient"
    assert _code(lambda: quote_redeem(member(), RULES, points=0, item="mug", card_id="c",
                                      offline=False)) == "bad_points"
    assert _code(lambda: quote_tier_upgrade(member(), RULES, card_id="c")) == "tier_not_due"
    assert _code(lambda: quote_membership_fee(member(), RULES, tier=Tier.STANDARD, tender="cash", now=NOW,
                                              card_id="c", offline=False)) == "no_fee"
    assert _code(lambda: quote_membership_fee(member(tier=Tier.GOLD), RULES, tier=Tier.PREFERRED, tender="cash",
                                              now=NOW, card_id="c", offline=False)) == "tier_lower"
    assert _code(lambda: quote_membership_fee(member(balance=0), RULES, tier=Tier.GOLD, tender="sv", now=NOW,
                                              card_id="c", offline=False)) == "insufficient_balance"
