"""Invariants of the loyalty engine under random operation sequences (hypothesis).

* the stored-value balance and the points never go negative;
* the fold of every journaled payload equals the state the quotes handed back;
* money and points are conserved: whatever way a sale's refunds are split, the member ends up exactly where one
  refund of the same total would leave them (a reference model computed independently with fractions), and a
  fully refunded or voided sale gives back exactly what it took;
* a coupon is used by at most one live sale;
* every rounding matches the documented rule (half up for discounts and shares, down for points earned
  and for the points cap).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from cardkit.core.loyalty import (
    quote_redeem,
    quote_refund,
    quote_sale,
    quote_topup,
    quote_void,
    topup_bonus,
)
from cardkit.core.members import Coupon, Tier
from cardkit.core.money import Money
from cardkit.core.rules import DEFAULT_RULES, Rules
from cardkit.core.state import MemberState, fold
from cardkit.errors import DomainError

NOW = 1_800_000_000
ALLOWED_DECLINES = {
    "insufficient_balance", "coupon_used", "coupon_min_spend", "too_many_coupons", "points_insufficient",
    "points_cap", "refund_exceeds", "already_voided", "already_refunded", "not_refundable",
}
COUPONS = [
    Coupon("F5", amount_off=Money(500), stackable=True),
    Coupon("P10", percent_off_bp=1000, stackable=True),
    Coupon("F20MIN", amount_off=Money(2000), min_spend=Money(10_000), stackable=True),
    Coupon("SOLO", amount_off=Money(300)),
]

COUPON_IDS = st.sampled_from([c.coupon_id for c in COUPONS])


def half_up(value: Fraction) -> int:
    """Independent statement of the rule for non-negative values: the nearest integer, halves upward."""
    return math.floor(value + Fraction(1, 2))


@st.composite
def rules_strategy(draw: st.DrawFn) -> Rules:
    data: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULT_RULES.items()}
    tiers = {name: dict(rule) for name, rule in DEFAULT_RULES["tiers"].items()}
    for rule in tiers.values():
        rule["discount_bp"] = draw(st.integers(0, 10_000))
        rule["points_multiplier_bp"] = draw(st.integers(0, 50_000))
    data["tiers"] = tiers
    data["points"] = dict(DEFAULT_RULES["points"]) | {
        "earn_minor_per_point": draw(st.integers(1, 1_000)),
        "redeem_points_per_unit": draw(st.sampled_from([1, 10, 100])),
        "redeem_unit_minor": draw(st.sampled_from([1, 50, 100])),
        "max_redeem_bp_of_bill": draw(st.integers(0, 10_000)),
    }
    return Rules.from_mapping(data)


@dataclass
class Sale:
    uuid: str
    payload: dict[str, Any]
    refunded: int = 0
    voided: bool = False


@dataclass
class Topup:
    uuid: str
    payload: dict[str, Any]
    voided: bool = False


@dataclass
class Run:
    initial: MemberState
    state: MemberState
    journal: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    sales: list[Sale] = field(default_factory=list)
    topups: list[Topup] = field(default_factory=list)
    redeemed: int = 0
    refunds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def record(self, kind: str, payload: dict[str, Any], after: MemberState) -> str:
        self.journal.append((kind, payload))
        self.state = after
        return f"u{len(self.journal)}"


def reference_state(run: Run) -> MemberState:
    """The member's figures from the surviving operations alone, refunds summed per sale (path independent)."""
    init = run.initial
    balance, points, spend = init.balance, init.points - run.redeemed, init.yearly_spend
    coupons = set(init.used_coupons)
    for t in run.topups:
        if not t.voided:
            balance += t.payload["amount"] + t.payload["bonus"]
    for s in run.sales:
        if s.voided:
            continue
        p, done = s.payload, s.refunded
        net = p["net"]
        sv_back = half_up(Fraction(p["sv"] * done, net)) if net else 0
        earned_back = half_up(Fraction(p["pts_earn"] * done, net)) if net else 0
        redeemed_back = half_up(Fraction(p["pts_redeem"] * done, net)) if net else 0
        balance -= p["sv"] - sv_back
        points += (p["pts_earn"] - earned_back) - (p["pts_redeem"] - redeemed_back)
        spend += net - done
        coupons |= set(p["coupons"])
    return MemberState(init.member_id, init.currency, balance=balance, points=points, tier=init.tier,
                       yearly_spend=spend, used_coupons=frozenset(coupons))


