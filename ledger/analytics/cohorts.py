"""Cohort retention by join month (pure): the members who joined in a month are a cohort; its retention in
month ``k`` is the share of them with at least one (net) visit in the ``k``-th calendar month after joining
(month 0: the month they joined)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from ledger.analytics import calendar


@dataclass(frozen=True)
class Cohort:
    month: int
    size: int
    active: dict[int, int] = field(default_factory=dict)  # months after joining → members with a visit

    @property
    def label(self) -> str:
        return calendar.month_label(self.month)

    def retention(self, offset: int) -> Fraction:
        return Fraction(self.active.get(offset, 0), self.size) if self.size else Fraction(0)


def cohorts(sizes: Mapping[int, int], active: Iterable[tuple[int, int, int]], last_month: int) -> list[Cohort]:
    """Cohorts from members joined per month and ``(join month, activity month, members)`` counts, up to
    ``last_month``."""
    table: dict[int, dict[int, int]] = {month: {} for month in sizes}
    for join_month, month, members in active:
        if join_month in table and join_month <= month <= last_month:
            table[join_month][month - join_month] = members
    return [Cohort(month, sizes[month], dict(sorted(table[month].items()))) for month in sorted(sizes)]


def percent(value: Fraction) -> str:
    tenths = (value * 1000 + Fraction(1, 2)).__floor__()
    return f"{tenths // 10}.{tenths % 10}"
