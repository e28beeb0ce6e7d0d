"""Projected lifetime value (ledger.analytics.projection and its use over a population): the worked example of
docs/analytics.md, and invariants by hypothesis — never negative, a lapsed member never above an identical active
one, every grouping adds up to the total, the fast integer path equal to the reference formula."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.analytics import projection
from ledger.analytics.population import gather
from ledger.analytics.queries import Calibration, MemberFigures
from ledger.errors import LedgerError

T = 20_000  # the as-of day


def test_the_worked_example_of_the_docs() -> None:
    table = projection.retention_table({"champions": (50, 45), "active": (100, 60), "at_risk": (40, 10),
                                        "lapsed": (60, 3), "new": (10, 5)})
    assert {s: r.rate for s, r in table.items()} == {
        "new": Fraction(1, 2), "champions": Fraction(9, 10), "active": Fraction(3, 5), "at_risk": Fraction(1, 4),
        "lapsed": Fraction(1, 20)}
    # joined 730 days ago, 1460.00 to date: 730.00 a year; active, kept at 3/5: 438.00 over the next 12 months
    assert projection.yearly_spend(146_000, T - 729, T) == 73_000
    assert projection.future_value(146_000, T - 729, T, table["active"].rate, projection.Horizon()) == 43_800
    # discounted at 12 % a year (1 % a month): F = Σ (1/12)·1.01^-k = 0.937923…, floor(43,800 × F) = 41,081
    twelve = projection.Horizon(12, 1200)
    assert f"{float(twelve.factor):.6f}" == "0.937923"
    assert projection.future_value(146_000, T - 729, T, table["active"].rate, twelve) == 41_081
    # ten days a member with 50.00: counted as 90 days, 202.77… a year; new, kept at 1/2 → 101.38
    assert projection.future_value(5000, T - 9, T, table["new"].rate, projection.Horizon()) == 10_138
    assert projection.Horizon(6).days == 183 and projection.Horizon(1).days == 30
    assert projection.Horizon(6).factor == Fraction(1, 2)


def test_retention_is_pooled_where_a_more_recent_segment_kept_fewer() -> None:
    table = projection.retention_table({"champions": (20, 9), "active": (100, 60), "at_risk": (10, 0),
                                        "lapsed": (80, 4)})
    # champions 9/20 < active 60/100: pooled 69/120; lapsed 4/80 > at risk 0/10: pooled 4/90
    assert table["champions"].rate == table["active"].rate == Fraction(69, 120)
    assert table["at_risk"].rate == table["lapsed"].rate == Fraction(2, 45)
    assert table["at_risk"].observed == 0 and table["new"].observed is None
    assert table["new"].rate == Fraction(73, 210)  # nobody new back then: all calibrated members together
    # a violation that reaches back: lapsed 70/80 pooled with at risk (70/90) is above active's 69/120 too
    everything = projection.retention_table({"champions": (20, 9), "active": (100, 60), "at_risk": (10, 0),
                                             "lapsed": (80, 70)})
    assert {everything[s].rate for s in projection.RECENCY_ORDER} == {Fraction(139, 210)}
    empty = projection.retention_table({"at_risk": (4, 1)})
    assert {s: r.rate for s, r in empty.items()} == dict.fromkeys(projection.SEGMENTS, Fraction(1, 4))
    assert all(r.rate == 1 for r in projection.retention_table({}).values())  # no history: keep their pace
    with pytest.raises(LedgerError, match="3 kept of 2 members"):
        projection.retention_table({"active": (2, 3)})
    with pytest.raises(LedgerError, match="the horizon is 1 to 120 months, not 121"):
        projection.Horizon(121)
    with pytest.raises(LedgerError, match="basis points a year, not 10001"):
        projection.Horizon(12, 10_001)


counts = st.tuples(st.integers(0, 50), st.integers(0, 50)).map(lambda mk: (max(mk), min(mk)))
tables = st.fixed_dictionaries({s: counts for s in projection.SEGMENTS}).map(projection.retention_table)
horizons = st.builds(projection.Horizon, st.integers(1, 36), st.integers(0, 3000))


@given(tables)
def test_retention_never_rises_with_recency_and_stays_a_probability(table: dict[str, projection.Retention]) -> None:
    rates = [table[s].rate for s in projection.RECENCY_ORDER]
    assert rates == sorted(rates, reverse=True)
    assert all(0 <= r.rate <= 1 for r in table.values())


@given(tables, horizons, st.integers(-10**9, 10**11), st.integers(0, 5000))
def test_projection_is_never_negative_and_the_fast_path_agrees(table: dict[str, projection.Retention],
                                                                horizon: projection.Horizon, spend: int,
                                                                age: int) -> None:
    projector = projection.Projector(table, horizon, T)
    for segment, retention in table.items():
        future = projection.future_value(spend, T - age, T, retention.rate, horizon)
        assert future >= 0
        assert projector.future(segment, spend, T - age) == future
        assert spend + future >= spend


def figures(member_id: str, join_day: int, life_spend: int, last: int | None, visits: int, then: Calibration,
            tier: str = "standard", home: str = "store-1") -> MemberFigures:
    return MemberFigures(member_id, "CNY", join_day, tier, 0, 0, None, life_spend, life_spend if last else 0,
                         visits, 0, home, visits, last, then)


member_rows = st.tuples(st.integers(100, 1500),  # days a member
                        st.integers(-2000, 100_000),  # spend to date
                        st.one_of(st.none(), st.integers(0, 364)),  # days since the last visit in the year
                        st.integers(1, 20),  # visits in the year
                        st.one_of(st.none(), st.integers(0, 364)),  # one horizon ago: days since the last visit
                        st.integers(0, 3),  # visits since then
                        st.sampled_from(["standard", "gold"]), st.sampled_from(["store-1", "store-2", "store-3"]))


def population(rows: list[tuple[int, int, int | None, int, int | None, int, str, str]],
               then_day: int) -> list[MemberFigures]:
    """Members as one pass over the database would give them, calibrated one horizon back (``then_day``)."""
    out = []
    for i, (age, spend, since, visits, since_then, after, tier, home) in enumerate(rows):
        then = Calibration(then_day, 1 if since_then is not None else 0, 500 if since_then is not None else 0,
                           None if since_then is None else then_day - since_then, after)
        out.append(figures(f"m{i}", T - age, spend, None if since is None else T - since,
                           visits if since is not None else 0, then, tier, home))
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(member_rows, max_size=40), st.integers(500, 50_000), st.integers(1, 8), horizons)
def test_a_lapsed_member_projects_less_than_an_identical_active_one(
        rows: list[tuple[int, int, int | None, int, int | None, int, str, str]], spend: int, visits: int,
        horizon: projection.Horizon) -> None:
    """Two members alike in every way (joined the same day, the same spend to date) but that one bought 10 days
    ago and the other not in the last year: the lapsed one never projects more, and projects less wherever the
    programme's data kept lapsed members less often than active ones."""
    then = Calibration(T - horizon.days, 0, 0, None, 0)
    members = [*population(rows, T - horizon.days), figures("probe-active", T - 800, spend, T - 10, visits, then),
               figures("probe-lapsed", T - 800, spend, None, 0, then)]
    group = gather(members, T, T, keep_ids=True, lifetime=True)["CNY"]
    valuation = group.valuation(T, horizon)
    index = {m: i for i, m in enumerate(group.ids)}
    active, lapsed = valuation.futures[index["probe-active"]], valuation.futures[index["probe-lapsed"]]
    active_segment = projection.SEGMENTS[valuation.segments[index["probe-active"]]]
    assert projection.SEGMENTS[valuation.segments[index["probe-lapsed"]]] == "lapsed"
    assert active_segment in ("active", "champions")
    assert 0 <= lapsed <= active
    gap = valuation.retention[active_segment].rate - valuation.retention["lapsed"].rate
    if gap * projection.yearly_spend(spend, T - 800, T) * horizon.factor >= 1:
        assert lapsed < active


@settings(max_examples=60, deadline=None)
@given(st.lists(member_rows, min_size=1, max_size=60), horizons)
def test_every_grouping_adds_up_to_the_total(rows: list[tuple[int, int, int | None, int, int | None, int, str, str]],
                                             horizon: projection.Horizon) -> None:
    group = gather(population(rows, T - horizon.days), T, T, lifetime=True)["CNY"]
    valuation = group.valuation(T, horizon)
    total = (len(rows), valuation.to_date_total, valuation.future_total)
    assert valuation.to_date_total == sum(spend for _, spend, *_ in rows)
    merchant_of = {"store-1": "hotel", "store-2": "hotel", "store-3": "spa"}
    for grouping in ("tier", "segment", "store", "merchant"):
        sums = valuation.totals_by(grouping, merchant_of).values()
        assert tuple(map(sum, zip(*sums, strict=True))) == total, grouping
    by_store = valuation.totals_by("store")
    by_merchant = valuation.totals_by("merchant", merchant_of)
    hotel = [by_store[s] for s in ("store-1", "store-2") if s in by_store]
    if hotel:
        assert by_merchant["hotel"] == tuple(map(sum, zip(*hotel, strict=True)))
    assert all(f >= 0 for f in valuation.futures)