def check_invariants(run: Run) -> None:
    assert run.state.balance >= 0
    assert run.state.points >= 0
    assert fold(run.initial, run.journal) == run.state
    assert run.state == reference_state(run)
    live = [c for s in run.sales if not s.voided for c in s.payload["coupons"]]
    assert len(live) == len(set(live)), "a coupon was used by two live sales"
    for sale in run.sales:
        refunds = run.refunds.get(sale.uuid, [])
        p = sale.payload
        assert sum(r["amount"] for r in refunds) == sale.refunded <= p["net"]
        for key, orig in (("sv", "sv"), ("pts_back", "pts_redeem"), ("pts_rev", "pts_earn")):
            total = sum(r[key] for r in refunds)
            assert 0 <= total <= p[orig]
            if sale.refunded == p["net"] > 0:
                assert total == p[orig], "a fully refunded sale must give back exactly what it took"
            for r in refunds:  # each partial refund is within one unit of its exact proportion
                assert abs(Fraction(r[key]) - Fraction(p[orig] * r["amount"], p["net"])) <= 1


def _expect_decline(exc: DomainError) -> None:
    assert exc.code in ALLOWED_DECLINES, (exc.code, str(exc))
    assert str(exc) and "\n" not in str(exc)


@settings(max_examples=150, deadline=None)
@given(rules=rules_strategy(), data=st.data(),
       balance=st.integers(0, 200_000), points=st.integers(0, 5_000), tier=st.sampled_from(list(Tier)))
def test_random_sequences_keep_every_invariant(rules: Rules, data: st.DataObject, balance: int, points: int,
                                               tier: Tier) -> None:
    start = MemberState("m1", "CNY", balance=balance, points=points, tier=tier, yearly_spend=0,
                        used_coupons=frozenset({"SOLO"}) if data.draw(st.booleans()) else frozenset())
    run = Run(initial=start, state=start)
    for _ in range(data.draw(st.integers(1, 25))):
        op = data.draw(st.sampled_from(["sale", "sale", "topup", "refund", "refund", "void", "redeem"]))
        try:
            if op == "sale":
                q = quote_sale(
                    run.state, COUPONS, rules, amount=Money(data.draw(st.integers(1, 60_000))),
                    coupon_ids=data.draw(st.one_of(st.just([]), st.lists(COUPON_IDS, max_size=2, unique=True),
                                                   st.lists(COUPON_IDS, max_size=3))),
                    redeem_points=data.draw(st.integers(0, 5)) * rules.points.redeem_points_per_unit,
                    tender=data.draw(st.sampled_from(["sv", "cash", "bank_card"])),
                    now=NOW, card_id="c1", offline=True,
                )
                run.sales.append(Sale(run.record("sale", q.payload, q.after), q.payload))
            elif op == "topup":
                t = quote_topup(run.state, rules, amount=Money(data.draw(st.integers(1, 120_000))),
                                tender="cash", card_id="c1", offline=True)
                run.topups.append(Topup(run.record("topup", t.payload, t.after), t.payload))
            elif op == "refund" and run.sales:
                sale = data.draw(st.sampled_from(run.sales))
                left = sale.payload["net"] - sale.refunded
                amount = data.draw(st.one_of(st.just(left), st.integers(1, max(1, left + 10))))
                if amount <= 0:
                    continue
                r = quote_refund(run.state, sale.payload, sale.uuid, refund_amount=Money(amount),
                                 already_refunded_minor=sale.refunded, supervisor="sup", offline=True,
                                 voided=sale.voided)
                assert amount <= left
                run.record("refund", r.payload, r.after)
                run.refunds.setdefault(sale.uuid, []).append(r.payload)
                sale.refunded += amount
            elif op == "void" and (run.sales or run.topups):
                targets: list[Sale | Topup] = [*run.sales, *run.topups]
                target = data.draw(st.sampled_from(targets))
                kind = "sale" if isinstance(target, Sale) else "topup"
                v = quote_void(run.state, kind, target.payload, target.uuid,
                               already_refunded_minor=target.refunded if isinstance(target, Sale) else 0,
                               voided=target.voided, supervisor="sup", offline=True)
                run.record("void", v.payload, v.after)
                target.voided = True
            elif op == "redeem":
                pts = data.draw(st.integers(1, 2_000))
                rq = quote_redeem(run.state, rules, points=pts, item="gift", card_id="c1", offline=True)
                run.record("redeem", rq.payload, rq.after)
                run.redeemed += pts
            else:
                continue
            event(f"{op} accepted")
        except DomainError as exc:
            _expect_decline(exc)
            event(f"{op} declined: {exc.code}")
        check_invariants(run)


