"""Alerts from ingest events into a real ledger database, delivered to a real SMTP server and real webhook
receivers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json

import requests

from ledger import alert_store, alerts, delivery, events
from ledger.alert_store import Alert, AlertOutbox
from tests.fixtures.alerts import ALERT_T0, AlertLedger, Chain, WebhookReceiver, WebhookRequest, reject_payload

SECRET = "s3cret-hook-key"


def config(ledger: AlertLedger, *, webhook: str | None = None, smtp: tuple[str, int] | None = None,
           extra_email: str = "", extra_webhook: str = "", digest_s: int = 60) -> None:
    parts = ['min_severity = "warning"']
    if webhook:
        parts.append(f'[webhook]\nurl = "{webhook}"\nsecret = "{SECRET}"\nbackoff_s = 10\nmax_attempts = 4\n'
                     + extra_webhook)
    if smtp:
        parts.append(f'[email]\nhost = "{smtp[0]}"\nport = {smtp[1]}\nfrom = "ledger@cardpos.test"\n'
                     f'to = ["admin@cardpos.test"]\ndigest_s = {digest_s}\n' + extra_email)
    ledger.write_config("\n".join(parts) + "\n")


def _signature_time(header: str) -> int:
    [stamp] = [part[2:] for part in header.split(",") if part.startswith("t=")]
    return int(stamp)


def forged_burst(taps: int, terminal: str = "T-1", start_ms: int = ALERT_T0, batch_size: int = 50,
                 store: str = "S1") -> None:
    chain = Chain(terminal, store)
    entries = [chain.add("card_reject", reject_payload("bad_signature"), start_ms + i * 200) for i in range(taps)]
    for i in range(0, taps, batch_size):
        events.publish(chain.batch(entries[i:i + batch_size]))


def test_thousand_forged_taps_make_one_alert_one_mail_one_webhook(alert_ledger, smtp_server, webhook_receiver):
    hook = webhook_receiver()
    config(alert_ledger, webhook=hook.url, smtp=(smtp_server.host, smtp_server.port))
    alerts.install(alert_ledger.ledger_dir, start_worker=False)

    forged_burst(1000)

    rows = list(Alert.select())
    assert len(rows) == 1
    alert = rows[0]
    assert (alert.rule, alert.severity, alert.subject_type, alert.subject_id, alert.count) == \
        ("forged_burst", "critical", "terminal", "T-1", 1000)
    assert alert.first_seen_ms == ALERT_T0 and alert.last_seen_ms == ALERT_T0 + 999 * 200
    assert "T-1:1" in alert.evidence and "T-1:1000" in alert.evidence
    assert AlertOutbox.select().count() == 2  # one per channel, written with the alert

    # the mail waits for its digest window; the webhook goes at once
    now = alert_ledger.clock.now
    early = alerts.deliver_pending(now)
    assert (early.sent, early.waiting) == (1, 1)
    assert smtp_server.messages == []
    later = alerts.deliver_pending(now + 61_000)
    assert (later.sent, later.mails) == (1, 1)
    assert alerts.deliver_pending(now + 200_000).sent == 0  # nothing is sent twice

    mails = smtp_server.wait_for(1)
    assert len(mails) == 1
    body = mails[0].get_content()
    assert "count 1000" in body and "forged_burst" in body
    assert "1 alert (critical), 1000 occurrences" in mails[0]["Subject"]
    assert smtp_server.envelopes[0] == ("ledger@cardpos.test", ["admin@cardpos.test"])

    [request] = hook.requests
    signed_at = now // 1000
    mac = hmac.new(SECRET.encode(), f"{signed_at}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Cardpos-Signature"] == f"t={signed_at},v1={mac}"
    assert delivery.verify_signature(SECRET, request.body, request.headers["X-Cardpos-Signature"], now_s=signed_at)
    payload = request.json()
    assert "forged_burst" in payload["text"] and "count 1000" in payload["text"]
    assert payload["alert"]["count"] == 1000 and payload["alert"]["id"] == alert.id


def test_webhook_that_fails_first_is_retried_with_backoff_until_it_succeeds(alert_ledger, webhook_receiver):
    hook = webhook_receiver(fail_first=2, fail_status=503)
    config(alert_ledger, webhook=hook.url)
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    forged_burst(5)
    t = alert_ledger.clock.now

    assert alerts.deliver_pending(t).failed == 1           # 503: retry in 10 s
    assert alerts.deliver_pending(t + 5_000).failed == 0   # not due yet: nothing sent
    assert len(hook.requests) == 1
    assert alerts.deliver_pending(t + 10_000).failed == 1  # 503 again: retry in 20 s
    assert alerts.deliver_pending(t + 25_000).sent == 0
    report = alerts.deliver_pending(t + 30_000)
    assert (report.sent, report.failed, report.dead) == (1, 0, 0)

    assert [r.status for r in hook.requests] == [503, 503, 200]
    row = AlertOutbox.get()
    assert (row.status, row.attempts, row.sent_ms) == ("sent", 3, t + 30_000)
    # every attempt was signed afresh when it was sent (a retry after the window is still accepted), over its
    # own body
    sent_at = [(t + offset) // 1000 for offset in (0, 10_000, 30_000)]
    assert [_signature_time(r.headers["X-Cardpos-Signature"]) for r in hook.requests] == sent_at
    for request, at in zip(hook.requests, sent_at, strict=True):
        assert delivery.verify_signature(SECRET, request.body, request.headers["X-Cardpos-Signature"], now_s=at)


def test_webhook_signed_with_every_secret_while_the_receiver_rotates(alert_ledger, webhook_receiver):
    clock = alert_ledger.clock
    new = webhook_receiver(secret="new-key", clock=lambda: clock.now / 1000)
    old = webhook_receiver(secret="old-key", clock=lambda: clock.now / 1000)
    alert_ledger.write_config(f'[webhook]\nurl = "{new.url}"\nsecret = ["new-key", "old-key"]\n')
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    forged_burst(5)
    assert alerts.deliver_pending(clock.now).sent == 1
    [request] = new.wait_for(1)
    assert request.signature_ok is True
    header = request.headers["X-Cardpos-Signature"]
    assert header.count("v1=") == 2
    # the same request at a receiver still holding the old key is accepted too
    assert _post(old, request) == 200 and old.requests[0].signature_ok is True


def test_webhook_without_a_secret_is_sent_unsigned(alert_ledger, webhook_receiver):
    hook = webhook_receiver()
    alert_ledger.write_config(f'[webhook]\nurl = "{hook.url}"\n')
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    forged_burst(5)
    assert alerts.deliver_pending(alert_ledger.clock.now).sent == 1
    [request] = hook.wait_for(1)
    assert "X-Cardpos-Signature" not in request.headers


def _post(receiver: WebhookReceiver, request: WebhookRequest) -> int:
    """Send a captured request again, byte for byte, to another receiver."""
    headers = {"Content-Type": "application/json", "X-Cardpos-Signature": request.headers["X-Cardpos-Signature"]}
    return requests.post(receiver.url, data=request.body, headers=headers, timeout=10).status_code


def test_webhook_that_never_succeeds_ends_as_a_dead_letter(alert_ledger, webhook_receiver):
    hook = webhook_receiver(fail_first=100, fail_status=500)
    config(alert_ledger, webhook=hook.url)
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    forged_burst(5)
    t = alert_ledger.clock.now
    reports = [alerts.deliver_pending(t + step * 1000) for step in (0, 10, 30, 70, 150, 310)]
    assert [(r.failed, r.dead) for r in reports] == [(1, 0), (1, 0), (1, 0), (0, 1), (0, 0), (0, 0)]
    assert len(hook.requests) == 4
    [dead] = delivery.dead_letters()
    assert (dead.status, dead.attempts, dead.last_error) == ("dead", 4, "HTTP 500")


def test_unreachable_webhook_is_retried_not_lost(alert_ledger):
    config(alert_ledger, webhook="http://127.0.0.1:9/nothing-listens-here", extra_webhook="timeout_s = 2\n")
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    forged_burst(5)
    report = alerts.deliver_pending(alert_ledger.clock.now)
    assert report.failed == 1
    row = AlertOutbox.get()
    assert row.status == "pending" and "could not be reached" in row.last_error


def test_mail_digest_gathers_alerts_and_hourly_limit_holds_the_rest(alert_ledger, smtp_server):
    config(alert_ledger, smtp=(smtp_server.host, smtp_server.port), extra_email="max_per_hour = 1\n")
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    t = alert_ledger.clock.now
    forged_burst(5, "T-1", store="S1")
    forged_burst(7, "T-2", store="S2")
    assert alerts.deliver_pending(t + 61_000).mails == 1
    forged_burst(6, "T-3", start_ms=ALERT_T0 + 120_000, store="S3")
    held = alerts.deliver_pending(t + 200_000)
    assert (held.mails, held.waiting) == (0, 1)  # one mail per hour at most
    released = alerts.deliver_pending(t + 61_000 + 3_600_000)
    assert released.mails == 1
    mails = smtp_server.wait_for(2)
    first = mails[0].get_content()
    assert "T-1" in first and "T-2" in first and "count 5" in first and "count 7" in first
    assert "2 alerts" in mails[0]["Subject"]
    assert "T-3" in mails[1].get_content()


def test_mail_over_starttls(alert_ledger, smtp_tls_server):
    config(alert_ledger, smtp=(smtp_tls_server.host, smtp_tls_server.port),
           extra_email=f'starttls = true\ncafile = "{smtp_tls_server.cafile}"\n', digest_s=0)
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    forged_burst(5)
    assert alerts.deliver_pending(alert_ledger.clock.now).mails == 1
    assert "forged_burst" in smtp_tls_server.wait_for(1)[0].get_content()


def test_mail_without_starttls_to_a_server_requiring_it_is_retried(alert_ledger, smtp_tls_server):
    config(alert_ledger, smtp=(smtp_tls_server.host, smtp_tls_server.port), digest_s=0)
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    forged_burst(5)
    report = alerts.deliver_pending(alert_ledger.clock.now)
    assert (report.mails, report.failed) == (0, 1)
    assert smtp_tls_server.messages == []


def test_severity_below_the_channel_minimum_is_stored_but_not_sent(alert_ledger, webhook_receiver):
    hook = webhook_receiver()
    config(alert_ledger, webhook=hook.url)
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    events.publish(events.BatchRejected("T-9", "replayed", "batch b1 again", ALERT_T0, [1, 2]))  # info
    assert [(a.rule, a.severity) for a in Alert.select()] == [("replayed_batch", "info")]
    assert AlertOutbox.select().count() == 0


def test_background_worker_delivers_without_being_asked(alert_ledger, webhook_receiver):
    hook = webhook_receiver()
    config(alert_ledger, webhook=hook.url)
    alerts.install(alert_ledger.ledger_dir, start_worker=True)
    forged_burst(5)
    [request] = hook.wait_for(1, timeout_s=10)
    assert json.loads(request.body)["alert"]["rule"] == "forged_burst"
    alerts.uninstall()
    assert alert_store.AlertOutbox.get().status == "sent"
