"""The entry fold: each kind moves exactly the figures docs/internals.md says, nothing else, and never clamps."""

from __future__ import annotations

from typing import Any

import pytest

from cardkit.core.members import Tier
from cardkit.core.state import MemberState, apply_entry, fold
from cardkit.errors import DomainError

BASE = MemberState("m1", "CNY", balance=10_000, points=300, tier=Tier.STANDARD, yearly_spend=5_000,
                   used_coupons=frozenset({"old"}))


def sale(**over: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "card": "c1", "member": "m1", "cur": "CNY", "gross": 2_000, "tier_disc": 0, "coupon_disc": 500,
        "pts_disc": 100, "net": 1_400, "tender": "sv", "sv": 1_400, "pts_earn": 14, "pts_redeem": 100,
        "coupons": ["cp1"], "offline": True,
    }
    payload.update(over)
    return payload


def test_sale_spends_stored_value_moves_points_and_uses_coupons() -> None:
    after = apply_entry(BASE, "sale", sale())
    assert after.balance == 10_000 - 1_400
    assert after.points == 300 + 14 - 100
    assert after.yearly_spend == 5_000 + 1_400
    assert after.used_coupons == {"old", "cp1"}
    assert after.tier == BASE.tier


def test_cash_sale_leaves_the_balance() -> None:
    after = apply_entry(BASE, "sale", sale(tender="cash", sv=0))
    assert after.balance == BASE.balance
    assert after.yearly_spend == 6_400


def test_topup_adds_amount_and_bonus() -> None:
    after = apply_entry(BASE, "topup", {"card": "c1", "member": "m1", "cur": "CNY", "amount": 50_000,
                                        "bonus": 5_000, "tender": "cash", "offline": False})
    assert after.balance == 65_000
    assert (after.points, after.yearly_spend) == (BASE.points, BASE.yearly_spend)


def test_refund_restores_and_reverses() -> None:
    after = apply_entry(BASE, "refund", {"card": "c1", "member": "m1", "cur": "CNY", "orig": "u", "amount": 700,
                                         "sv": 700, "pts_back": 50, "pts_rev": 7, "tender": "sv",
                                         "supervisor": "s", "offline": True})
    assert after.balance == 10_700
    assert after.points == 343
    assert after.yearly_spend == 4_300
    assert after.used_coupons == BASE.used_coupons  # a refund never gives coupons back


def test_void_of_a_sale_and_of_a_topup() -> None:
    voided_sale = apply_entry(BASE, "void", {"card": "c1", "member": "m1", "cur": "CNY", "orig": "u", "sv": 1_400,
                                             "pts_back": 100, "pts_rev": 14, "coupons_back": ["old"],
                                             "spend": 1_400, "supervisor": "s", "offline": False})
    assert (voided_sale.balance, voided_sale.points, voided_sale.yearly_spend) == (11_400, 386, 3_600)
    assert voided_sale.used_coupons == frozenset()
    voided_topup = apply_entry(BASE, "void", {"card": "c1", "member": "m1", "cur": "CNY", "orig": "u",
                                              "sv": -5_500, "pts_back": 0, "pts_rev": 0, "coupons_back": [],
                                              "spend": 0, "supervisor": "s", "offline": False})
    assert voided_topup.balance == 4_500
    # Payloads written before `spend` existed still fold (nothing to take back from the yearly spend).
    legacy = {"card": "c1", "member": "m1", "cur": "CNY", "orig": "u", "sv": 0, "pts_back": 0, "pts_rev": 0,
              "coupons_back": [], "supervisor": "s", "offline": False}
    assert apply_entry(BASE, "void", legacy) == BASE
    with pytest.raises(DomainError):
        apply_entry(BASE, "void", {**legacy, "spend": -1})


def test_redeem_upgrade_and_fee() -> None:
    assert apply_entry(BASE, "redeem", {"card": "c1", "member": "m1", "pts": 200, "item": "mug",
                                        "offline": True}).points == 100
    assert apply_entry(BASE, "tier_upgrade", {"member": "m1", "card": "c1", "from": "standard",
                                              "to": "gold"}).tier == Tier.GOLD
    fee = {"card": "c1", "member": "m1", "cur": "CNY", "amount": 9_900, "tender": "sv", "tier": "preferred",
           "until": 1_000, "offline": False}
    paid = apply_entry(BASE, "membership_fee", fee)
    assert (paid.balance, paid.tier, paid.fee_paid_until) == (100, Tier.PREFERRED, 1_000)
    # Paying by cash leaves the balance; a fee for a lower tier never lowers the member's tier.
    gold = MemberState("m1", "CNY", tier=Tier.GOLD)
    assert apply_entry(gold, "membership_fee", {**fee, "tender": "cash"}) == \
        MemberState("m1", "CNY", tier=Tier.GOLD, fee_paid_until=1_000)


@pytest.mark.parametrize("kind", ["card_reject", "member_update", "shift_open", "shift_close", "cashier_event",
                                  "something_new"])
def test_other_kinds_leave_the_state(kind: str) -> None:
    assert apply_entry(BASE, kind, {"reason": "expired", "member": "other"}) is BASE


def test_the_fold_is_exact_and_never_clamps() -> None:
    # Offline spending at two terminals can drive a balance below zero; the fold must show it, not hide it.
    after = fold(BASE, [("sale", sale(sv=8_000, net=8_000)), ("sale", sale(sv=8_000, net=8_000, coupons=[]))])
    assert after.balance == -6_000


@pytest.mark.parametrize(("kind", "payload", "words"), [
    ("sale", sale(sv="14.00"), "'sv' is missing or not a whole number"),
    ("sale", sale(net=-1), "'net' is negative"),
    ("sale", sale(coupons="cp1"), "'coupons' is missing or not a list of ids"),
    ("sale", sale(member="m2"), "is for member 'm2', not 'm1'"),
    ("sale", sale(cur="USD"), "is in 'USD' but the member's account is in CNY"),
    ("topup", {"card": "c1", "member": "m1", "cur": "CNY", "amount": 5}, "'bonus' is missing"),
    ("tier_upgrade", {"member": "m1", "to": "diamond"}, "'to' is not a tier"),
    ("sale", sale(pts_earn=True), "'pts_earn' is missing or not a whole number"),
])
def test_malformed_entries_are_refused(kind: str, payload: dict[str, Any], words: str) -> None:
    with pytest.raises(DomainError) as caught:
        apply_entry(BASE, kind, payload)
    assert caught.value.code == "bad_entry"
    assert words in str(caught.value)


def test_snapshot_mapping_round_trips() -> None:
    assert MemberState.from_mapping(BASE.to_mapping()) == BASE
