"""The analytics on a generated workload with a known answer (tests/fixtures/analytics_workload.py), in-process on
a real SQLite ledger, and the `cardpos ledger report` command on the same ledger as a real subprocess."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

from ledger import store
from ledger.analytics import calendar, catchup, models, reports, rfm
from ledger.analytics.models import MemberDay
from ledger.analytics.scope import Period, Scope
from ledger.analytics.segments import segment_members
from ledger.errors import LedgerError
from ledger.home import Ledger, init_ledger
from tests.conftest import CARDPOS
from tests.fixtures import analytics_workload
from tests.fixtures.analytics_workload import T_DAY, Workload


@dataclass
class Clock:
    now_ms: int = 0

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ledger, Workload, Path]]:
    root = tmp_path_factory.mktemp("analytics")
    clock = Clock()
    ledger = init_ledger(root / "ledger", issuer="acme", clock=clock)
    workload = analytics_workload.build(clock)
    models.create_tables()
    yield ledger, workload, root / "ledger"
    ledger.database.close()


YEAR = Period.ending(T_DAY, rfm.WINDOW_DAYS)


def test_member_days_match_what_was_sold(world: tuple[Ledger, Workload, Path]) -> None:
    _, workload, _ = world
    catchup.catch_up()
    got: dict[tuple[str, int, str], tuple[int, int]] = {}
    for row in MemberDay.select():
        got[(row.member_id, row.day, row.store_id)] = (row.spend, row.visits)
    want: dict[tuple[str, int, str], list[int]] = defaultdict(lambda: [0, 0])
    for sale in workload.sales:
        cell = want[(sale.member, sale.day, sale.store_id)]
        cell[0] += sale.spend
        cell[1] += sale.visits
    assert got == {k: (v[0], v[1]) for k, v in want.items()}
    assert catchup.catch_up() == 0  # nothing new: the cursor is at the end


def test_segment_sizes_are_the_constructed_ones(world: tuple[Ledger, Workload, Path]) -> None:
    _, workload, _ = world
    report = reports.segments_report(YEAR, Scope())
    assert report.counts == workload.expected_segments
    cuts = report.cuts["CNY"]
    assert cuts.frequency == (1, 3, 19, 35)
    assert cuts.monetary == (500, 2000, 18000, 34000)


def test_segment_members_lists_exactly_each_segment(world: tuple[Ledger, Workload, Path]) -> None:
    ledger, _, _ = world
    as_of_ms = T_DAY * calendar.DAY_MS + 23 * 3600 * 1000
    champions = sorted(segment_members(ledger.database, "champions", as_of_ms))
    assert champions == [f"recent-{r:02d}" for r in range(28, 50)]
    assert sorted(segment_members(ledger.database, "at risk", as_of_ms)) == [f"risk-{i:02d}" for i in range(20)]
    assert sorted(segment_members(ledger.database, "new", as_of_ms)) == [f"new-{i:02d}" for i in range(10)]
    lapsed = set(segment_members(ledger.database, "lapsed", as_of_ms))
    assert lapsed == {f"lapsed-{i:02d}" for i in range(20)}
    with pytest.raises(LedgerError, match="unknown segment 'vip'"):
        segment_members(ledger.database, "vip", as_of_ms)


def spa_owns_store_2() -> None:
    """The merchant ``spa``, owner of store-2 (once per module's ledger)."""
    from ledger.merchants import admin as merchants_admin

    if not merchants_admin.merchant_store_ids("spa"):
        merchants_admin.add_merchant("Spa", merchant_id="spa")
        merchants_admin.assign_store("store-2", "spa")


def test_segments_of_one_merchant_are_those_of_its_stores(world: tuple[Ledger, Workload, Path]) -> None:
    ledger, _, _ = world
    as_of_ms = T_DAY * calendar.DAY_MS
    spa_owns_store_2()
    # store-2 (the spa's): the new members live there; recent members bought there too (every third visit)
    new = sorted(segment_members(ledger.database, "new", as_of_ms, merchant="spa"))
    assert new == [f"new-{i:02d}" for i in range(10)]
    assert not list(segment_members(ledger.database, "at_risk", as_of_ms, merchant="spa"))
    with pytest.raises(LedgerError, match="no merchant"):
        segment_members(ledger.database, "new", as_of_ms, merchant="nobody")


def test_top_quarter_share_is_exact(world: tuple[Ledger, Workload, Path]) -> None:
    report = reports.members_report(YEAR, Scope())
    top = report.groups["CNY"].top_quarter()
    assert (top.buyers, top.top_members, top.top_spend, top.total_spend) == (80, 20, 810_000, 1_290_000)
    assert top.share == Fraction(81, 129)
    data = report.to_json()["currencies"][0]
    assert data["top_quarter"]["share_percent"] == "62.8"
    assert (data["members"], data["buyers"], data["new_members"]) == (100, 80, 10)


def test_members_report_agrees_with_a_naive_recount(world: tuple[Ledger, Workload, Path]) -> None:
    _, workload, _ = world
    period = Period(T_DAY - 59, T_DAY)
    data = reports.members_report(period, Scope()).to_json()["currencies"][0]
    spend: dict[str, int] = defaultdict(int)
    visits: dict[str, int] = defaultdict(int)
    for sale in workload.sales:
        if sale.member and period.first_day <= sale.day <= period.last_day:
            spend[sale.member] += sale.spend
            visits[sale.member] += sale.visits
    buyers = [m for m in visits if visits[m] > 0]
    assert data["buyers"] == len(buyers)
    assert data["visits"] == sum(visits.values())
    assert data["net_sales"] == sum(spend.values())
    tiers = {t["tier"]: t for t in data["tiers"]}
    assert tiers["standard"]["members"] == 100
    assert sum(b["buyers"] for b in data["visit_frequency"]) == len(buyers)
    life = sum(s.spend for s in workload.sales if s.member)
    assert data["lifetime_value"]["to_date_total"] == life


def test_cohort_retention_matches_a_naive_recount(world: tuple[Ledger, Workload, Path]) -> None:
    _, workload, _ = world
    period = Period(T_DAY - 800, T_DAY)
    report = reports.cohorts_report(period, Scope())
    sizes: dict[int, int] = defaultdict(int)
    for day in workload.joined.values():
        sizes[calendar.month_of_day(day)] += 1
    active: dict[tuple[str, int], int] = defaultdict(int)
    for sale in workload.sales:
        if sale.member:
            active[(sale.member, calendar.month_of_day(sale.day))] += sale.visits
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for (member, month), v in active.items():
        if v > 0:
            join = calendar.month_of_day(workload.joined[member])
            counts[(join, month - join)] += 1
    assert {c.month: c.size for c in report.cohorts} == dict(sizes)
    for cohort in report.cohorts:
        for offset in range(report.last_month - cohort.month + 1):
            assert cohort.active.get(offset, 0) == counts.get((cohort.month, offset), 0)
    newest = report.cohorts[-1]
    assert (newest.label, newest.size, newest.retention(0)) == ("2026-06", 10, Fraction(1))
    lapsed = next(c for c in report.cohorts if c.size == 20)
    offset = calendar.month_of_day(T_DAY - 500) - lapsed.month
    assert lapsed.retention(offset) == Fraction(1, 2)


def test_sales_report_counts_anonymous_sales_apart(world: tuple[Ledger, Workload, Path]) -> None:
    _, workload, _ = world
    report = reports.sales_report(Period(T_DAY - 40, T_DAY), Scope.of(store_id="store-2"))
    (store_id, currency), totals = next(iter(report.totals().items()))
    assert (store_id, currency) == ("store-2", "CNY")
    anonymous = sum(s.spend for s in workload.sales if not s.member and s.day >= T_DAY - 40)
    members = sum(s.spend for s in workload.sales if s.member and s.store_id == "store-2" and s.day >= T_DAY - 40)
    assert totals[0] == anonymous + members
    assert totals[2] == members


def test_rebuild_gives_the_same_table(world: tuple[Ledger, Workload, Path]) -> None:
    before = sorted((r.member_id, r.day, r.store_id, r.spend, r.visits, r.join_month) for r in MemberDay.select())
    assert catchup.rebuild() > 0
    after = sorted((r.member_id, r.day, r.store_id, r.spend, r.visits, r.join_month) for r in MemberDay.select())
    assert after == before


def _cli(ledger_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CARDPOS, "ledger", "report", *args, "--ledger-dir", str(ledger_dir)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_report_command_prints_json_csv_and_text(world: tuple[Ledger, Workload, Path],
                                                clean_env: dict[str, str]) -> None:
    _, _, ledger_dir = world
    store.db.close()  # the subprocess opens the same file; nothing is held open meanwhile
    to = calendar.day_label(T_DAY)
    frm = calendar.day_label(T_DAY - 364)
    result = _cli(ledger_dir, clean_env, "segments", "--to", to, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {s["segment"]: s["members"] for s in data["segments"]} == {"new": 10, "active": 28, "champions": 22,
                                                                      "at_risk": 20, "lapsed": 20}
    result = _cli(ledger_dir, clean_env, "members", "--from", frm, "--to", to, "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = {(r["figure"], r["group"]): r["value"] for r in csv.DictReader(io.StringIO(result.stdout))}
    assert rows[("top_quarter_share_percent", "")] == "62.8"
    result = _cli(ledger_dir, clean_env, "cohorts", "--from", "2024-01-01", "--to", to)
    assert result.returncode == 0, result.stderr
    assert "2026-06" in result.stdout and "100.0" in result.stdout
    result = _cli(ledger_dir, clean_env, "sales", "--from", to, "--to", frm)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith(f"the period starts ({to}) after it ends ({frm})")
    result = _cli(ledger_dir, clean_env, "sales", "--from", "June 1st")
    assert result.returncode != 0 and "--from takes a date as YYYY-MM-DD" in result.stderr
    assert "Traceback" not in result.stderr


def test_console_analytics_page_for_marketing(world: tuple[Ledger, Workload, Path]) -> None:
    from starlette.testclient import TestClient

    from ledger.console import accounts
    from ledger.console.app import create_app

    _, _, ledger_dir = world
    app = create_app(ledger_dir, clock=Clock((T_DAY + 1) * calendar.DAY_MS - 1), background=False)
    password = "analytics-test-password"
    accounts.add_admin("mkt", "marketing", password=password, actor="test")
    spa_owns_store_2()
    accounts.add_admin("mgr", "merchant_manager", password=password, merchant_id="spa", actor="test")

    def client(name: str) -> TestClient:
        c = TestClient(app)
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/signin").text)
        assert token
        answer = c.post("/signin", data={"csrf": token.group(1), "name": name, "password": password,
                                         "next": "/dashboard"}, follow_redirects=False)
        assert answer.status_code == 303, answer.text[:300]
        return c

    marketing = client("mkt")
    page = marketing.get("/analytics?view=segments")
    assert page.status_code == 200
    assert 'href="/analytics"' in page.text  # in the navigation
    segments = re.findall(r'<td class="num" data-label="[^"]+">(\d+)</td>', page.text.split('id="segments"')[1])
    assert segments == ["10", "28", "22", "20", "20"]
    assert "<svg" in page.text and "http" not in page.text.split("<svg", 1)[1].split("</svg>")[0].replace(
        "http://www.w3.org/2000/svg", "")
    page = marketing.get(f"/analytics?view=members&from={calendar.day_label(T_DAY - 364)}")
    assert '<td id="top-quarter">62.8 %</td>' in page.text
    page = marketing.get("/analytics?view=cohorts&from=2024-01-01")
    assert "2026-06" in page.text and "100.0" in page.text
    page = marketing.get("/analytics?view=sales&store=store-2")
    assert page.status_code == 200 and "store-2" in page.text
    page = marketing.get("/analytics?view=sales&from=yesterday")
    assert page.status_code == 400 and "--from takes a date as YYYY-MM-DD" in page.text
    assert client("mgr").get("/analytics").status_code == 403
