"""A promotion to a segment, end to end with real processes: the ledger server, the campaign job, the SMS
gateway simulator and a real enrolled terminal (its own CLI and data directory). Coupons issued to recipients
reach the terminal with its pull and are accepted at the till; the campaign's results show the redemption and the
sales uplift against the holdout group, also on the console's campaign page. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cardkit.core.money import Money
from ledger import admin, member_facts, store
from ledger.campaigns import plan, tables
from ledger.campaigns.model import Kind, in_holdout
from ledger.campaigns.tables import CampaignMessage
from ledger.home import open_ledger
from tests.conftest import REPO_ROOT
from tests.fixtures.console import PASSWORD, ConsoleClient, ConsoleServer
from tests.fixtures.ledger import LedgerServer, make_ledger
from tests.fixtures.smsgateway import SMS_TOKEN, SmsGatewayFactory

SEED = "seed-at-risk-1"


class AtRisk:
    """The test's segment source: the members it was given, for the segment ``at_risk`` only."""

    def __init__(self, members: list[str]) -> None:
        self.chosen = members

    def members(self, segment: str, as_of_ms: int) -> Iterable[str]:
        assert segment == "at_risk"
        return iter(self.chosen)


@pytest.fixture(params=["sqlite", "postgres"])
def promotion_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerServer]:
    """The ledger server on SQLite and on PostgreSQL (a database of its own on the session's server)."""
    db_url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    server = make_ledger(tmp_path / "ledger-home", db_url=db_url).start()
    try:
        yield server
    finally:
        server.stop()


def test_promotion_coupons_are_accepted_after_the_pull_and_results_show_uplift(
        promotion_ledger: LedgerServer, sms_gateway: SmsGatewayFactory, tmp_path: Path) -> None:
    ledger_server = promotion_ledger
    gateway = sms_gateway()
    (ledger_server.ledger_dir / "campaigns.toml").write_text(
        f'[quiet_hours]\nsms = "00:00-00:00"\n[sms]\nurl = "{gateway.url}/messages"\ntoken = "{SMS_TOKEN}"\n',
        encoding="utf-8")
    ledger = open_ledger(ledger_server.ledger_dir)
    assert store.is_postgres() == (ledger_server.db_url is not None)
    tables.create_tables()
    try:
        members = [admin.add_member(f"会员{i}", phone=f"+86139000{i:05d}", actor="test") for i in range(24)]
        for member_id in members:
            member_facts.record_facts(member_id, birthday=None, language="zh", consents={"sms": True},
                                      at_ms=ledger.now_ms(), source="till:T-1")
        campaign_id = plan.create_campaign(plan.CampaignSpec(
            name="回来看看", kind=Kind.PROMOTION, channel="sms", segment="at_risk",
            text_zh="{name}，送您10元券 {coupon}", text_en="{name}, a 10.00 coupon: {coupon}",
            coupon_amount_off=1000, coupon_days=30, holdout_bp=2500, seed=SEED), actor="test", now_ms=ledger.now_ms())
        report = plan.plan_promotion(campaign_id, AtRisk(members), now_ms=ledger.now_ms())
        held = [m for m in members if in_holdout(m, SEED, 2500)]
        treated = [m for m in members if m not in held]
        assert (report.planned, report.holdout) == (len(treated), len(held)) and held and treated
    finally:
        store.db.close()

    delivered = ledger_server.admin_json("campaigns", "deliver")
    assert delivered["sent"] == len(treated)
    texts = {m["to"]: m["text"] for m in gateway.messages()}
    assert len(texts) == len(treated)  # the holdout got nothing

    open_ledger(ledger_server.ledger_dir)
    try:
        coupon = str(CampaignMessage.get(CampaignMessage.member_id == treated[0]).coupon_id)
        assert coupon and coupon in texts[f"+86139000{members.index(treated[0]):05d}"]
    finally:
        store.db.close()

    till = Till.make(tmp_path / "till", ledger_server)
    code = ledger_server.admin_json("terminal", "add", "campaign till")["code"]
    till.run("terminal", "enroll", "--ledger", ledger_server.url, "--code", code)
    card = ledger_server.admin("card", "issue", "--member", treated[0]).stdout.strip()
    held_card = ledger_server.admin("card", "issue", "--member", held[0]).stdout.strip()
    before = till.run("terminal", "op", "sale", "100.00", "--card", card, "--coupon", coupon, "--json", check=False)
    assert before.returncode != 0  # the till does not know the coupon before its pull
    till.run("terminal", "sync", "--once")
    sale = till.json("terminal", "op", "sale", "100.00", "--card", card, "--coupon", coupon, "--tender", "cash")
    assert sale["ok"] and sale["payload"]["coupons"] == [coupon] and sale["payload"]["coupon_disc"] == 1000
    control = till.json("terminal", "op", "sale", "50.00", "--card", held_card, "--tender", "cash")
    till.run("terminal", "sync", "--once")

    results = ledger_server.admin_json("campaigns", "results", campaign_id, "--days", "7")
    assert results["coupons_issued"] == len(treated) and results["coupons_redeemed"] == 1
    assert results["sent"] == len(treated) and results["holdout"]["members"] == len(held)
    target_sales, holdout_sales = sale["payload"]["net"], control["payload"]["net"]
    assert results["target"]["sales"] == {"CNY": target_sales}
    assert results["holdout"]["sales"] == {"CNY": holdout_sales}
    uplift = target_sales // len(treated) - holdout_sales // len(held)
    assert results["uplift_per_member"] == {"CNY": uplift}

    # the same figures on the console's campaign page, for the marketing role
    from ledger.console import accounts
    from ledger.console import models as console_models
    from ledger.console.roles import Role

    open_ledger(ledger_server.ledger_dir)
    try:
        console_models.create_tables()
        accounts.add_admin("mia", Role.MARKETING, password=PASSWORD, with_totp=False, actor="test")
    finally:
        store.db.close()
    console = ConsoleServer(ledger_server).start()
    try:
        client = ConsoleClient(console.url)
        assert client.signin("mia", PASSWORD).status_code == 303
        page = client.get(f"/campaigns/{campaign_id}")
        assert page.status_code == 200
        assert f'id="r-coupons">1 / {len(treated)}<' in page.text
        assert f"{Money(uplift, 'CNY')}" in page.text.split('id="r-uplift">')[1].split("</td>")[0]
    finally:
        console.stop()


class Till:
    """A real terminal driven through ``cardpos terminal ...`` in its own data directory."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    @classmethod
    def make(cls, root: Path, ledger: LedgerServer) -> Till:
        data_dir = root / "data"
        data_dir.mkdir(parents=True)
        config = root / "config.toml"
        config.touch()
        env = {k: v for k, v in ledger.env.items() if not k.startswith("CARDPOS_")}
        env.update(CARDPOS_DATA_DIR=str(data_dir), CARDPOS_CONFIG=str(config), PYTHONUNBUFFERED="1",
                   CARDPOS_SYNC_TIMEOUT_S="10")
        return cls(env)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "cardpos", *args], env=self.env, cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"cardpos {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)
