"""Recency, frequency and monetary scores and the named segments (pure).

**Scores** 1–5 by quintile among the members who bought in the window (net visits > 0), each currency apart.
For a figure with values ``v`` sorted ascending (``n`` of them), the cut points are ``q_i = v[ceil(i*n/5) - 1]``
for i = 1..4, and a member's score is 1 plus the number of cut points their value is above. Equal values always
get the same score; with distinct values each score holds a fifth of the members. Recency is scored on the day
of the last visit (later is better), frequency on net visits, monetary on net spend.

**Segments**, as of a day ``T`` (the end of the window), each member in exactly one, tried in this order:

=============  =========================================================================================
new            joined in the ``NEW_DAYS`` (90) days up to ``T``
lapsed         no visit in the window (by default the ``WINDOW_DAYS``, 365, up to ``T``), or never
at_risk        bought in the window, but the last visit is more than ``ACTIVE_DAYS`` (90) days before ``T``
champions      last visit within ``ACTIVE_DAYS`` and R, F and M all at least ``CHAMPION_SCORE`` (4)
active         last visit within ``ACTIVE_DAYS``, not a champion
=============  =========================================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SEGMENTS = ("new", "active", "champions", "at_risk", "lapsed")
NEW_DAYS = 90
ACTIVE_DAYS = 90
WINDOW_DAYS = 365
CHAMPION_SCORE = 4
QUANTILES = 5


def parse_segment(text: str) -> str:
    name = text.strip().lower().replace("-", "_").replace(" ", "_")
    if name not in SEGMENTS:
        from ledger.errors import LedgerError

        raise LedgerError(f"unknown segment {text!r}; a segment is one of {', '.join(SEGMENTS)}")
    return name


def cut_points(values: Sequence[int]) -> tuple[int, ...]:
    """The four quintile cut points of ``values`` (sorted ascending); empty when there are none."""
    n = len(values)
    if n == 0:
        return ()
    return tuple(values[-(-i * n // QUANTILES) - 1] for i in range(1, QUANTILES))


def score(value: int, cuts: Sequence[int]) -> int:
    return 1 + sum(1 for cut in cuts if value > cut)


@dataclass(frozen=True)
class Cuts:
    recency: tuple[int, ...]
    frequency: tuple[int, ...]
    monetary: tuple[int, ...]


def cuts_of(buyers: Iterable[tuple[int, int, int]]) -> Cuts:
    """Cut points from ``(last visit day, visits, spend)`` of the members who bought in the window."""
    last_days: list[int] = []
    visits: list[int] = []
    spends: list[int] = []
    for last_day, visit_count, spend in buyers:
        last_days.append(last_day)
        visits.append(visit_count)
        spends.append(spend)
    last_days.sort()
    visits.sort()
    spends.sort()
    return Cuts(cut_points(last_days), cut_points(visits), cut_points(spends))


@dataclass(frozen=True)
class Scores:
    recency: int
    frequency: int
    monetary: int

    @property
    def code(self) -> str:
        return f"{self.recency}{self.frequency}{self.monetary}"


def scores(cuts: Cuts, last_day: int, visits: int, spend: int) -> Scores:
    return Scores(score(last_day, cuts.recency), score(visits, cuts.frequency), score(spend, cuts.monetary))


@dataclass(frozen=True)
class Thresholds:
    new_days: int = NEW_DAYS
    active_days: int = ACTIVE_DAYS
    champion_score: int = CHAMPION_SCORE


def bought(visits: int | None) -> bool:
    return visits is not None and visits > 0


def segment(*, as_of_day: int, join_day: int, last_day: int | None, visits: int | None,
            member_scores: Scores | None, thresholds: Thresholds = Thresholds()) -> str:
    """The segment of one member (see the module docstring); ``member_scores`` is None for non-buyers."""
    if as_of_day - join_day < thresholds.new_days:
        return "new"
    if not bought(visits) or last_day is None or member_scores is None:
        return "lapsed"
    if as_of_day - last_day > thresholds.active_days:
        return "at_risk"
    top = thresholds.champion_score
    if member_scores.recency >= top and member_scores.frequency >= top and member_scores.monetary >= top:
        return "champions"
    return "active"


class Classifier:
    """``segment`` for many members at once, the same answers without building scores: with cut points sorted,
    a score is at least ``s`` exactly when the value is above the ``(s-1)``-th cut point."""

    def __init__(self, cuts: Cuts, as_of_day: int, thresholds: Thresholds = Thresholds()) -> None:
        self.as_of_day = as_of_day
        self.new_days = thresholds.new_days
        self.active_days = thresholds.active_days
        k = thresholds.champion_score - 2  # the cut point a champion's value must be above (-1: any value)

        def floor(points: tuple[int, ...]) -> int | None:
            if k < 0 or not points:
                return None  # every value scores 1 here, and a score of 1 is enough
            return points[k] if k < len(points) else _NEVER

        self.recency, self.frequency, self.monetary = floor(cuts.recency), floor(cuts.frequency), floor(
            cuts.monetary)
        self.champions_possible = thresholds.champion_score <= 1 or bool(cuts.recency)

    def segment_of(self, join_day: int, last_day: int | None, visits: int, spend: int) -> str:
        if self.as_of_day - join_day < self.new_days:
            return "new"
        if visits <= 0 or last_day is None:
            return "lapsed"
        if self.as_of_day - last_day > self.active_days:
            return "at_risk"
        r, f, m = self.recency, self.frequency, self.monetary
        if (self.champions_possible and (r is None or last_day > r) and (f is None or visits > f)
                and (m is None or spend > m)):
            return "champions"
        return "active"


_NEVER = 2**62  # above any value: a score the cut points cannot give
