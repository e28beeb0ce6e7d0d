"""Median/MAD in integers and the unusual-amount rule, against properties."""

from __future__ import annotations

import statistics

from hypothesis import given
from hypothesis import strategies as st

from ledger.anomaly import robust

amounts = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=60)


@given(amounts)
def test_median2_is_twice_the_median(values: list[int]) -> None:
    assert robust.median2(values) == 2 * statistics.median(values)


@given(amounts)
def test_mad2_is_twice_the_mad(values: list[int]) -> None:
    med2 = robust.median2(values)
    expected = 2 * statistics.median(abs(v - statistics.median(values)) for v in values)
    assert abs(robust.mad2(values, med2) - expected) <= 1  # halves of halves are floored


@given(st.lists(st.integers(min_value=100, max_value=100_000), min_size=10, max_size=50))
def test_an_amount_inside_the_history_is_never_unusual(values: list[int]) -> None:
    assert not robust.is_unusual_high(max(values), values, 600, 300) or max(values) >= 3 * statistics.median(values)


def test_constant_history_uses_the_ratio_floor() -> None:
    history = [5000] * 20
    assert not robust.is_unusual_high(5100, history, 600, 300)
    assert robust.is_unusual_high(15_000, history, 600, 300)
