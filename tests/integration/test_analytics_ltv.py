"""Projected lifetime value on a generated workload whose answer is worked out by hand here
(tests/fixtures/ltv_workload.py): the retention per segment, each member's projection, the totals per tier,
segment, home store and merchant, through the report, `cardpos ledger report ltv` and the console, on SQLite
and on PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from ledger import store
from ledger.analytics import calendar, catchup, lifetime, models, projection, reports
from ledger.analytics.scope import Period, Scope
from ledger.home import Ledger, init_ledger
from tests.conftest import CARDPOS
from tests.fixtures import ltv_workload
from tests.fixtures.analytics_workload import T_DAY
from tests.fixtures.ltv_workload import LtvWorkload

# By hand (the fixture's table): the share of each segment on T - 365 who bought since.
RATES = {"new": Fraction(3, 4), "champions": Fraction(1, 2), "active": Fraction(1, 2), "at_risk": Fraction(1, 3),
         "lapsed": Fraction(1, 5)}


class Clock:
    def __init__(self, now_ms: int = 0) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def merchant_spa_owns_store_2() -> None:
    from ledger.merchants import admin as merchants_admin

    if not merchants_admin.merchant_store_ids("spa"):
        merchants_admin.add_merchant("Spa", merchant_id="spa")
        merchants_admin.assign_store("store-2", "spa")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ledger, LtvWorkload, Path]]:
    root = tmp_path_factory.mktemp("ltv")
    clock = Clock()
    ledger = init_ledger(root / "ledger", issuer="acme", clock=clock)
    workload = ltv_workload.build(clock)
    models.create_tables()
    merchant_spa_owns_store_2()
    yield ledger, workload, root / "ledger"
    ledger.database.close()


def life_spend(w: LtvWorkload) -> dict[str, int]:
    spend = dict.fromkeys(w.joined, 0)
    for sale in w.sales:
        spend[sale.member] += sale.spend
    return spend


def horizon_factor(months: int, yearly_percent: int) -> Fraction:
    """Σ_{k=1..M} (1/12) / (1 + r/12)^k, written out again here."""
    monthly = 1 + Fraction(yearly_percent, 100 * 12)
    return sum((Fraction(1, 12) / monthly**k for k in range(1, months + 1)), Fraction(0))


def expected_future(w: LtvWorkload, factor: Fraction = Fraction(1)) -> dict[str, int]:
    """Each member: floor(retention of its segment now × yearly spend × F), yearly spend = spend × 365 / tenure
    (tenure from joining to T, both counted, at least 90 days)."""
    out = {}
    for member, spend in life_spend(w).items():
        tenure = max(90, T_DAY - w.joined[member] + 1)
        out[member] = int(RATES[w.segment_now[member]] * Fraction(max(0, spend) * 365, tenure) * factor)
    return out


def test_retention_and_every_member_as_worked_by_hand(world: tuple[Ledger, LtvWorkload, Path]) -> None:
    _, w, _ = world
    report = lifetime.lifetime_report(T_DAY, Scope(), per_member=True)
    retention = report.valuations["CNY"].retention
    assert {s: (r.members, r.kept) for s, r in retention.items()} == ltv_workload.RETENTION
    assert {s: r.rate for s, r in retention.items()} == RATES
    rows = {r["member_id"]: r for r in report.member_rows("CNY")}
    assert {m: r["segment"] for m, r in rows.items()} == w.segment_now
    future, spend = expected_future(w), life_spend(w)
    assert {m: r["future"] for m, r in rows.items()} == future
    assert {m: r["projected"] for m, r in rows.items()} == {m: spend[m] + future[m] for m in spend}
    # one member spelled out: 300.00 over 1001 days, a champion kept at 1/2: floor(30000 × 365 / 1001 / 2)
    assert rows["steady-0"]["future"] == 5469 and rows["steady-0"]["yearly_spend"] == 10939
    assert rows["fresh-0"]["future"] == 0 and rows["young-0"]["visits"] == 2
    assert rows["young-0"]["visits_per_year"] == "1.82" and rows["young-0"]["spend_per_visit"] == 4000  # 730/401
    counts: dict[str, int] = defaultdict(int)
    for segment in w.segment_now.values():
        counts[segment] += 1
    assert dict(counts) == ltv_workload.SEGMENTS_NOW


def test_totals_per_tier_segment_store_and_merchant_add_up(world: tuple[Ledger, LtvWorkload, Path]) -> None:
    _, w, _ = world
    data = lifetime.lifetime_report(T_DAY, Scope()).to_json()["currencies"][0]
    future, spend = expected_future(w), life_spend(w)
    assert (data["members"], data["to_date_total"], data["future_total"]) == (69, sum(spend.values()),
                                                                             sum(future.values()))
    for grouping, key in (("tier", w.tier), ("segment", w.segment_now), ("store", w.home),
                          ("merchant", {m: "spa" if h == "store-2" else "-" for m, h in w.home.items()})):
        want: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for member, group in key.items():
            want[group][0] += 1
            want[group][1] += spend[member]
            want[group][2] += future[member]
        got = {row["group"]: [row["members"], row["to_date"], row["future"]] for row in data["by"][grouping]}
        assert got == dict(want), grouping


def test_discount_and_horizon_as_worked_by_hand(world: tuple[Ledger, LtvWorkload, Path]) -> None:
    _, w, _ = world
    horizon = projection.Horizon(12, 1200)  # 12 % a year: 1 % a month
    data = lifetime.lifetime_report(T_DAY, Scope(), horizon).to_json()
    assert data["horizon"] == {"months": 12, "days": 365, "discount_bp": 1200, "factor": "0.937923"}
    assert data["currencies"][0]["future_total"] == sum(expected_future(w, horizon_factor(12, 12)).values())
    # six months ahead calibrates on T - 183 instead: another retention table, still from the program's data
    six = lifetime.lifetime_report(T_DAY, Scope(), projection.Horizon(6))
    assert six.to_json()["calibrated_as_of"] == calendar.day_label(T_DAY - 183)


def test_members_report_shows_the_same_projection(world: tuple[Ledger, LtvWorkload, Path]) -> None:
    _, w, _ = world
    data = reports.members_report(Period(T_DAY - 29, T_DAY), Scope()).to_json()["currencies"][0]
    life = data["lifetime_value"]
    spend, future = sum(life_spend(w).values()), sum(expected_future(w).values())
    assert (life["to_date_total"], life["future_total"], life["projected_total"]) == (spend, future, spend + future)
    assert life["projected_average"] == (spend + future) // 69


def test_a_store_scope_projects_only_what_was_bought_there(world: tuple[Ledger, LtvWorkload, Path]) -> None:
    _, w, _ = world
    data = lifetime.lifetime_report(T_DAY, Scope.of(merchant="spa")).to_json()["currencies"][0]
    assert data["to_date_total"] == sum(s.spend for s in w.sales if s.store_id == "store-2")
    assert data["members"] == 10  # its own members (back-*): nobody else bought there


def _cli(ledger_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CARDPOS, "ledger", "report", *args, "--ledger-dir", str(ledger_dir)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_report_ltv_command_in_json_csv_and_text(world: tuple[Ledger, LtvWorkload, Path],
                                                 clean_env: dict[str, str]) -> None:
    _, w, ledger_dir = world
    store.db.close()  # the subprocess opens the same file
    to = calendar.day_label(T_DAY)
    future, spend = expected_future(w), life_spend(w)
    result = _cli(ledger_dir, clean_env, "ltv", "--to", to, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["currencies"][0]["projected_total"] == sum(spend.values()) + sum(future.values())
    assert {r["segment"]: r["used_percent"] for r in data["currencies"][0]["retention"]} == {
        "new": "75.0", "champions": "50.0", "active": "50.0", "at_risk": "33.3", "lapsed": "20.0"}
    result = _cli(ledger_dir, clean_env, "ltv", "--to", to, "--per-member", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = {r["member_id"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert {m: int(r["future"]) for m, r in rows.items()} == future
    result = _cli(ledger_dir, clean_env, "ltv", "--to", to, "--format", "csv")
    rows_by = {(r["grouping"], r["group"]): r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert int(rows_by[("merchant", "spa")]["to_date"]) == sum(spend[m] for m in spend if w.home[m] == "store-2")
    result = _cli(ledger_dir, clean_env, "ltv", "--to", to)
    assert result.returncode == 0 and "retention:  new 75.0 % (3/4)" in result.stdout
    result = _cli(ledger_dir, clean_env, "ltv", "--to", to, "--horizon-months", "0")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("the horizon is 1 to 120 months, not 0")
    result = _cli(ledger_dir, clean_env, "ltv", "--to", to, "--discount-bp", "-5")
    assert result.returncode == 1 and "basis points a year, not -5" in result.stderr
    result = _cli(ledger_dir, clean_env, "members", "--to", to, "--horizon-months", "6", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["currencies"][0]["lifetime_value"]["horizon_months"] == 6


def test_console_lifetime_value_tab(world: tuple[Ledger, LtvWorkload, Path]) -> None:
    from starlette.testclient import TestClient

    from ledger.console import accounts
    from ledger.console.app import create_app

    _, w, ledger_dir = world
    app = create_app(ledger_dir, clock=Clock((T_DAY + 1) * calendar.DAY_MS - 1), background=False)
    password = "ltv-console-password"
    accounts.add_admin("mkt", "marketing", password=password, actor="test")
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
    page = marketing.get("/analytics?view=ltv")
    assert page.status_code == 200, page.text[:500]
    total = sum(life_spend(w).values()) + sum(expected_future(w).values())
    assert re.search(r'<td id="ltv-projected-total">[^<]*' + re.escape(f"{total // 100}.{total % 100:02d}"),
                     page.text), page.text.split('id="ltv-projected-total"')[1][:80]
    retention = re.findall(r'<td class="num" data-label="[^"]+" id="retention-([a-z_]+)">([0-9.]+) %</td>',
                           page.text)
    assert dict(retention) == {"new": "75.0", "champions": "50.0", "active": "50.0", "at_risk": "33.3",
                               "lapsed": "20.0"}
    spa = marketing.get("/analytics?view=ltv&merchant=spa")
    assert spa.status_code == 200 and "merchant spa" in spa.text
    spa_total = sum(s.spend for s in w.sales if s.store_id == "store-2")
    assert f"{spa_total // 100}.{spa_total % 100:02d}" in spa.text.split('id="ltv-figures"')[1].split("</table>")[0]
    assert marketing.get("/analytics?view=ltv&merchant=nobody").status_code == 400
    page = marketing.get("/analytics?view=ltv&horizon=0")
    assert page.status_code == 400 and "the horizon is 1 to 120 months" in page.text
    page = marketing.get("/analytics?view=members")
    assert 'id="ltv-projected-average"' in page.text
    assert client("mgr").get("/analytics?view=ltv").status_code == 403  # the merchant manager's scope holds


def test_known_answer_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    clock = Clock()
    ledger = init_ledger(tmp_path / "ledger", postgres_url, issuer="acme", clock=clock)
    try:
        w = ltv_workload.build(clock)
        models.create_tables()
        merchant_spa_owns_store_2()
        assert catchup.catch_up(now_ms=10**13) > 0  # long after every entry was applied: all are settled
        report = lifetime.lifetime_report(T_DAY, Scope(), per_member=True)
        assert {s: r.rate for s, r in report.valuations["CNY"].retention.items()} == RATES
        assert {r["member_id"]: r["future"] for r in report.member_rows("CNY")} == expected_future(w)
        by_merchant = {r["group"]: r["to_date"] for r in report.to_json()["currencies"][0]["by"]["merchant"]}
        spend = life_spend(w)
        assert by_merchant == {"spa": sum(spend[m] for m in spend if w.home[m] == "store-2"),
                               "-": sum(spend[m] for m in spend if w.home[m] != "store-2")}
        discounted = lifetime.lifetime_report(T_DAY, Scope(), projection.Horizon(12, 1200)).to_json()
        assert discounted["currencies"][0]["future_total"] == sum(
            expected_future(w, horizon_factor(12, 12)).values())
    finally:
        ledger.database.close()
