"""The daily job's planning on a real ledger, SQLite and PostgreSQL: which members have today's occasion, one row
per idempotency key however often it runs, holdout rows for greetings, a promotion planned twice, the holdout
drawn by the database the same as the rule, and a message table from before the unique key upgraded in place."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import admin, member_facts, store
from ledger.campaigns import plan, tables
from ledger.campaigns.config import CampaignConfig
from ledger.campaigns.model import Kind, MessageStatus, in_holdout
from ledger.campaigns.segments import DefaultSegments
from ledger.campaigns.tables import CampaignMessage
from ledger.home import init_ledger
from tests.fixtures.alerts import AlertClock, AlertLedger

NOON_SHANGHAI = int(datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=8)))
                    .timestamp() * 1000)


@pytest.fixture(params=["sqlite", "postgres"])
def planner(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AlertLedger]:
    """An initialised ledger with a pinned clock and the campaign tables, on SQLite and on PostgreSQL (a
    database of its own on the session's server)."""
    db_url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    clock = AlertClock()
    home = init_ledger(tmp_path / "ledger", db_url, clock=clock)
    tables.create_tables()
    try:
        yield AlertLedger(tmp_path / "ledger", clock)
    finally:
        home.database.close()


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
    assert plan.plan_promotion(promo, Listed([*first, "m-new", "m-new", first[0]]), now_ms=3).planned == 6
    assert CampaignMessage.select().where(CampaignMessage.campaign_id == promo).count() == 6
    with pytest.raises(admin.LedgerError, match="segment"):
        plan.create_campaign(spec("p", Kind.PROMOTION), actor="t", now_ms=1)
    with pytest.raises(admin.LedgerError, match="already planned"):
        plan.schedule(promo, 5, actor="t", now_ms=5)
    assert store.AuditLog.select().where(store.AuditLog.action == "campaign_plan").count() == 2


def test_a_promotion_to_everyone_draws_the_holdout_in_the_database_as_the_rule_does(planner: AlertLedger) -> None:
    members = [admin.add_member(name) for name in ("Ann", "王芳", "Bo", "Cy", "Di", "Ed", "Flo", "Gus", "Hal", "Ivy")]
    promo = plan.create_campaign(spec("all", Kind.PROMOTION, segment="all", holdout_bp=4000, seed="s-é-1"),
                                 actor="t", now_ms=1)
    plan.INSERT_ROWS, saved = 3, plan.INSERT_ROWS  # several chunks of members, and a last short one
    try:
        report = plan.plan_promotion(promo, DefaultSegments(), now_ms=2)
    finally:
        plan.INSERT_ROWS = saved
    statuses = {str(r.member_id): str(r.status) for r in CampaignMessage.select()}
    assert sorted(statuses) == sorted(members)
    assert statuses == {m: "holdout" if in_holdout(m, "s-é-1", 4000) else "pending" for m in members}
    assert (report.planned, report.holdout) == (list(statuses.values()).count("pending"),
                                                list(statuses.values()).count("holdout"))
    assert 0 < report.holdout < len(members)  # the seed draws both groups: the test compares something
    assert all(r.reference is None for r in CampaignMessage.select())  # written when claimed for sending
    admin.add_member("Late Joiner")
    again = plan.plan_promotion(promo, DefaultSegments(), now_ms=3)
    assert again.planned + again.holdout == len(members) + 1 == CampaignMessage.select().count()


def test_a_message_table_from_before_the_unique_key_is_upgraded_with_its_rows(planner: AlertLedger) -> None:
    member = admin.add_member("Old Row")
    promo = plan.create_campaign(spec("p", Kind.PROMOTION, segment="at_risk"), actor="t", now_ms=1)
    table = CampaignMessage._meta.table_name
    store.db.drop_tables([CampaignMessage])
    with store.atomic_write():  # the table as the first version made it: reference NOT NULL, its only unique key
        store.db.execute_sql(
            f'CREATE TABLE "{table}" ("id" {"BIGSERIAL" if store.is_postgres() else "INTEGER"} PRIMARY KEY, '
            '"campaign_id" VARCHAR(40) NOT NULL, "member_id" VARCHAR(40) NOT NULL, "channel" VARCHAR(8) NOT NULL, '
            '"occasion" VARCHAR(40) NOT NULL, "status" VARCHAR(12) NOT NULL, "attempts" INTEGER NOT NULL, '
            '"next_attempt_ms" BIGINT NOT NULL, "created_ms" BIGINT NOT NULL, "sent_ms" BIGINT, '
            '"reference" VARCHAR(64) NOT NULL, "provider_id" VARCHAR(128), "coupon_id" VARCHAR(40), '
            '"last_error" TEXT NOT NULL)')
        store.db.execute_sql(f'CREATE UNIQUE INDEX "campaignmessage_reference" ON "{table}" ("reference")')
        p = store.db.param
        store.db.execute_sql(
            f'INSERT INTO "{table}" ("campaign_id", "member_id", "channel", "occasion", "status", "attempts", '
            f'"next_attempt_ms", "created_ms", "reference", "last_error") VALUES ({", ".join([p] * 10)})',
            (promo, member, "sms", "", "sent", 1, 5, 5, "cp-old-reference", ""))
    tables.create_tables()
    tables.create_tables()  # the second time finds nothing to do
    (row,) = CampaignMessage.select()
    assert (row.member_id, row.status, row.reference) == (member, MessageStatus.SENT.value, "cp-old-reference")

    class Listed:
        def members(self, segment: str, as_of_ms: int) -> list[str]:
            return [member, "m-new"]

    assert plan.plan_promotion(promo, Listed(), now_ms=6).planned == 2  # the old row is the member's: one more
    assert CampaignMessage.select().where(CampaignMessage.reference.is_null()).count() == 1


def test_two_planners_of_one_promotion_at_once_plan_each_member_once(planner: AlertLedger) -> None:
    import threading

    members = [admin.add_member(f"P{i:02d}") for i in range(40)]
    promo = plan.create_campaign(spec("race", Kind.PROMOTION, segment="all", holdout_bp=1000, seed="r"),
                                 actor="t", now_ms=1)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait()
            plan.plan_promotion(promo, DefaultSegments(), now_ms=2)
        except BaseException as exc:  # the test reports it below
            errors.append(exc)
        finally:
            store.db.close()  # this thread's connection

    plan.INSERT_ROWS, saved = 6, plan.INSERT_ROWS  # many small chunks, so the two interleave
    try:
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        plan.INSERT_ROWS = saved
    assert errors == []
    assert sorted(str(r.member_id) for r in CampaignMessage.select()) == sorted(members)
