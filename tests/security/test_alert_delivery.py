"""Alert delivery against a network attacker (issue 13, "Smaller").

- A webhook captured on the network cannot be replayed later: the signature covers a timestamp, and a receiver
  refuses one older than the tolerance window (300 s), or one whose timestamp was rewritten.
- ``verify_signature`` is a receiver's parser of hostile input: it answers False to anything, never raises.
- The SMTP password never crosses the network in clear: a login over plaintext is refused when the settings are
  loaded (the server does not start) unless ``allow_plaintext = true`` says so; STARTTLS and implicit TLS work,
  with a private CA file.
- Alerts are never posted in clear to another machine: ``http://`` webhooks only to loopback unless
  ``allow_http = true``.
- A misspelt setting (``startls``) is refused with its name rather than silently ignored.

Real parts: a ``cardpos ledger serve`` process with its delivery worker, a terminal enrolled over HTTP, real
aiosmtpd servers (plain, STARTTLS and implicit TLS with a self-signed certificate made here), webhook receivers
on 127.0.0.1 that check signatures as a real receiver must.
"""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import time
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit.errors import ConfigError
from ledger import alerts, delivery
from tests.conftest import free_port
from tests.fixtures.alerts import SMTP_PASSWORD, AlertLedger, Chain, SmtpServer, WebhookReceiver, reject_payload
from tests.fixtures.ledger import LedgerServer, LedgerTerminal, make_ledger, run_ledger_cli

SECRET = "hook-secret-for-the-security-tests"
WINDOW_S = 300


def _signature_time(header: str) -> int:
    [stamp] = [part[2:] for part in header.split(",") if part.startswith("t=")]
    return int(stamp)


def _raise_forged_burst(server: LedgerServer) -> None:
    """An enrolled terminal reports five taps of forged cards: the ledger raises a critical ``forged_burst``."""
    code = server.admin_json("terminal", "add", "till")["code"]
    till = LedgerTerminal.enroll(server.url, code)
    for _ in range(5):
        till.append("card_reject", reject_payload("bad_signature"))
    answer = till.push(1, 5)
    assert answer.status_code == 200, answer.text


def _replay(receiver: WebhookReceiver, headers: dict[str, str], body: bytes) -> int:
    sent = {name: value for name, value in headers.items() if name.lower() in ("content-type",
                                                                               "x-cardpos-signature")}
    return requests.post(receiver.url, data=body, headers=sent, timeout=10).status_code


# -- webhook signatures ------------------------------------------------------------------------------------------

def test_webhook_captured_from_the_ledger_is_refused_when_replayed_after_the_window(tmp_path: Path,
                                                                                     webhook_receiver) -> None:
    receiver_now = [time.time()]
    hook: WebhookReceiver = webhook_receiver(secret=SECRET, clock=lambda: receiver_now[0])
    server = make_ledger(tmp_path / "home")
    (server.ledger_dir / "alerts.toml").write_text(
        f'poll_s = 1\n[webhook]\nurl = "{hook.url}"\nsecret = "{SECRET}"\n', encoding="utf-8")
    server.start()
    try:
        _raise_forged_burst(server)
        [captured] = hook.wait_for(1, timeout_s=20)
    finally:
        server.stop()
    assert captured.json()["alert"]["rule"] == "forged_burst"
    assert captured.signature_ok is True  # the genuine delivery was accepted at once
    header = captured.headers["X-Cardpos-Signature"]
    signed_at = _signature_time(header)
    assert abs(signed_at - time.time()) < 60

    # the attacker who captured it replays it byte for byte: accepted inside the window (receivers dedup on
    # the alert id and sent_ms), refused once the window has passed
    receiver_now[0] = signed_at + WINDOW_S
    assert _replay(hook, captured.headers, captured.body) == 200
    receiver_now[0] = signed_at + WINDOW_S + 1
    assert _replay(hook, captured.headers, captured.body) == 401
    assert not delivery.verify_signature(SECRET, captured.body, header, now_s=signed_at + WINDOW_S + 1)
    # nor can it freshen the timestamp: the MAC covers it
    fresh = header.replace(f"t={signed_at}", f"t={signed_at + WINDOW_S}")
    assert not delivery.verify_signature(SECRET, captured.body, fresh, now_s=signed_at + WINDOW_S + 1)
    assert _replay(hook, {**captured.headers, "X-Cardpos-Signature": fresh}, captured.body) == 401
    # a timestamp far in the future is as stale as one far in the past (a receiver's clock set back)
    assert not delivery.verify_signature(SECRET, captured.body, header, now_s=signed_at - WINDOW_S - 1)
    assert [r.status for r in hook.requests] == [200, 200, 401, 401]


