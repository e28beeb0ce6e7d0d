"""The same known-answer workload on PostgreSQL: the fold and the reports' SQL give the same figures there."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from ledger.analytics import calendar, catchup, models, reports, rfm
from ledger.analytics.scope import Period, Scope
from ledger.analytics.segments import segment_members
from ledger.home import init_ledger
from tests.fixtures import analytics_workload
from tests.fixtures.analytics_workload import T_DAY


class Clock:
    now_ms = 0

    def __call__(self) -> int:
        return self.now_ms


def test_known_answer_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    clock = Clock()
    ledger = init_ledger(tmp_path / "ledger", postgres_url, issuer="acme", clock=clock)
    try:
        workload = analytics_workload.build(clock)
        models.create_tables()
        assert catchup.catch_up(now_ms=10**13) > 0  # long after every entry was applied: all are settled
        year = Period.ending(T_DAY, rfm.WINDOW_DAYS)
        assert reports.segments_report(year, Scope()).counts == workload.expected_segments
        top = reports.members_report(year, Scope()).groups["CNY"].top_quarter()
        assert top.share == Fraction(81, 129)
        cohorts = reports.cohorts_report(Period(T_DAY - 800, T_DAY), Scope()).cohorts
        assert (cohorts[-1].label, cohorts[-1].size, cohorts[-1].retention(0)) == ("2026-06", 10, 1)
        champions = sorted(segment_members(ledger.database, "champions", T_DAY * calendar.DAY_MS))
        assert champions == [f"recent-{r:02d}" for r in range(28, 50)]
        sales = reports.sales_report(Period(T_DAY - 40, T_DAY), Scope.of(store_id="store-2"))
        assert sales.totals()[("store-2", "CNY")][0] == sum(
            s.spend for s in workload.sales if s.store_id == "store-2" and s.day >= T_DAY - 40)
    finally:
        ledger.database.close()
