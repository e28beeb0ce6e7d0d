"""Lifetime value (pure), the transparent historical kind (a probabilistic BG/NBD model can come later).

- **to date**: a member's net spend from joining to the end of the period.
- **projected**: to date + spend per visit × visits per year × expected remaining years. Spend per visit ×
  visits per year is the member's net spend over the last ``WINDOW_DAYS`` (or since joining, when shorter)
  scaled to a year: ``spend × 365 / observed days``. The expected remaining years are ``1 / annual churn`` of
  the programme, capped at ``MAX_YEARS``; annual churn is the share of members who bought in the year before
  last and not in the last year.

Amounts stay integers (minor units); a projection is rounded down once, at the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

WINDOW_DAYS = 365
MAX_YEARS = 10


@dataclass(frozen=True)
class Churn:
    previous_buyers: int  # bought in the year before last
    kept: int  # of those, bought in the last year too

    @property
    def rate(self) -> Fraction:
        if self.previous_buyers == 0:
            return Fraction(0)
        return Fraction(self.previous_buyers - self.kept, self.previous_buyers)

    @property
    def expected_years(self) -> Fraction:
        rate = self.rate
        if rate == 0:
            return Fraction(MAX_YEARS)
        return min(Fraction(MAX_YEARS), 1 / rate)


def observed_days(join_day: int, last_day: int) -> int:
    """Days the yearly rate is taken over: the last year, or since joining when that is shorter."""
    return max(1, min(WINDOW_DAYS, last_day - join_day + 1))


def annual_rate(recent_spend: int, days: int) -> Fraction:
    return Fraction(max(0, recent_spend) * WINDOW_DAYS, days)


def projected(to_date: int, recent_spend: int, days: int, expected_years: Fraction) -> int:
    """One member's projected lifetime value in minor units."""
    return to_date + int(annual_rate(recent_spend, days) * expected_years)


def projected_total(to_date_total: int, recent_spend_by_days: Mapping[int, int], expected_years: Fraction) -> int:
    """Projected lifetime value of many members: their spend to date plus their yearly rates (recent spend
    summed per observed-days figure, positive spends only) times the expected years."""
    rate = sum((annual_rate(spend, days) for days, spend in recent_spend_by_days.items()), Fraction(0))
    return to_date_total + int(rate * expected_years)
