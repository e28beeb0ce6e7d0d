"""Offline limits per member (issue 14): all of a member's cards together, and the offline cash top-up ceilings.

The issue's finding, replayed: with a second card the same member spent 450 + 60 offline with 440 more allowed.
Now the second card's 60 is declined (the member's cards together may spend 500 per 24 hours), through the pure
core and through the real counter with two cards of one member.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit.core.money import Money
from cardkit.core.risk import (
    DAY_MS,
    OfflineLimitError,
    check_offline_spend,
    check_offline_topup,
    member_offline_usage,
)
from cardkit.core.rules import DEFAULT_RULES, OfflineLimits, Rules
from cardkit.errors import ConfigError
from tests.fixtures.counter import CARD_GOLD, CounterWorld

T0 = 1_800_000_000_000
LIMITS = Rules.default().offline
SECOND_CARD = "fedcba9876543210"


def M(text: str) -> Money:
    return Money.parse(text, "CNY")


class MemberAtTerminal:
    """This terminal's journal for one member with several cards, and the limit checks before each operation."""

    def __init__(self, limits: OfflineLimits = LIMITS) -> None:
        self.limits = limits
        self.last_sync_ms = T0
        self.entries: list[tuple[int, str, dict[str, Any]]] = []

    def usage(self, now_ms: int, card: str) -> Any:
        return member_offline_usage(self.entries, "m1", card, now_ms=now_ms, last_sync_ms=self.last_sync_ms)

    def spend(self, minor: int, now_ms: int, card: str, *, offline: bool = True) -> None:
        if offline:
            check_offline_spend(self.limits, self.usage(now_ms, card), sv_amount=Money(minor))
        self.entries.append((now_ms, "sale", {"card": card, "member": "m1", "sv": minor, "net": minor,
                                              "tender": "sv", "offline": offline}))

    def top_up(self, minor: int, now_ms: int, card: str, tender: str = "cash") -> None:
        check_offline_topup(self.limits, self.usage(now_ms, card), amount=Money(minor), tender=tender)
        self.entries.append((now_ms, "topup", {"card": card, "member": "m1", "amount": minor, "bonus": 0,
                                               "tender": tender, "offline": True}))


def test_the_issue_replayed_two_cards_share_the_member_cap() -> None:
    member = MemberAtTerminal()
    member.spend(45_000, T0 + 1_000, "card-a")
    with pytest.raises(OfflineLimitError) as caught:
        member.spend(6_000, T0 + 2_000, "card-b")
    assert caught.value.limit == "member_daily" and caught.value.code == "offline_limit"
    assert "this member's cards together may spend 500.00 CNY" in str(caught.value)
    assert "have 50.00 CNY left" in str(caught.value)
    member.spend(5_000, T0 + 3_000, "card-b")  # exactly what is left passes
    with pytest.raises(OfflineLimitError):
        member.spend(1, T0 + 4_000, "card-a")
    # A rolling 24 hours later (and synced since) the first card's spend no longer counts.
    member.last_sync_ms = T0 + DAY_MS
    member.spend(45_000, T0 + 1_000 + DAY_MS + 1, "card-b")


def test_consecutive_payments_count_across_the_members_cards() -> None:
    member = MemberAtTerminal()
    for n in range(5):
        member.spend(100, T0 + n, "card-a" if n % 2 else "card-b")
    with pytest.raises(OfflineLimitError) as caught:
        member.spend(100, T0 + 10, "card-c")  # a third card is no way around the count
    assert caught.value.limit == "consecutive" and "this member's cards have made 5" in str(caught.value)
    member.spend(100, T0 + 11, "card-a", offline=False)  # any of the member's cards used online resets it
    member.spend(100, T0 + 12, "card-c")


def test_cash_topup_ceilings_per_operation_and_per_member_day() -> None:
    member = MemberAtTerminal()
    with pytest.raises(OfflineLimitError) as caught:
        member.top_up(200_001, T0, "card-a")
    assert caught.value.limit == "topup_per_op" and "at most 2000.00 CNY" in str(caught.value)
    member.top_up(200_000, T0 + 1, "card-a")
    member.top_up(200_000, T0 + 2, "card-b")
    with pytest.raises(OfflineLimitError) as caught:
        member.top_up(100_001, T0 + 3, "card-a")
    assert caught.value.limit == "topup_per_day" and "(1000.00 CNY left)" in str(caught.value)
    member.top_up(100_000, T0 + 4, "card-b")
    member.top_up(500_000, T0 + 5, "card-a", tender="bank_card")  # a bank card is authorized by its own network
    member.top_up(200_000, T0 + 1 + DAY_MS, "card-a")  # the first one left the window


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(1, 30_000)), max_size=30))
def test_no_sequence_of_cards_spends_past_the_member_cap(payments: list[tuple[str, int]]) -> None:
    member = MemberAtTerminal()
    for step, (card, minor) in enumerate(payments):
        with contextlib.suppress(OfflineLimitError):
            member.spend(minor, T0 + step, card)
    spent = sum(p["sv"] for _, _, p in member.entries)
    assert spent <= LIMITS.member_daily.minor
    assert len(member.entries) <= LIMITS.max_consecutive_offline_ops


def test_the_rules_carry_the_new_limits_and_older_rules_still_load() -> None:
    rules = Rules.default()
    assert rules.offline.sv_per_member_per_day == M("500.00")
    assert (rules.offline.cash_topup_per_op, rules.offline.cash_topup_per_day) == (M("2000.00"), M("5000.00"))
    assert Rules.from_mapping(rules.to_mapping()) == rules
    older = {**DEFAULT_RULES, "offline": {"sv_per_card_per_day": "300.00", "max_consecutive_offline_ops": 5,
                                          "max_since_sync_s": 86_400}}
    loaded = Rules.from_mapping(older)  # rules signed before issue 14: the member cap is the card cap
    assert loaded.offline.member_daily == M("300.00") and loaded.offline.cash_topup_per_op is None
    assert "sv_per_member_per_day" not in loaded.to_mapping()["offline"]
    with pytest.raises(ConfigError, match=r"offline\.cash_topup_per_day is not an amount"):
        Rules.from_mapping({**DEFAULT_RULES, "offline": {**DEFAULT_RULES["offline"], "cash_topup_per_day": "x"}})


def test_the_counter_counts_a_members_two_cards_together(counter_world: CounterWorld) -> None:
    counter = counter_world.counter()  # offline, synced a moment ago
    first = counter.tap(counter_world.token()).claims
    second = counter.tap(counter_world.token(card_id=SECOND_CARD)).claims
    assert first.member_id == second.member_id and first.card_id == CARD_GOLD != second.card_id
    counter.sale(first, M("500.00"), tender="sv")  # gold: 12 % off, 440.00 from stored value
    with pytest.raises(OfflineLimitError) as caught:
        counter.sale(second, M("75.00"), tender="sv")  # 66.00 more on the second card
    assert caught.value.limit == "member_daily"
    assert "have 60.00 CNY left" in str(caught.value)
    counter.sale(second, M("75.00"), tender="cash")  # cash still works
    counter.topup(second, M("2000.00"), tender="cash")
    counter.topup(first, M("2000.00"), tender="cash")
    with pytest.raises(OfflineLimitError) as caught:
        counter.topup(second, M("1000.01"), tender="cash")
    assert caught.value.limit == "topup_per_day"
    counter_world.online_flag[0] = True
    counter.topup(first, M("3000.01"), tender="cash")  # online, this terminal sets no ceiling
