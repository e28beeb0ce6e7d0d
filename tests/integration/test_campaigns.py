"""Greetings and promotions end to end: the real ``cardpos ledger campaigns`` job as a process, the SMS gateway
simulator as a process, a real SMTP server (aiosmtpd) and, for callbacks and unsubscribes, the console process.

Each test runs on SQLite and on PostgreSQL. Members, facts and campaigns are set up in this process through the
ledger's own Python API on the same database (seconds faster than a CLI run each); everything that sends runs as
the real command."""

from __future__ import annotations

import datetime
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from ledger import admin, member_facts, store
from ledger.campaigns import plan, tables
from ledger.campaigns.model import Kind
from ledger.campaigns.tables import CampaignMessage
from tests.conftest import REPO_ROOT
from tests.fixtures.alerts import SmtpServer
from tests.fixtures.console import ConsoleServer
from tests.fixtures.ledger import LedgerServer, make_ledger, run_ledger_cli
from tests.fixtures.smsgateway import SMS_SECRET, SMS_TOKEN, SmsGatewayFactory, SmsGatewayProcess

SHANGHAI_10AM = "2026-11-30T10:00+08:00"
TODAY = "1990-11-30"


@dataclass
class World:
    ledger: LedgerServer
    gateway: SmsGatewayProcess | None = None
    smtp: SmtpServer | None = None

    def open(self) -> None:
        from ledger.home import open_ledger

        open_ledger(self.ledger.ledger_dir, self.ledger.db_url)
        tables.create_tables()

    def configure(self, *, extra: str = "", unsubscribe_url: str = "http://127.0.0.1:9/unsubscribe") -> None:
        # extra: top-level keys first, then its own tables
        parts = [f'unsubscribe_url = "{unsubscribe_url}"', extra, "[retry]", "backoff_s = 1"]
        if self.gateway is not None:
            parts += ["[sms]", f'url = "{self.gateway.url}/messages"', f'token = "{SMS_TOKEN}"', 'sender = "CARDPOS"',
                      f'callback_secret = "{SMS_SECRET}"', "timeout_s = 10"]
        if self.smtp is not None:
            parts += ["[mail]", f'host = "{self.smtp.host}"', f"port = {self.smtp.port}",
                      'from = "club@cardpos.test"']
        (self.ledger.ledger_dir / "campaigns.toml").write_text("\n".join(parts) + "\n", encoding="utf-8")

    def member(self, name: str, *, phone: str = "", email: str = "", birthday: str | None = None,
               language: str = "zh", sms: bool | None = None, mail: bool | None = None, zone: str | None = None) -> str:
        member_id = admin.add_member(name, phone=phone, email=email, actor="test")
        consents = {k: v for k, v in (("sms", sms), ("mail", mail)) if v is not None}
        member_facts.record_facts(member_id, birthday=birthday, language=language, consents=consents,
                                  at_ms=1_700_000_000_000, source="till:T-1")
        if zone:
            member_facts.set_facts(member_id, at_ms=1_700_000_000_000, actor="test", time_zone=zone)
        return member_id

    def campaign(self, kind: Kind, channel: str, **kw: Any) -> str:
        texts = {"text_zh": "{name}，生日快乐！", "text_en": "Happy birthday, {name}!"}
        if channel == "mail":
            texts |= {"subject_zh": "生日快乐", "subject_en": "Happy birthday"}
        texts |= kw
        return plan.create_campaign(plan.CampaignSpec(name=f"{kind.value} {channel}", kind=kind, channel=channel,
                                                      **texts), actor="test", now_ms=1_700_000_000_000)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_ledger_cli(self.ledger.ledger_dir, self.ledger.env, "campaigns", *args, check=check,
                              timeout=120)

    def job(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "cardpos", "ledger", "campaigns", *args, "--ledger-dir",
                                 str(self.ledger.ledger_dir)], env=self.ledger.env, cwd=REPO_ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def statuses(self, campaign_id: str) -> dict[str, str]:
        return {str(r.member_id): str(r.status) for r in
                CampaignMessage.select().where(CampaignMessage.campaign_id == campaign_id)}


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path, smtp_server: SmtpServer,
          sms_gateway: SmsGatewayFactory) -> Iterator[World]:
    """A ledger on SQLite and on PostgreSQL (a database of its own on the session's server): the job and the
    console find it from the ledger directory's settings."""
    db_url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    made = World(make_ledger(tmp_path / "w", db_url=db_url), smtp=smtp_server)
    made.open()
    assert store.is_postgres() == (request.param == "postgres")
    try:
        yield made
    finally:
        if not store.db.is_closed():
            store.db.close()