def test_signature_is_hmac_sha256_over_the_timestamp_and_the_body() -> None:
    """The published test vector (docs/alerts.md), computed independently here."""
    body = b'{"text":"cardpos alert"}'
    mac = hmac.new(b"whsec_test", b"1790000000." + body, hashlib.sha256).hexdigest()
    assert mac == "69dea935747d4a8e30561bc40c06ae464915e9c8181c5207935b1b3908511d95"
    header = delivery.sign("whsec_test", body, 1_790_000_000)
    assert header == f"t=1790000000,v1={mac}"
    assert delivery.verify_signature("whsec_test", body, header, now_s=1_790_000_000)


@pytest.mark.parametrize("header", [
    "t=1790000000,v1=é",                                  # non-ASCII: hmac.compare_digest raised TypeError
    "t=1790000000,v1=" + "ä" * 64,
    "t=１７９００００００００,v1=" + "0" * 64,                  # full-width digits int() would accept
    "t=1_790_000_000,v1=" + "0" * 64,
    "sha256=" + "0" * 64,                                 # the old scheme, without a timestamp
    "", ",", "t=", "v1=", "t=1790000000", "t=1790000000,t=1790000000,v1=" + "0" * 64,
    "t=-1,v1=" + "0" * 64, "t=99999999999999999999999999,v1=" + "0" * 64,
    pytest.param("t=1790000000," + "v1=00," * 2000, id="huge"),
    None, b"t=1790000000,v1=\xff", 12345, ["t=1"],
])
def test_verify_signature_answers_false_to_a_bad_header_and_never_raises(header: object) -> None:
    body = b'{"text":"x"}'
    assert delivery.verify_signature(SECRET, body, header, now_s=1_790_000_000) is False  # type: ignore[arg-type]


def test_verify_signature_takes_str_and_bytes_and_a_rotated_secret() -> None:
    body = '{"text":"caf\u00e9"}'
    header = delivery.sign(("new-secret", "old-secret"), body.encode(), 1_790_000_000)
    assert header.count("v1=") == 2
    for secret in ("new-secret", "old-secret", b"old-secret"):
        for form in (body, body.encode(), bytearray(body.encode())):
            assert delivery.verify_signature(secret, form, header, now_s=1_790_000_000), (secret, form)
            assert delivery.verify_signature(secret, form, header.encode(), now_s=1_790_000_000)
    assert not delivery.verify_signature("another-secret", body, header, now_s=1_790_000_000)
    assert not delivery.verify_signature("", body, header, now_s=1_790_000_000)
    assert not delivery.verify_signature("\ud800", body, header, now_s=1_790_000_000)  # not encodable
    assert not delivery.verify_signature("new-secret", "\ud800", header, now_s=1_790_000_000)


anything = st.one_of(st.none(), st.text(), st.binary(), st.integers(), st.floats(), st.lists(st.text(max_size=3)),
                     st.builds(lambda t, parts: f"t={t}," + ",".join(parts),
                               st.one_of(st.integers(), st.text(max_size=12)),
                               st.lists(st.text(max_size=70).map(lambda v: "v1=" + v), max_size=4)))


@settings(max_examples=400, deadline=None)
@given(secret=st.one_of(st.text(), st.binary(), st.none(), st.integers()), body=anything, header=anything,
       now_s=st.one_of(st.none(), st.integers(), st.floats()), tolerance_s=st.one_of(st.integers(), st.floats()))
