"""One pass over the members' aggregates (``queries.member_figures``), kept compactly per currency: the
figures the members and segments reports share, and the per-member columns RFM scoring needs (pure: it takes
the figures, it does not fetch them)."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ledger.analytics import ltv, projection, rfm
from ledger.analytics.concentration import TopShare, top_share
from ledger.analytics.queries import MemberFigures

NO_DAY = -(2**40)

VISIT_BANDS = ((1, 1), (2, 2), (3, 3), (4, 5), (6, 10), (11, None))


def band_label(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else str(low) if low == high else f"{low}-{high}"


def _day(value: int | None) -> int:
    return NO_DAY if value is None else value


@dataclass
class LifetimeColumns:
    """Per member, what the projected lifetime value needs (``projection``): spend and visits to date, the RFM
    inputs over the last 365 days (for the member's segment now) and one horizon ago (for the retention), the
    visits since then, and the tier and home store (as indexes into ``tiers`` and ``homes``)."""

    tiers: list[str] = field(default_factory=list)
    homes: list[str] = field(default_factory=list)
    tier_of: array[int] = field(default_factory=lambda: array("i"))
    home_of: array[int] = field(default_factory=lambda: array("i"))
    life_spends: array[int] = field(default_factory=lambda: array("q"))
    life_visits: array[int] = field(default_factory=lambda: array("q"))
    year_lasts: array[int] = field(default_factory=lambda: array("q"))
    year_visits: array[int] = field(default_factory=lambda: array("q"))
    year_spends: array[int] = field(default_factory=lambda: array("q"))
    calibration_day: int | None = None
    then_lasts: array[int] = field(default_factory=lambda: array("q"))
    then_visits: array[int] = field(default_factory=lambda: array("q"))
    then_spends: array[int] = field(default_factory=lambda: array("q"))
    visits_after: array[int] = field(default_factory=lambda: array("q"))
    _tier_index: dict[str, int] = field(default_factory=dict)
    _home_index: dict[str, int] = field(default_factory=dict)

    def add(self, m: MemberFigures) -> None:
        tier = self._tier_index.get(m.tier)
        if tier is None:
            tier = self._tier_index[m.tier] = len(self.tiers)
            self.tiers.append(m.tier)
        home = self._home_index.get(m.home_store)
        if home is None:
            home = self._home_index[m.home_store] = len(self.homes)
            self.homes.append(m.home_store)
        self.tier_of.append(tier)
        self.home_of.append(home)
        self.life_spends.append(m.life_spend)
        self.life_visits.append(m.life_visits)
        self.year_lasts.append(_day(m.year_last))
        self.year_visits.append(m.year_visits)
        self.year_spends.append(m.year_spend)
        c = m.calibration
        if c is None:
            raise ValueError("the lifetime columns need member_figures(..., calibration_day=...)")
        self.calibration_day = c.day
        self.then_lasts.append(_day(c.last_day))
        self.then_visits.append(c.visits)
        self.then_spends.append(c.spend)
        self.visits_after.append(c.visits_after)

    def calibration(self, join_days: array[int]) -> dict[str, tuple[int, int]]:
        """Segment → (members one horizon ago, of them bought since): the members who had joined by then,
        each in the segment the RFM rules gave them that day."""
        day = self.calibration_day
        counts: dict[str, list[int]] = {s: [0, 0] for s in projection.SEGMENTS}
        if day is None:
            return {}
        then = [(join, last, visits, spend, after) for join, last, visits, spend, after in zip(
            join_days, self.then_lasts, self.then_visits, self.then_spends, self.visits_after, strict=True)
            if join <= day]
        cuts = rfm.cuts_of((last, visits, spend) for _, last, visits, spend, _ in then
                           if visits > 0 and last != NO_DAY)
        classify = rfm.Classifier(cuts, day).segment_of
        for join, last, visits, spend, after in then:
            cell = counts[classify(join, None if last == NO_DAY else last, visits, spend)]
            cell[0] += 1
            if after > 0:
                cell[1] += 1
        return {s: (c[0], c[1]) for s, c in counts.items()}

    def valuation(self, join_days: array[int], as_of_day: int, horizon: projection.Horizon) -> Valuation:
        table = projection.retention_table(self.calibration(join_days))
        cuts = rfm.cuts_of((last, visits, spend) for last, visits, spend in zip(
            self.year_lasts, self.year_visits, self.year_spends, strict=True) if visits > 0 and last != NO_DAY)
        classify = rfm.Classifier(cuts, as_of_day).segment_of
        future = projection.Projector(table, horizon, as_of_day).future
        index = {s: k for k, s in enumerate(projection.SEGMENTS)}
        segments, futures = array("b"), array("q")
        cells: dict[tuple[int, int, int], list[int]] = {}  # (tier, segment, home) → members, to date, future
        for join_day, last, visits, spend, life, tier, home in zip(
                join_days, self.year_lasts, self.year_visits, self.year_spends, self.life_spends, self.tier_of,
                self.home_of, strict=True):
            segment = classify(join_day, None if last == NO_DAY else last, visits, spend)
            k = index[segment]
            value = future(segment, life, join_day)
            segments.append(k)
            futures.append(value)
            cell = cells.get((tier, k, home))
            if cell is None:
                cell = cells[(tier, k, home)] = [0, 0, 0]
            cell[0] += 1
            cell[1] += life
            cell[2] += value
        return Valuation(as_of_day, horizon, self.calibration_day, table, segments, futures, self,
                         {key: (c[0], c[1], c[2]) for key, c in cells.items()})


@dataclass
class Valuation:
    """Every member's segment now (index into ``projection.SEGMENTS``) and future value over the horizon (minor
    units), in the order the members were gathered; ``columns`` holds their spend to date, tier and home."""

    as_of_day: int
    horizon: projection.Horizon
    calibration_day: int | None
    retention: dict[str, projection.Retention]
    segments: array[int]
    futures: array[int]
    columns: LifetimeColumns
    cells: dict[tuple[int, int, int], tuple[int, int, int]]  # (tier, segment, home) → members, to date, future

    @property
    def future_total(self) -> int:
        return sum(c[2] for c in self.cells.values())

    @property
    def to_date_total(self) -> int:
        return sum(c[1] for c in self.cells.values())

    def totals_by(self, key: str, merchant_of: dict[str, str] | None = None) -> dict[str, tuple[int, int, int]]:
        """Group → (members, to date, future) with ``key`` one of tier, segment, store (the member's home
        store) or merchant (its home store's merchant, from ``merchant_of``; '' for none): sums of the members'
        own figures, so every grouping adds up to the same total."""
        c = self.columns
        if key == "tier":
            names, position = c.tiers, 0
        elif key == "segment":
            names, position = list(projection.SEGMENTS), 1
        elif key == "store":
            names, position = c.homes, 2
        elif key == "merchant":
            mapping = merchant_of or {}
            names, position = [mapping.get(home, "") for home in c.homes], 2
        else:
            raise ValueError(f"no grouping {key!r}")
        sums: dict[str, tuple[int, int, int]] = {}
        for cell_key, (members, life, future) in self.cells.items():
            name = names[cell_key[position]]
            n, total_life, total_future = sums.get(name, (0, 0, 0))
            sums[name] = (n + members, total_life + life, total_future + future)
        order = list(projection.SEGMENTS) if key == "segment" else sorted(sums)
        return {name: sums[name] for name in order if name in sums}


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
    ids: list[str] = field(default_factory=list)
    join_days: array[int] = field(default_factory=lambda: array("q"))
    last_days: array[int] = field(default_factory=lambda: array("q"))
    period_visits: array[int] = field(default_factory=lambda: array("q"))
    period_spends: array[int] = field(default_factory=lambda: array("q"))
    lifetime: LifetimeColumns | None = None

    def add(self, m: MemberFigures, first_day: int, last_day: int, keep_ids: bool) -> None:
        self.members += 1
        if first_day <= m.join_day <= last_day:
            self.new_members += 1
        tier = self.tiers.get(m.tier)
        if tier is None:
            tier = self.tiers[m.tier] = TierFigures()
        tier.members += 1
        self.life_spend += m.life_spend
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
        if self.lifetime is not None:
            self.lifetime.add(m)

    @property
    def churn(self) -> ltv.Churn:
        return ltv.Churn(self.previous_buyers, self.kept)

    def valuation(self, as_of_day: int, horizon: projection.Horizon) -> Valuation:
        """Each member's projected lifetime value (``gather(..., lifetime=True)`` and the figures' calibration
        one horizon before ``as_of_day`` are needed)."""
        if self.lifetime is None:
            raise ValueError("gathered without the lifetime columns")
        return self.lifetime.valuation(self.join_days, as_of_day, horizon)

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
           keep_ids: bool = False, lifetime: bool = False) -> dict[str, CurrencyGroup]:
    groups: dict[str, CurrencyGroup] = {}
    for m in figures:
        group = groups.get(m.currency)
        if group is None:
            group = groups[m.currency] = CurrencyGroup(m.currency, lifetime=LifetimeColumns() if lifetime else None)
        group.add(m, first_day, last_day, keep_ids)
    return dict(sorted(groups.items()))
