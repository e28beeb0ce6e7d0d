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


def _or_none(value: int) -> int | None:
    return None if value == NO_DAY else value


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
        rows = [i for i in range(len(join_days)) if join_days[i] <= day]
        cuts = rfm.cuts_of((self.then_lasts[i], self.then_visits[i], self.then_spends[i]) for i in rows
                           if self.then_visits[i] > 0 and self.then_lasts[i] != NO_DAY)
        classify = rfm.Classifier(cuts, day).segment_of
        for i in rows:
            cell = counts[classify(join_days[i], _or_none(self.then_lasts[i]), self.then_visits[i],
                                   self.then_spends[i])]
            cell[0] += 1
            if self.visits_after[i] > 0:
                cell[1] += 1
        return {s: (c[0], c[1]) for s, c in counts.items()}

    def valuation(self, join_days: array[int], as_of_day: int, horizon: projection.Horizon) -> Valuation:
        table = projection.retention_table(self.calibration(join_days))
        cuts = rfm.cuts_of((self.year_lasts[i], self.year_visits[i], self.year_spends[i])
                           for i in range(len(join_days)) if self.year_visits[i] > 0 and self.year_lasts[i] != NO_DAY)
        classify = rfm.Classifier(cuts, as_of_day).segment_of
        future = projection.Projector(table, horizon, as_of_day).future
        index = {s: k for k, s in enumerate(projection.SEGMENTS)}
        segments, futures = array("b"), array("q")
        for join_day, last, visits, spend, life in zip(join_days, self.year_lasts, self.year_visits,
                                                       self.year_spends, self.life_spends, strict=True):
            segment = classify(join_day, _or_none(last), visits, spend)
            segments.append(index[segment])
            futures.append(future(segment, life, join_day))
        return Valuation(as_of_day, horizon, self.calibration_day, table, segments, futures, self)


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

    @property
    def future_total(self) -> int:
        return sum(self.futures)

    @property
    def to_date_total(self) -> int:
        return sum(self.columns.life_spends)

    def totals_by(self, key: str, merchant_of: dict[str, str] | None = None) -> dict[str, tuple[int, int, int]]:
        """Group → (members, to date, future) with ``key`` one of tier, segment, store (the member's home
        store) or merchant (its home store's merchant, from ``merchant_of``)."""
        c = self.columns
        if key == "tier":
            names, of = c.tiers, c.tier_of
        elif key == "segment":
            names, of = list(projection.SEGMENTS), self.segments
        elif key in ("store", "merchant"):
            names, of = c.homes, c.home_of
            if key == "merchant":
                mapping = merchant_of or {}
                names = [mapping.get(home, "") for home in c.homes]
        else:
            raise ValueError(f"no grouping {key!r}")
        sums: dict[str, list[int]] = {}
        for k, life, future in zip(of, c.life_spends, self.futures, strict=True):
            cell = sums.get(names[k])
            if cell is None:
                cell = sums[names[k]] = [0, 0, 0]
            cell[0] += 1
            cell[1] += life
            cell[2] += future
        order = list(projection.SEGMENTS) if key == "segment" else sorted(sums)
        return {name: (sums[name][0], sums[name][1], sums[name][2]) for name in order if name in sums}


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
