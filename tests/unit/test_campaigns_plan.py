"""The daily job's planning on a real SQLite ledger: which members have today's occasion, one row per idempotency
key however often it runs, holdout rows for greetings, and a promotion planned twice."""

from __future__ import annotations

import datetime

import pytest

from ledger import admin, member_facts, store
from ledger.campaigns import plan, tables
from ledger.campaigns.config import CampaignConfig
from ledger.campaigns.model import Kind, in_holdout
from ledger.campaigns.tables import CampaignMessage
from tests.fixtures.alerts import AlertLedger

NOON_SHANGHAI = int(datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=8)))
                    .timestamp() * 1000)


@pytest.fixture
def planner(alert_ledger: AlertLedger) -> AlertLedger:
    tables.create_tables()
    return alert_ledger


def spec(name: str, kind: Kind, **kw: object) -> plan.CampaignSpec:
    values: dict[str, object] = {"name": name, "kind": kind, "channel": "sms", "text_zh": "{name}好",
                                 "text_en": "Hi {name}"}
    values.update(kw)
    return plan.CampaignSpec(**values)  # type: ignore[arg-type]


def test_greetings_are_planned_once_per_occasion(planner: AlertLedger) -> None:
    born_today = admin.add_member("Born Today")
    joined = admin.add_member("Joined Two Years Ago")
    other = admin.add_member("Other Day")
    member_facts.record_facts(born_today, birthday="1990-11-30", language="zh", consents={}, at_ms=1, source="t")
    member_facts.set_facts(joined, at_ms=1, actor="t", join_date="2024-11-30")
    member_facts.record_facts(other, birthday="1990-11-29", language="en", consents={}, at_ms=1, source="t")
    birthday = plan.create_campaign(spec("b", Kind.GREETING, occasion="birthday"), actor="t", now_ms=1)
    anniversary = plan.create_campaign(spec("a", Kind.GREETING, occasion="anniversary"), actor="t", now_ms=1)
    holiday = plan.create_campaign(spec("h", Kind.GREETING, occasion="holiday", holiday="11-30", holdout_bp=5000,
                                        seed="s"), actor="t", now_ms=1)
    config = CampaignConfig()
    first = plan.run_daily(config, now_ms=NOON_SHANGHAI)
    assert first == {birthday: 1, anniversary: 1, holiday: 3}
    assert plan.run_daily(config, now_ms=NOON_SHANGHAI + 3_600_000) == first  # still due today ...
    assert CampaignMessage.select().count() == 5  # ... but nothing planned twice
    for row in CampaignMessage.select().where(CampaignMessage.campaign_id == holiday):
        assert (row.status == "holdout") == in_holdout(str(row.member_id), "s", 5000)
        assert row.status in ("holdout", "pending") and row.occasion == "holiday-2026-11-30"
    next_day = plan.run_daily(config, now_ms=NOON_SHANGHAI + 86_400_000)
    assert next_day == {} and CampaignMessage.select().count() == 5
    audit = [r for r in admin.audit_log(10) if r["action"] == "campaigns_daily"]
    assert [r["details"]["new_messages"] for r in audit] == [0, 0, 5]


def test_a_promotion_planned_twice_adds_only_new_members(planner: AlertLedger) -> None:
    class Listed:
        def __init__(self, members: list[str]) -> None:
            self.chosen = members

        def members(self, segment: str, as_of_ms: int) -> list[str]:
            return list(self.chosen)

    first = [admin.add_member(f"M{i}") for i in range(5)]
    promo = plan.create_campaign(spec("p", Kind.PROMOTION, segment="at_risk"), actor="t", now_ms=1)
    assert plan.plan_promotion(promo, Listed(first), now_ms=2).planned == 5
    assert plan.plan_promotion(promo, Listed([*first, "m-new"]), now_ms=3).planned == 6
    assert CampaignMessage.select().where(CampaignMessage.campaign_id == promo).count() == 6
    with pytest.raises(admin.LedgerError, match="segment"):
        plan.create_campaign(spec("p", Kind.PROMOTION), actor="t", now_ms=1)
    with pytest.raises(admin.LedgerError, match="already planned"):
        plan.schedule(promo, 5, actor="t", now_ms=5)
    assert store.AuditLog.select().where(store.AuditLog.action == "campaign_plan").count() == 2