@settings(max_examples=200, deadline=None)
@given(rules=rules_strategy(), gross=st.integers(1, 10**9), tier=st.sampled_from(list(Tier)),
       pct=st.booleans())
def test_sale_rounding_matches_the_documented_rule(rules: Rules, gross: int, tier: Tier, pct: bool) -> None:
    coupon = Coupon("C", percent_off_bp=1234) if pct else Coupon("C", amount_off=Money(999))
    state = MemberState("m1", "CNY", balance=0, points=0, tier=tier)
    q = quote_sale(state, [coupon], rules, amount=Money(gross), coupon_ids=["C"], tender="cash", now=NOW,
                   card_id="c", offline=False)
    bp = rules.tiers[tier].discount_bp
    tier_disc = half_up(Fraction(gross * bp, 10_000))
    assert q.tier_disc.minor == tier_disc
    after_tier = gross - tier_disc
    coupon_disc = min(after_tier, half_up(Fraction(after_tier * 1234, 10_000)) if pct else 999)
    assert q.coupon_disc.minor == coupon_disc
    net = after_tier - coupon_disc
    assert q.net.minor == net >= 0
    mult = rules.tiers[tier].points_multiplier_bp
    assert q.pts_earn == math.floor(Fraction(net * mult, 10_000 * rules.points.earn_minor_per_point))


@settings(max_examples=200, deadline=None)
@given(rules=rules_strategy(), gross=st.integers(1, 10**7), units=st.integers(0, 10**5))
def test_points_never_pay_more_than_the_cap(rules: Rules, gross: int, units: int) -> None:
    pts = rules.points
    state = MemberState("m1", "CNY", points=10**12, tier=Tier.STANDARD)
    try:
        q = quote_sale(state, [], rules, amount=Money(gross), redeem_points=units * pts.redeem_points_per_unit,
                       tender="cash", now=NOW, card_id="c", offline=False)
    except DomainError as exc:
        assert exc.code == "points_cap"
        return
    after = gross - q.tier_disc.minor
    assert q.pts_disc.minor == units * pts.redeem_unit_minor
    assert q.pts_disc.minor <= Fraction(after * pts.max_redeem_bp_of_bill, 10_000)  # a cap is never exceeded


@settings(max_examples=100, deadline=None)
@given(data=st.data(), net_gross=st.integers(1, 10**6), redeem=st.integers(0, 20))
def test_any_split_of_refunds_conserves_exactly(data: st.DataObject, net_gross: int, redeem: int) -> None:
    rules = Rules.default()
    state = MemberState("m1", "CNY", balance=10**9, points=10**6, tier=Tier.GOLD)
    try:
        sale = quote_sale(state, [], rules, amount=Money(net_gross), redeem_points=redeem * 100, tender="sv",
                          now=NOW, card_id="c", offline=True)
    except DomainError as exc:
        assert exc.code == "points_cap"
        return
    net = sale.net.minor
    current, done = sale.after, 0
    guard = 0
    while done < net:
        guard += 1
        assert guard <= net + 1
        amount = data.draw(st.integers(1, net - done))
        r = quote_refund(current, sale.payload, "u", refund_amount=Money(amount), already_refunded_minor=done,
                         supervisor="s", offline=True)
        current, done = r.after, done + amount
    # Everything given back: the member is where they started, apart from yearly spend history of zero.
    assert (current.balance, current.points, current.yearly_spend) == (state.balance, state.points, 0)


@given(amount=st.integers(1, 10**9))
def test_topup_bonus_is_the_best_single_bonus(amount: int) -> None:
    rules = Rules.default()
    reached = [b.bonus.minor for b in rules.topup_bonuses if amount >= b.min_amount.minor]
    assert topup_bonus(rules, Money(amount)).minor == max(reached, default=0)
