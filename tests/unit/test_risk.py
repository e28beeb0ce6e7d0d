"""Offline risk limits, followed from a card's first offline use to the decline."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit.core.money import Money
from cardkit.core.risk import (
    DAY_MS,
    OfflineLimitError,
    OfflineUsage,
    check_offline_spend,
    offline_usage,
)
from cardkit.core.rules import OfflineLimits

LIMITS = OfflineLimits(sv_per_card_per_day=Money.parse("500.00"), max_consecutive_offline_ops=5,
                       max_since_sync_s=86_400)
T0 = 1_800_000_000_000  # ms


class CardAtTerminal:
    """This terminal's journal for one card, as (wall_ms, kind, payload), and the limit check before each spend."""

    def __init__(self, limits: OfflineLimits = LIMITS, last_sync_ms: int | None = T0) -> None:
        self.limits = limits
        self.last_sync_ms = last_sync_ms
        self.entries: list[tuple[int, str, dict[str, Any]]] = []

    def usage(self, now_ms: int, card: str = "c1") -> OfflineUsage:
        return offline_usage(self.entries, card, now_ms=now_ms, last_sync_ms=self.last_sync_ms)

    def spend(self, minor: int, now_ms: int, *, offline: bool = True, tender: str = "sv", card: str = "c1") -> None:
        sv = minor if tender == "sv" else 0
        if offline:
            check_offline_spend(self.limits, self.usage(now_ms, card), sv_amount=Money(sv))
        self.entries.append((now_ms, "sale", {"card": card, "member": "m1", "sv": sv, "net": minor,
                                              "tender": tender, "offline": offline}))


def test_consecutive_limit_from_first_offline_use_to_decline() -> None:
    card = CardAtTerminal()
    for n in range(5):
        card.spend(1_000, T0 + n * 60_000)  # five small offline stored-value payments pass
        assert card.usage(T0 + n * 60_000 + 1).consecutive_offline_sv_ops == n + 1
    with pytest.raises(OfflineLimitError) as caught:
        card.spend(1_000, T0 + 10 * 60_000)
    assert caught.value.code == "offline_limit" and caught.value.limit == "consecutive"
    assert "5 offline stored-value payments in a row" in str(caught.value)
    assert "cash and bank card still work and points are still earned" in str(caught.value)
    # The cashier falls back to cash: it passes and earns points; the card's stored value stays blocked.
    card.spend(1_000, T0 + 11 * 60_000, tender="cash")
    with pytest.raises(OfflineLimitError):
        card.spend(1_000, T0 + 12 * 60_000)
    # One operation made online resets the counter.
    card.spend(1_000, T0 + 13 * 60_000, offline=False)
    card.spend(1_000, T0 + 14 * 60_000)


def test_daily_amount_limit_counts_a_rolling_24_hours() -> None:
    card = CardAtTerminal(OfflineLimits(Money.parse("500.00"), max_consecutive_offline_ops=100,
                                        max_since_sync_s=10**9))
    card.spend(30_000, T0)
    card.spend(15_000, T0 + 1_000)
    card.spend(5_000, T0 + 2_000)  # exactly 500.00 in all: allowed
    with pytest.raises(OfflineLimitError) as caught:
        card.spend(1, T0 + 3_000)
    assert caught.value.limit == "daily_amount"
    assert "has 0.00 CNY left" in str(caught.value)
    # Just under 24 hours after the first payment the window still holds it; just after, it has rolled off.
    with pytest.raises(OfflineLimitError):
        card.spend(30_000, T0 + DAY_MS - 1)
    card.spend(30_000, T0 + DAY_MS + 1)
    # Another card at the same terminal has its own allowance.
    card.spend(50_000, T0 + 5_000, card="c2")


def test_time_since_sync_limit() -> None:
    card = CardAtTerminal(last_sync_ms=T0)
    card.spend(100, T0 + 86_400_000)  # exactly at the limit: allowed
    with pytest.raises(OfflineLimitError) as caught:
        card.spend(100, T0 + 86_401_000)
    assert caught.value.limit == "since_sync" and "last sync was 24 h 0 min ago" in str(caught.value)
    never = CardAtTerminal(last_sync_ms=None)
    with pytest.raises(OfflineLimitError, match="has not synced with the ledger yet"):
        never.spend(100, T0)


def test_only_stored_value_spending_is_ever_declined() -> None:
    exhausted = OfflineUsage(sv_spent_24h=10**9, consecutive_offline_sv_ops=10**6, since_sync_s=None)
    check_offline_spend(LIMITS, exhausted, sv_amount=Money(0))  # cash, bank card, top-ups, points: sv_amount 0


def test_clock_going_back_does_not_free_the_allowance() -> None:
    card = CardAtTerminal(OfflineLimits(Money.parse("500.00"), 100, 10**9))
    card.spend(50_000, T0)
    with pytest.raises(OfflineLimitError):
        card.spend(100, T0 - 3_600_000)  # the terminal's clock jumped back an hour


def test_other_operations_and_cards_do_not_count() -> None:
    entries: list[tuple[int, str, dict[str, Any]]] = [
        (T0, "topup", {"card": "c1", "amount": 100, "offline": True}),
        (T0, "card_reject", {"card": "c1", "reason": "expired"}),
        (T0, "sale", {"card": "c2", "sv": 100, "offline": True}),
        (T0, "membership_fee", {"card": "c1", "amount": 9_900, "tender": "sv", "offline": True}),
        (T0, "membership_fee", {"card": "c1", "amount": 9_900, "tender": "cash", "offline": True}),
    ]
    usage = offline_usage(entries, "c1", now_ms=T0 + 1, last_sync_ms=T0 - 5_000)
    assert usage == OfflineUsage(sv_spent_24h=9_900, consecutive_offline_sv_ops=1, since_sync_s=5)


@settings(max_examples=150, deadline=None)
@given(amounts=st.lists(st.integers(1, 30_000), min_size=1, max_size=30),
       max_ops=st.integers(0, 8), cap=st.integers(0, 100_000))
def test_declines_exactly_when_a_limit_would_be_passed(amounts: list[int], max_ops: int, cap: int) -> None:
    card = CardAtTerminal(OfflineLimits(Money(cap), max_ops, 86_400))
    spent, count = 0, 0
    for i, minor in enumerate(amounts):
        now = T0 + i * 1_000
        should_pass = count < max_ops and spent + minor <= cap
        try:
            card.spend(minor, now)
        except OfflineLimitError:
            assert not should_pass
            continue
        assert should_pass
        spent, count = spent + minor, count + 1
    assert spent <= cap and count <= max_ops