def test_verify_signature_never_raises(secret: object, body: object, header: object, now_s: object,
                                       tolerance_s: object) -> None:
    verdict = delivery.verify_signature(secret, body, header, now_s=now_s,  # type: ignore[arg-type]
                                        tolerance_s=tolerance_s)  # type: ignore[arg-type]
    assert verdict is True or verdict is False


@settings(max_examples=200, deadline=None)
@given(secret=st.text(min_size=1), body=st.binary(), signed_at=st.integers(0, 10**11), skew=st.integers(-600, 600),
       flip=st.integers(0, 10_000))
def test_a_signature_holds_inside_the_window_and_for_that_body_only(secret: str, body: bytes, signed_at: int,
                                                                   skew: int, flip: int) -> None:
    header = delivery.sign(secret, body, signed_at)
    inside = abs(skew) <= WINDOW_S
    assert delivery.verify_signature(secret, body, header, now_s=signed_at + skew) is inside
    if body:
        changed = bytearray(body)
        changed[flip % len(body)] ^= 0x01
        assert not delivery.verify_signature(secret, bytes(changed), header, now_s=signed_at)


# -- SMTP: the password only over TLS ----------------------------------------------------------------------------

def _email_settings(smtp: SmtpServer, extra: str = "") -> str:
    return (f'[email]\nhost = "{smtp.host}"\nport = {smtp.port}\nto = "security@cardpos.test"\ndigest_s = 0\n'
            f'username = "alerts"\npassword = "{SMTP_PASSWORD}"\n' + extra)


def _one_line_refusal(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_ledger_server_refuses_to_start_with_an_smtp_login_over_plaintext(tmp_path: Path,
                                                                          smtp_plaintext_login_server) -> None:
    server = make_ledger(tmp_path / "home")
    settings_file = server.ledger_dir / "alerts.toml"
    settings_file.write_text(_email_settings(smtp_plaintext_login_server), encoding="utf-8")
    try:
        done = run_ledger_cli(server.ledger_dir, server.env, "serve", "--port", str(free_port()), check=False,
                              timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the ledger server started with an SMTP login over plaintext")
    line = _one_line_refusal(done, str(settings_file), "allow_plaintext", "starttls")
    assert line.count(". ") == 0  # one sentence
    refused = run_ledger_cli(server.ledger_dir, server.env, "alerts", "deliver", check=False)
    _one_line_refusal(refused, "allow_plaintext")
    assert smtp_plaintext_login_server.logins == []


def test_smtp_login_over_plaintext_works_only_when_allowed_explicitly(alert_ledger: AlertLedger,
                                                                       smtp_plaintext_login_server) -> None:
    smtp = smtp_plaintext_login_server
    alert_ledger.write_config(_email_settings(smtp))
    with pytest.raises(ConfigError, match="allow_plaintext"):
        delivery.load_config(alert_ledger.ledger_dir)
    alert_ledger.write_config(_email_settings(smtp, "allow_plaintext = true\n"))
    _mail_one_alert(alert_ledger)
    assert "forged_burst" in smtp.wait_for(1)[0].get_content()
    assert smtp.logins == ["alerts"]


def test_smtp_login_over_starttls_with_a_private_ca(alert_ledger: AlertLedger, smtp_tls_server) -> None:
    smtp = smtp_tls_server
    alert_ledger.write_config(_email_settings(smtp, f'starttls = true\ncafile = "{smtp.cafile}"\n'))
    _mail_one_alert(alert_ledger)
    assert "forged_burst" in smtp.wait_for(1)[0].get_content()
    assert smtp.logins == ["alerts"]


def test_smtp_login_over_implicit_tls_with_a_private_ca(alert_ledger: AlertLedger, smtp_implicit_tls_server) -> None:
    smtp = smtp_implicit_tls_server
    alert_ledger.write_config(_email_settings(smtp, f'implicit_tls = true\ncafile = "{smtp.cafile}"\n'))
    _mail_one_alert(alert_ledger)
    assert "forged_burst" in smtp.wait_for(1)[0].get_content()
    assert smtp.logins == ["alerts"]


def test_starttls_to_a_server_that_does_not_offer_it_never_sends_the_password(alert_ledger: AlertLedger,
                                                                               smtp_plaintext_login_server) -> None:
    """An attacker who strips STARTTLS from the server's answer gets a failed delivery (retried), no password."""
    smtp = smtp_plaintext_login_server
    alert_ledger.write_config(_email_settings(smtp, "starttls = true\n"))
    report = _mail_one_alert(alert_ledger, expect_sent=False)
    assert (report.mails, report.failed) == (0, 1)
    assert smtp.logins == [] and smtp.messages == []


def test_smtp_server_certificate_is_checked(alert_ledger: AlertLedger, smtp_tls_server) -> None:
    """Without the private CA the self-signed certificate is not trusted: nothing is sent, no password."""
    smtp = smtp_tls_server
    alert_ledger.write_config(_email_settings(smtp, "starttls = true\n"))
    report = _mail_one_alert(alert_ledger, expect_sent=False)
    assert (report.mails, report.failed) == (0, 1)
    assert smtp.logins == [] and smtp.messages == []


def _mail_one_alert(ledger: AlertLedger, *, expect_sent: bool = True) -> delivery.DeliveryReport:
    from ledger import events

    alerts.install(ledger.ledger_dir, start_worker=False)
    chain = Chain("T-1")
    events.publish(chain.batch([chain.add("card_reject", reject_payload("bad_signature"), ledger.clock.now + i)
                                for i in range(5)]))
    report = alerts.deliver_pending(ledger.clock.now)
    if expect_sent:
        assert (report.mails, report.failed) == (1, 0), report
    return report


# -- webhooks: never in clear to another machine ----------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://hooks.example.com/cardpos", "http://10.0.0.7/hook",
                                 "http://[2001:db8::1]/hook", "http://localhost.example.com/hook"])
