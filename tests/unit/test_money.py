from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardkit.core.money import Money, round_down, round_half_up
from cardkit.errors import MoneyError


def test_parse_and_format_round_trip() -> None:
    assert Money.parse("12.50").minor == 1250
    assert Money.parse("0.05").minor == 5
    assert Money.parse("7").minor == 700
    assert Money.parse("-3.1").minor == -310
    assert Money.parse("1200", "JPY").minor == 1200
    assert Money(1250).to_decimal_string() == "12.50"
    assert str(Money(-5)) == "-0.05 CNY"


@pytest.mark.parametrize("text", ["", "abc", "1.234", "1,00", "1e3", "--1", "nan", "0.5.5"])
def test_parse_refuses_garbage(text: str) -> None:
    with pytest.raises(MoneyError):
        Money.parse(text)


def test_floats_and_bools_refused() -> None:
    with pytest.raises(MoneyError):
        Money(12.5)  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money(True)
    with pytest.raises(MoneyError):
        Money(100).times(1.5)  # type: ignore[arg-type]


def test_currency_mixing_refused() -> None:
    with pytest.raises(MoneyError):
        _ = Money(1, "CNY") + Money(1, "USD")
    with pytest.raises(MoneyError):
        Money(1, "XXX")


def test_rounding_rule_half_up_away_from_zero() -> None:
    assert round_half_up(5, 10) == 1
    assert round_half_up(4, 10) == 0
    assert round_half_up(15, 10) == 2
    assert round_half_up(-15, 10) == -2
    assert Money(1005).percent_bp(1000).minor == 101  # 10% of 10.05 = 1.005 -> 1.01
    assert Money(1004).percent_bp(1000).minor == 100
    assert round_down(199, 100) == 1
    assert round_down(-199, 100) == -1


@given(st.integers(-10**12, 10**12), st.integers(1, 10**6))
def test_round_half_up_is_nearest(n: int, d: int) -> None:
    r = round_half_up(n, d)
    assert abs(n - r * d) * 2 <= d


@given(st.integers(-10**12, 10**12))
def test_decimal_string_round_trip(minor: int) -> None:
    m = Money(minor)
    assert Money.parse(m.to_decimal_string()) == m
