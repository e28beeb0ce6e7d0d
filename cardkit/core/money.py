"""Money as integer minor units with an ISO 4217 currency. No float is ever accepted.

Rounding rule (used everywhere a fraction of a minor unit appears): ``round_half_up`` on exact integer
ratios — 0.5 of a minor unit rounds away from zero. Percentages are given in basis points (1% = 100 bp)
so every computation stays in integers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cardkit.errors import MoneyError

# Minor-unit exponents for the currencies we handle; unknown currencies are refused rather than guessed.
CURRENCY_EXPONENTS: dict[str, int] = {
    "CNY": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "SGD": 2,
    "TWD": 2,
    "JPY": 0,
    "KRW": 0,
}

_DECIMAL_RE = re.compile(r"^(?P<sign>-)?(?P<whole>\d{1,15})(?:\.(?P<frac>\d{1,4}))?$")


def round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest integer, halves away from zero."""
    if denominator <= 0:
        raise MoneyError("rounding needs a positive denominator")
    sign = -1 if numerator < 0 else 1
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return sign * quotient


def round_down(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` truncated toward zero (used for points earned: never over-award)."""
    if denominator <= 0:
        raise MoneyError("rounding needs a positive denominator")
    sign = -1 if numerator < 0 else 1
    return sign * (abs(numerator) // denominator)


def exponent_of(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise MoneyError(f"unknown currency {currency!r}") from None


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An amount in integer minor units (fen, cents) of one currency."""

    minor: int
    currency: str = "CNY"

    def __post_init__(self) -> None:
        if type(self.minor) is not int:  # bool and float are refused on purpose
            raise MoneyError(f"money must be an integer number of minor units, not {type(self.minor).__name__}")
        exponent_of(self.currency)

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def zero(cls, currency: str = "CNY") -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, text: str, currency: str = "CNY") -> Money:
        """Parse a decimal string such as ``12.50`` (no float on the way)."""
        match = _DECIMAL_RE.match(text.strip())
        exponent = exponent_of(currency)
        if not match:
            raise MoneyError(f"{text!r} is not an amount; write it like 12.50")
        frac = match.group("frac") or ""
        if len(frac) > exponent:
            raise MoneyError(f"{text!r} has more decimals than {currency} allows ({exponent})")
        minor = int(match.group("whole")) * 10**exponent + int(frac.ljust(exponent, "0") or "0")
        return cls(-minor if match.group("sign") else minor, currency)

    # -- arithmetic ---------------------------------------------------------------------------------------
    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise MoneyError("money can only be combined with money")
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.minor >= other.minor

    def times(self, count: int) -> Money:
        if type(count) is not int:
            raise MoneyError("money can only be multiplied by an integer")
        return Money(self.minor * count, self.currency)

    def percent_bp(self, basis_points: int) -> Money:
        """This amount times ``basis_points / 10000``, rounded half up to a minor unit."""
        return Money(round_half_up(self.minor * basis_points, 10_000), self.currency)

    def ratio(self, numerator: int, denominator: int) -> Money:
        """This amount times ``numerator / denominator``, rounded half up (proportional refunds)."""
        return Money(round_half_up(self.minor * numerator, denominator), self.currency)

    def min(self, other: Money) -> Money:
        self._same(other)
        return self if self.minor <= other.minor else other

    @property
    def is_zero(self) -> bool:
        return self.minor == 0

    @property
    def is_negative(self) -> bool:
        return self.minor < 0

    # -- display ------------------------------------------------------------------------------------------
    def to_decimal_string(self) -> str:
        exponent = exponent_of(self.currency)
        sign = "-" if self.minor < 0 else ""
        whole, frac = divmod(abs(self.minor), 10**exponent)
        return f"{sign}{whole}.{frac:0{exponent}d}" if exponent else f"{sign}{whole}"

    def __str__(self) -> str:
        return f"{self.to_decimal_string()} {self.currency}"


Points = int
"""Loyalty points are plain integers; a named alias so signatures say what a number means."""