def wait_until(check: Any, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def by_phone(messages: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for message in messages:
        out.setdefault(message["to"], []).append(message["text"])
    return out


def test_birthday_greeting_once_in_the_members_language_across_a_restart(world: World,
                                                                         sms_gateway: SmsGatewayFactory) -> None:
    # Each send answers 6 s late (the job's SMS timeout is 10 s): the kill below must land while the job still waits
    # on its first SMS. At 1.5 s a loaded machine once let the job finish that SMS and send the mail before the
    # kill, so the restart sent the mail again (a mail relay cannot de-duplicate; the Message-ID only lets the
    # reader's client tell).
    gateway = world.gateway = sms_gateway("--mode", "slow", "--delay", "6")
    world.configure()
    assert world.smtp is not None
    wang = world.member("王芳", phone="+8613800000001", birthday=TODAY, language="zh", sms=True)
    ann = world.member("Ann Lee", phone="+8613800000002", birthday=TODAY, language="en", sms=True)
    gone = world.member("李雷", phone="+8613800000003", birthday=TODAY, sms=True)
    member_facts.set_consent(gone, "sms", False, at_ms=1_700_000_100_000, source="console", actor="support")
    world.member("Not Today", phone="+8613800000004", birthday="1990-12-01", language="en", sms=True)
    never = world.member("No Consent", phone="+8613800000005", birthday=TODAY, language="en")
    mailer = world.member("Mail Reader", email="reader@example.com", birthday=TODAY, language="en", mail=True)
    sms_campaign = world.campaign(Kind.GREETING, "sms", occasion="birthday")
    mail_campaign = world.campaign(Kind.GREETING, "mail", occasion="birthday")

    job = world.job("run-daily", "--at", SHANGHAI_10AM)
    try:
        wait_until(lambda: gateway.messages())  # the gateway took the first SMS; its answer is 6 s away
        job.send_signal(signal.SIGKILL)  # the job dies mid-run, before it recorded that answer
        job.wait(10)
    finally:
        if job.poll() is None:
            job.kill()
        job.communicate()
    assert len(gateway.messages()) == 1
    gateway.control(mode="ok")
    # the restart, five minutes later the same day (the dead job's claim on its message has expired)
    world.run("run-daily", "--at", "2026-11-30T10:05+08:00")
    texts = by_phone(gateway.messages())
    assert texts == {"+8613800000001": ["王芳，生日快乐！ 拒收请回复R"],
                     "+8613800000002": ["Happy birthday, Ann Lee! Reply STOP to opt out"]}
    mails = world.smtp.wait_for(1)
    assert len(mails) == 1 and mails[0]["To"] == "reader@example.com" and mails[0]["Subject"] == "Happy birthday"
    assert mails[0]["List-Unsubscribe"].startswith("<http://127.0.0.1:9/unsubscribe/")
    assert mails[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    world.run("run-daily", "--at", "2026-11-30T16:00+08:00")  # the job again the same day: nothing new
    assert len(gateway.messages()) == 2 and len(world.smtp.messages) == 1
    assert world.statuses(sms_campaign) == {wang: "sent", ann: "sent", gone: "opted_out", never: "opted_out",
                                            mailer: "opted_out"}
    # no mail consent: opted out (checked before the contact details)
    assert world.statuses(mail_campaign) == {mailer: "sent", wang: "opted_out", ann: "opted_out",
                                             gone: "opted_out", never: "opted_out"}


def test_no_sms_in_quiet_hours_in_the_members_time_zone(world: World, sms_gateway: SmsGatewayFactory) -> None:
    gateway = world.gateway = sms_gateway()
    world.configure()
    shanghai = world.member("上海会员", phone="+8613800000011", sms=True)
    new_york = world.member("NY Member", phone="+12125550123", language="en", sms=True, zone="America/New_York")
    promo = world.campaign(Kind.PROMOTION, "sms", segment="all", text_zh="{name}：本周双倍积分",
                           text_en="{name}: double points this week")
    at = "2026-11-30T22:30+08:00"  # 22:30 in Shanghai (quiet), 09:30 in New York
    world.run("schedule", promo, "now", "--at", at)
    world.run("run-daily", "--at", at)
    assert by_phone(gateway.messages()) == {"+12125550123": ["NY Member: double points this week Reply STOP to "
                                                             "opt out"]}
    assert world.statuses(promo) == {shanghai: "pending", new_york: "sent"}
    world.run("deliver", "--at", "2026-12-01T07:59+08:00")  # still quiet
    assert len(gateway.messages()) == 1
    world.run("deliver", "--at", "2026-12-01T08:00+08:00")
    assert by_phone(gateway.messages())["+8613800000011"] == ["上海会员：本周双倍积分 拒收请回复R"]
    assert world.statuses(promo) == {shanghai: "sent", new_york: "sent"}


def test_a_throttling_gateway_delays_and_nothing_is_lost_or_doubled(world: World,
                                                                   sms_gateway: SmsGatewayFactory) -> None:
    gateway = world.gateway = sms_gateway("--mode", "throttle", "--retry-after", "1", "--fault-count", "3")
    world.configure()
    phones = [f"+86138000001{i:02d}" for i in range(8)]
    members = [world.member(f"会员{i}", phone=phone, sms=True) for i, phone in enumerate(phones)]
    promo = world.campaign(Kind.PROMOTION, "sms", segment="all", text_zh="{name}：新品到店", text_en="{name}: new in")
    world.run("schedule", promo, "now", "--at", SHANGHAI_10AM)
    started = time.monotonic()
    done = world.run("run-daily", "--at", SHANGHAI_10AM, "--follow-throttle", "30", "--json")
    assert time.monotonic() - started >= 3  # three Retry-After: 1 waits
    assert gateway.control()["refused"] == 3
    texts = by_phone(gateway.messages())
    assert sorted(texts) == sorted(phones) and all(len(t) == 1 for t in texts.values())
    assert set(world.statuses(promo).values()) == {"sent"} and len(world.statuses(promo)) == len(members)
    assert '"throttled"' in done.stdout


def test_stop_withdraws_sms_consent_and_one_click_unsubscribe_acts_on_post_only(
        world: World, sms_gateway: SmsGatewayFactory) -> None:
    console = ConsoleServer(world.ledger)
    gateway = world.gateway = sms_gateway(callback=f"{console.url}/sms/callback")
    world.configure(unsubscribe_url=f"{console.url}/unsubscribe")
    console.start()
    try:
        stopper = world.member("王强", phone="+86 138-0000-0021", email="wq@example.com", sms=True, mail=True)
        stays = world.member("Keeps", phone="+8613800000022", language="en", sms=True)
        promo = world.campaign(Kind.PROMOTION, "sms", segment="all", text_zh="{name}：周末特惠",
                               text_en="{name}: weekend offer")
        world.run("schedule", promo, "now", "--at", SHANGHAI_10AM)
        world.run("run-daily", "--at", SHANGHAI_10AM)
        # receipts come back through the console's signed callback
        try:
            wait_until(lambda: set(world.statuses(promo).values()) == {"delivered"})
        except AssertionError:
            raise AssertionError(f"{world.statuses(promo)} {gateway.messages()} {console.stderr()[-3000:]}") from None

        gateway.inject("+8613800000021", "STOP")  # the member replies STOP (another number's STOP changes nothing)
        gateway.inject("+8613899999999", "退订")
        wait_until(lambda: not member_facts.has_consent(stopper, "sms"))
        wait_until(lambda: all(m["callback"] == "sent" for m in gateway.inbound()))
        assert member_facts.has_consent(stays, "sms") and member_facts.has_consent(stopper, "mail")
        history = member_facts.facts_of(stopper).history
        assert (history[-1].channel, history[-1].granted, history[-1].source) == ("sms", False, "sms_reply")

        second = world.campaign(Kind.PROMOTION, "sms", segment="all", text_zh="{name}：再来", text_en="{name}: again")
        world.run("schedule", second, "now", "--at", "2026-12-10T10:00+08:00")
        world.run("run-daily", "--at", "2026-12-10T10:00+08:00")
        assert world.statuses(second)[stopper] == "opted_out"
        assert world.statuses(second)[stays] in ("sent", "delivered")
        assert len(by_phone(gateway.messages())["+8613800000021"]) == 1  # only the first promotion
        results = world.run("results", promo, "--json").stdout
        assert '"delivered": 2' in results and '"unsubscribed": 1' in results

        assert world.smtp is not None
        mail = world.campaign(Kind.PROMOTION, "mail", segment="all", text_zh="{name}：会员日", text_en="{name}: day",
                              subject_zh="会员日", subject_en="Members' day")
        world.run("schedule", mail, "now", "--at", "2026-12-20T10:00+08:00")
        world.run("run-daily", "--at", "2026-12-20T10:00+08:00")
        message = world.smtp.wait_for(1)[0]
        url = message["List-Unsubscribe"].strip("<>")
        assert url.startswith(console.url + "/unsubscribe/")
        page = requests.get(url, timeout=10)  # a link scanner's GET changes nothing
        assert page.status_code == 200 and 'method="post"' in page.text
        assert member_facts.has_consent(stopper, "mail")
        forged = requests.post(url[:-4] + "0000", data={"List-Unsubscribe": "One-Click"}, timeout=10)
        assert forged.status_code == 404 and member_facts.has_consent(stopper, "mail")
        done = requests.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=10)  # RFC 8058 one-click
        assert done.status_code == 200
        assert not member_facts.has_consent(stopper, "mail")
        audit = [r for r in admin.audit_log(50) if r["subject"] == stopper and r["action"] == "consent_withdraw"]
        assert {r["details"]["channel"] for r in audit} == {"sms", "mail"}
    finally:
        console.stop()


def test_preview_test_send_and_the_frequency_cap(world: World, sms_gateway: SmsGatewayFactory) -> None:
    gateway = world.gateway = sms_gateway()
    world.configure(extra='test_phone = "+8613900009999"\n[frequency_cap]\ncount = 1\ndays = 7')
    member = world.member("Ann Lee", phone="+8613800000041", language="en", sms=True)
    first = world.campaign(Kind.PROMOTION, "sms", segment="all", text_zh="{name}：一", text_en="{name}: one {points}")
    second = world.campaign(Kind.PROMOTION, "sms", segment="all", text_zh="{name}：二", text_en="{name}: two")
    shown = world.run("preview", first, "--member", member).stdout.strip()
    assert shown == "Ann Lee: one 0 Reply STOP to opt out"
    world.run("test-send", first, "--member", member)
    assert by_phone(gateway.messages()) == {"+8613900009999": ["[TEST] Ann Lee: one 0 Reply STOP to opt out"]}
    for campaign in (first, second):
        world.run("schedule", campaign, "now", "--at", SHANGHAI_10AM)
    world.run("run-daily", "--at", SHANGHAI_10AM)
    assert by_phone(gateway.messages())["+8613800000041"] == ["Ann Lee: one 0 Reply STOP to opt out"]
    assert (world.statuses(first), world.statuses(second)) == ({member: "sent"}, {member: "capped"})
    assert any(r["action"] == "campaign_test_send" and r["subject"] == first for r in admin.audit_log(20))


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)  # the command line's checks: one database is enough
def test_bad_inputs_are_one_line_errors(world: World) -> None:
    world.configure()
    member = world.member("Someone", phone="+8613800000031", sms=True)
    for args, words in ((("create", "x", "--kind", "greeting", "--channel", "sms", "--occasion", "easter",
                          "--text-zh", "a", "--text-en", "b"), "occasion"),
                        (("create", "x", "--kind", "promotion", "--channel", "sms", "--segment", "all",
                          "--text-zh", "{password}", "--text-en", "b"), "fields"),
                        (("preview", "cmp-none", "--member", member), "no campaign"),
                        (("run-daily", "--at", "tomorrow"), "not a time")):
        done = world.run(*args, check=False)
        assert done.returncode != 0 and words in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    facts = run_ledger_cli(world.ledger.ledger_dir, world.ledger.env, "member", "facts", member, "--birthday",
                           "1990-02-30", check=False)
    assert facts.returncode != 0 and "YYYY-MM-DD" in facts.stderr and "Traceback" not in facts.stderr


def _date(text: str) -> int:
    return int(datetime.datetime.fromisoformat(text).timestamp() * 1000)