def test_plain_http_webhook_to_another_machine_is_refused_at_load(url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        delivery.parse_config({"webhook": {"url": url, "secret": SECRET}}, "alerts.toml")
    message = str(refused.value)
    assert "https://" in message and "allow_http" in message and "\n" not in message
    allowed = delivery.parse_config({"webhook": {"url": url, "secret": SECRET, "allow_http": True}})
    assert allowed.webhook is not None and allowed.webhook.url == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://127.9.9.9/hook", "http://localhost/hook",
                                 "http://[::1]:9000/hook", "https://hooks.example.com/cardpos"])
def test_https_anywhere_and_plain_http_to_loopback_are_accepted(url: str) -> None:
    config = delivery.parse_config({"webhook": {"url": url, "secret": SECRET}})
    assert config.webhook is not None and config.webhook.url == url


# -- settings that say what they mean ---------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "name"), [
    ({"webhook": {"url": "https://h.example/x", "secert": "k"}}, "webhook.secert"),
    ({"email": {"host": "h", "to": "a@b.test", "startls": True}}, "email.startls"),
    ({"email": {"host": "h", "to": "a@b.test", "allow_plain": True}}, "email.allow_plain"),
    ({"pol_s": 2}, "pol_s"),
    ({"webhooks": {"url": "https://h.example/x"}}, "webhooks"),
])
def test_unknown_setting_is_refused_by_name(data: dict[str, object], name: str) -> None:
    with pytest.raises(ConfigError) as refused:
        delivery.parse_config(data, "alerts.toml")  # type: ignore[arg-type]
    assert name in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize(("data", "word"), [
    ({"email": {"host": "h", "to": "a@b.test", "starttls": "yes"}}, "starttls"),
    ({"email": {"host": "h", "to": "a@b.test", "starttls": True, "implicit_tls": True}}, "implicit_tls"),
    ({"webhook": {"url": "https://h.example/x", "allow_http": "true"}}, "allow_http"),
    ({"webhook": "https://h.example/x"}, "webhook"),
    ({"webhook": {"url": "https://h.example/x", "secret": 12}}, "secret"),
])
def test_settings_of_the_wrong_type_are_refused(data: dict[str, object], word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        delivery.parse_config(data, "alerts.toml")  # type: ignore[arg-type]
