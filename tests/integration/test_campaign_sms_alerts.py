"""Alerts to the on-call admin's phone: the SMS alert channel through the real gateway simulator process, with
the outbox's dedup (one alert, one SMS), the digest and a throttling gateway (delayed, never lost or doubled)."""

from __future__ import annotations

from ledger import alerts, events
from ledger.alert_store import AlertOutbox
from ledger.delivery import parse_config
from tests.fixtures.alerts import ALERT_T0, AlertLedger, Chain, reject_payload
from tests.fixtures.smsgateway import SMS_TOKEN, SmsGatewayFactory

ON_CALL = "+8613900000001"
DEPUTY = "+8613900000002"


def sms_config(ledger: AlertLedger, url: str, *, digest_s: int = 0) -> None:
    ledger.write_config(f'min_severity = "warning"\n[sms]\nto = ["{ON_CALL}", "{DEPUTY}"]\nurl = "{url}/messages"\n'
                        f'token = "{SMS_TOKEN}"\ndigest_s = {digest_s}\nbackoff_s = 1\n')


def forged_burst(taps: int, terminal: str = "T-1", start_ms: int = ALERT_T0) -> None:
    chain = Chain(terminal, "S1")
    entries = [chain.add("card_reject", reject_payload("bad_signature"), start_ms + i * 200) for i in range(taps)]
    for i in range(0, taps, 50):
        events.publish(chain.batch(entries[i:i + 50]))


def test_critical_alert_reaches_the_on_call_phone_once(alert_ledger: AlertLedger,
                                                      sms_gateway: SmsGatewayFactory) -> None:
    gateway = sms_gateway()
    sms_config(alert_ledger, gateway.url)
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    forged_burst(300)  # one critical alert (forged_burst), however many taps
    assert AlertOutbox.select().where(AlertOutbox.channel == "sms").count() == 1
    report = alerts.deliver_pending(alert_ledger.clock.now)
    assert report.sent == 1
    messages = gateway.messages()
    assert sorted(m["to"] for m in messages) == [ON_CALL, DEPUTY]
    assert all("CRITICAL" in m["text"] and "forged_burst" in m["text"] for m in messages)
    assert alerts.deliver_pending(alert_ledger.clock.now + 600_000).sent == 0
    assert len(gateway.messages()) == 2  # nothing twice


def test_a_warning_does_not_wake_the_on_call_admin(alert_ledger: AlertLedger) -> None:
    config = parse_config({"sms": {"to": ON_CALL, "url": "http://127.0.0.1:9/messages", "token": "t"}})
    assert config.sms is not None and config.sms.min_severity.value == "critical"
    assert [c.name for c in config.channels()] == ["sms"]


def test_a_throttling_gateway_delays_the_alert_and_sends_it_once(alert_ledger: AlertLedger,
                                                                 sms_gateway: SmsGatewayFactory) -> None:
    gateway = sms_gateway("--mode", "throttle", "--retry-after", "30", "--fault-count", "1")
    sms_config(alert_ledger, gateway.url)
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    forged_burst(300)
    now = alert_ledger.clock.now
    first = alerts.deliver_pending(now)
    assert (first.sent, first.failed, first.waiting) == (0, 0, 1)
    assert alerts.deliver_pending(now + 10_000).sent == 0  # still inside the gateway's Retry-After
    row = AlertOutbox.get(AlertOutbox.channel == "sms")
    assert row.attempts == 0 and row.status == "pending"  # throttling is not a failed attempt
    assert alerts.deliver_pending(now + 31_000).sent == 1
    assert sorted(m["to"] for m in gateway.messages()) == [ON_CALL, DEPUTY]
    assert gateway.control()["refused"] == 1
