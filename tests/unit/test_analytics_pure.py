"""The analytics' pure parts: entry facts, quintile scores, segments, the top-quarter share, lifetime value and
cohort retention, against worked examples and invariants (hypothesis)."""

from __future__ import annotations

import datetime
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.analytics import calendar, cohorts, concentration, facts, ltv, rfm
from ledger.errors import LedgerError


def test_entry_facts_count_sales_refunds_and_voids() -> None:
    assert facts.entry_fact("sale", {"net": 1200}) == facts.EntryFact(1200, 1)
    assert facts.entry_fact("refund", {"amount": 200}) == facts.EntryFact(-200, 0)
    assert facts.entry_fact("void", {"sv": 1200, "spend": 1200}) == facts.EntryFact(-1200, -1)
    assert facts.entry_fact("void", {"sv": 0, "spend": 900}) == facts.EntryFact(-900, -1)  # a cash sale voided
    assert facts.entry_fact("void", {"sv": -5000}) == facts.EntryFact(0, 0)  # a top-up voided
    assert facts.entry_fact("topup", {"amount": 5000}) == facts.NOTHING
    assert facts.entry_fact("sale", {"net": "12"}) == facts.EntryFact(0, 1)  # malformed amounts count nothing


def test_quintile_cut_points_split_distinct_values_in_fifths() -> None:
    values = list(range(1, 11))
    cuts = rfm.cut_points(values)
    assert cuts == (2, 4, 6, 8)
    assert [rfm.score(v, cuts) for v in values] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert rfm.cut_points([]) == ()
    assert rfm.score(7, ()) == 1


@given(st.lists(st.integers(-1000, 1000), min_size=1, max_size=200))
def test_scores_are_monotone_and_ties_share_a_score(values: list[int]) -> None:
    ordered = sorted(values)
    cuts = rfm.cut_points(ordered)
    scores = [rfm.score(v, cuts) for v in ordered]
    assert scores == sorted(scores)
    assert all(1 <= s <= 5 for s in scores)
    by_value: dict[int, set[int]] = {}
    for v, s in zip(ordered, scores, strict=True):
        by_value.setdefault(v, set()).add(s)
    assert all(len(s) == 1 for s in by_value.values())


@given(st.lists(st.integers(0, 10**6), min_size=5, max_size=300, unique=True))
def test_distinct_values_fill_each_score_nearly_equally(values: list[int]) -> None:
    ordered = sorted(values)
    cuts = rfm.cut_points(ordered)
    sizes = [sum(1 for v in ordered if rfm.score(v, cuts) == s) for s in range(1, 6)]
    assert max(sizes) - min(sizes) <= 1


def test_segments_in_order_of_precedence() -> None:
    top = rfm.Scores(5, 5, 5)
    low = rfm.Scores(4, 3, 5)
    t = 1000
    assert rfm.segment(as_of_day=t, join_day=t - 89, last_day=t, visits=9, member_scores=top) == "new"
    assert rfm.segment(as_of_day=t, join_day=t - 90, last_day=None, visits=0, member_scores=None) == "lapsed"
    assert rfm.segment(as_of_day=t, join_day=t - 400, last_day=t - 91, visits=3, member_scores=top) == "at_risk"
    assert rfm.segment(as_of_day=t, join_day=t - 400, last_day=t - 90, visits=3, member_scores=top) == "champions"
    assert rfm.segment(as_of_day=t, join_day=t - 400, last_day=t, visits=3, member_scores=low) == "active"
    assert rfm.parse_segment("At Risk") == "at_risk"
    with pytest.raises(LedgerError, match="one of new, active, champions, at_risk, lapsed"):
        rfm.parse_segment("whales")


def test_top_quarter_of_the_seed_department_store() -> None:
    # 8 buyers; the top 2 made 300 of 900 (a third), like the seed's 25 % → 33 %
    share = concentration.top_share([200, 100, 100, 100, 100, 100, 100, 100, 0, -50])
    assert (share.buyers, share.top_members, share.top_spend, share.total_spend) == (8, 2, 300, 900)
    assert share.share == Fraction(1, 3)
    assert share.percent() == "33.3"
    assert concentration.top_share([]).share == 0


@given(st.lists(st.integers(1, 10**7), min_size=1, max_size=200))
def test_top_quarter_share_is_at_least_a_quarter(spends: list[int]) -> None:
    share = concentration.top_share(spends)
    assert share.top_members == -(-len(spends) // 4)
    assert Fraction(1, 4) <= share.share <= 1


def test_annual_churn() -> None:
    churn = ltv.Churn(previous_buyers=100, kept=75)  # a quarter lost in a year
    assert churn.rate == Fraction(1, 4)
    assert ltv.Churn(0, 0).rate == 0
    assert ltv.Churn(100, 100).rate == 0
    # the projected lifetime value: tests/unit/test_analytics_projection.py


def test_cohorts_from_counts() -> None:
    jan = calendar.month_of_date(datetime.date(2026, 1, 5))
    table = cohorts.cohorts({jan: 10, jan + 1: 4}, [(jan, jan, 10), (jan, jan + 2, 3), (jan + 1, jan + 2, 1),
                                                    (jan + 5, jan + 5, 9)], last_month=jan + 2)
    assert [(c.label, c.size) for c in table] == [("2026-01", 10), ("2026-02", 4)]
    assert [table[0].retention(k) for k in range(3)] == [1, 0, Fraction(3, 10)]
    assert table[1].retention(1) == Fraction(1, 4)
    assert cohorts.percent(Fraction(1, 3)) == "33.3"


def test_calendar_round_trips() -> None:
    day = calendar.day_of_ms(1_780_000_000_000)
    assert calendar.day_label(day) == "2026-05-28"
    month = calendar.month_of_day(day)
    assert calendar.month_label(month) == "2026-05"
    assert calendar.day_label(calendar.first_day_of_month(month)) == "2026-05-01"
    assert calendar.month_label(month + 8) == "2027-01"


@given(st.lists(st.tuples(st.integers(0, 400), st.one_of(st.none(), st.integers(0, 400)), st.integers(0, 30),
                          st.integers(-500, 5000)), max_size=80),
       st.integers(1, 5))
def test_the_classifier_gives_the_reference_segments(members: list[tuple[int, int | None, int, int]],
                                                       champion_score: int) -> None:
    as_of = 400
    rows = [(join, last if visits > 0 else None, visits, spend) for join, last, visits, spend in members]
    buyers = [(last, visits, spend) for _, last, visits, spend in rows if visits > 0 and last is not None]
    cuts = rfm.cuts_of(buyers)
    thresholds = rfm.Thresholds(champion_score=champion_score)
    classify = rfm.Classifier(cuts, as_of, thresholds).segment_of
    for join, last, visits, spend in rows:
        bought = visits > 0 and last is not None
        reference = rfm.segment(as_of_day=as_of, join_day=join, last_day=last, visits=visits,
                                member_scores=rfm.scores(cuts, last, visits, spend) if bought and last is not None
                                else None, thresholds=thresholds)
        assert classify(join, last, visits, spend) == reference
