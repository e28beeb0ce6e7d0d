"""One pass over the members' aggregates (``queries.member_figures``), kept compactly per currency: the
figures the members and segments reports share, and the per-member columns RFM scoring needs (pure: it takes
the figures, it does not fetch them)."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ledger.analytics import ltv, rfm
from ledger.analytics.concentration import TopShare, top_share
from ledger.analytics.queries import MemberFigures

NO_DAY = -(2**40)

VISIT_BANDS = ((1, 1), (2, 2), (3, 3), (4, 5), (6, 10), (11, None))


def band_label(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else str(low) if low == high else f"{low}-{high}"


@dataclass
class TierFigures:
    members: int = 0
    buyers: int = 0
    visits: int = 0
    spend: int = 0


@dataclass
class CurrencyGroup:
    """The members in one currency (a programme normally has one)."""

    currency: str
    members: int = 0
    new_members: int = 0
    buyers: int = 0
    visits: int = 0
    spend: int = 0
    life_spend: int = 0
    previous_buyers: int = 0
    kept: int = 0
    tiers: dict[str, TierFigures] = field(default_factory=dict)
    visit_bands: list[int] = field(default_factory=lambda: [0] * len(VISIT_BANDS))
    recent_by_days: dict[int, int] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    join_days: array[int] = field(default_factory=lambda: array("q"))
    last_days: array[int] = field(default_factory=lambda: array("q"))
    period_visits: array[int] = field(default_factory=lambda: array("q"))
    period_spends: array[int] = field(default_factory=lambda: array("q"))

    def add(self, m: MemberFigures, first_day: int, last_day: int, keep_ids: bool) -> None:
        self.members += 1
        if first_day <= m.join_day <= last_day:
            self.new_members += 1
        tier = self.tiers.get(m.tier)
        if tier is None:
            tier = self.tiers[m.tier] = TierFigures()
        tier.members += 1
        self.life_spend += m.life_spend
        if m.year_spend > 0:
            days = ltv.observed_days(m.join_day, last_day)
            self.recent_by_days[days] = self.recent_by_days.get(days, 0) + m.year_spend
        if m.prior_visits > 0:
            self.previous_buyers += 1
            if m.year_visits > 0:
                self.kept += 1
        if m.period_visits > 0:
            self.buyers += 1
            tier.buyers += 1
            for i, (low, high) in enumerate(VISIT_BANDS):
                if m.period_visits >= low and (high is None or m.period_visits <= high):
                    self.visit_bands[i] += 1
                    break
        self.visits += m.period_visits
        self.spend += m.period_spend
        tier.visits += m.period_visits
        tier.spend += m.period_spend
        if keep_ids:
            self.ids.append(m.member_id)
        self.join_days.append(m.join_day)
        self.last_days.append(NO_DAY if m.last_day is None else m.last_day)
        self.period_visits.append(m.period_visits)
        self.period_spends.append(m.period_spend)

    @property
    def churn(self) -> ltv.Churn:
        return ltv.Churn(self.previous_buyers, self.kept)

    def projected_total(self) -> int:
        return ltv.projected_total(self.life_spend, self.recent_by_days, self.churn.expected_years)

    def top_quarter(self) -> TopShare:
        return top_share(self.period_spends)

    def buyer_rows(self) -> Iterator[int]:
        """Indexes of the members who bought in the period."""
        visits = self.period_visits
        return (i for i in range(len(visits)) if visits[i] > 0)

    def cuts(self) -> rfm.Cuts:
        return rfm.cuts_of((self.last_days[i], self.period_visits[i], self.period_spends[i])
                           for i in self.buyer_rows())

    def segments(self, as_of_day: int, thresholds: rfm.Thresholds = rfm.Thresholds()) -> Iterator[str]:
        """Each member's segment, in the order they were added."""
        classify = rfm.Classifier(self.cuts(), as_of_day, thresholds).segment_of
        for join_day, last, visits, spend in zip(self.join_days, self.last_days, self.period_visits,
                                                 self.period_spends, strict=True):
            yield classify(join_day, None if last == NO_DAY else last, visits, spend)


def gather(figures: Iterable[MemberFigures], first_day: int, last_day: int, *,
           keep_ids: bool = False) -> dict[str, CurrencyGroup]:
    groups: dict[str, CurrencyGroup] = {}
    for m in figures:
        group = groups.get(m.currency)
        if group is None:
            group = groups[m.currency] = CurrencyGroup(m.currency)
        group.add(m, first_day, last_day, keep_ids)
    return dict(sorted(groups.items()))
