"""The ledger's SMS provider against the real gateway simulator (``cardpos sim-sms`` as a process on 127.0.0.1),
with delivery receipts and inbound replies arriving signed at a real HTTP receiver."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from urllib.parse import parse_qs

import pytest
import requests

from ledger.sms.callbacks import (
    SIGNATURE_HEADER,
    CallbackError,
    DeliveryReceipt,
    DeliveryStatus,
    InboundMessage,
    read_callback,
    verify,
)
from ledger.sms.config import HttpSmsConfig
from ledger.sms.mapping import BodyFormat, FieldMapping
from ledger.sms.provider import HttpSmsProvider, SendOutcome, SendResult
from tests.conftest import CARDPOS, REPO_ROOT, free_port
from tests.fixtures.smsgateway import SMS_SECRET

MEMBER = "+8613800138000"


def wait_until(predicate, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s")


def signature(request) -> str:
    return {k.lower(): v for k, v in request.headers.items()}[SIGNATURE_HEADER.lower()]


# -- sending ---------------------------------------------------------------------------------------------------

def test_a_message_is_accepted_listed_delivered_and_recorded(sms_gateway):
    gateway = sms_gateway()
    result = gateway.provider().send(MEMBER, "Happy birthday! 生日快乐 拒收请回复R", "greet-42")

    assert result.outcome is SendOutcome.ACCEPTED and result.ok
    listed = wait_until(lambda: [m for m in gateway.messages() if m["status"] == "delivered"])
    assert len(listed) == 1
    message = listed[0]
    assert (message["id"], message["to"], message["text"], message["sender"], message["reference"]) == \
        (result.message_id, MEMBER, "Happy birthday! 生日快乐 拒收请回复R", "CARDPOS", "greet-42")
    assert message["callback"] == "none"  # no callback URL: the receipt is only listed
    assert [(r["direction"], r["id"], r["text"]) for r in gateway.recorded()] == \
        [("out", result.message_id, "Happy birthday! 生日快乐 拒收请回复R")]


def test_throttle_is_retry_after_with_the_gateways_seconds(sms_gateway):
    gateway = sms_gateway()
    provider = gateway.provider()
    assert gateway.control(mode="throttle", retry_after_s=7)["mode"] == "throttle"

    result = provider.send(MEMBER, "promo", "p-1")

    assert result.outcome is SendOutcome.RETRY_AFTER
    assert result.retry_after_s == 7
    assert "429" in result.reason
    assert gateway.messages() == []
    gateway.control(mode="ok")
    assert provider.send(MEMBER, "promo", "p-1").ok
    assert len(gateway.messages()) == 1


def test_fault_flags_throttle_only_the_first_sends(sms_gateway):
    gateway = sms_gateway("--mode", "throttle", "--retry-after", "3", "--fault-count", "2")
    provider = gateway.provider()

    results = [provider.send(MEMBER, f"hello {i}", f"r-{i}") for i in range(3)]

    assert [(r.outcome, r.retry_after_s) for r in results] == \
        [(SendOutcome.RETRY_AFTER, 3), (SendOutcome.RETRY_AFTER, 3), (SendOutcome.ACCEPTED, 0)]
    state = gateway.control()
    assert (state["mode"], state["refused"]) == ("ok", 2)


def test_fail_mode_is_a_failed_result_worth_retrying(sms_gateway):
    gateway = sms_gateway()
    gateway.control(mode="fail")

    result = gateway.provider().send(MEMBER, "alert", "a-1")

    assert result.outcome is SendOutcome.FAILED
    assert not result.permanent
    assert "HTTP 500" in result.reason
    assert gateway.messages() == []


def test_a_bad_number_is_a_permanent_failure_with_the_gateways_reason(sms_gateway):
    gateway = sms_gateway()

    result = gateway.provider().send("call me maybe", "hi", "x-1")

    assert (result.outcome, result.permanent) == (SendOutcome.FAILED, True)
    assert "HTTP 400" in result.reason and "phone number" in result.reason


def test_wrong_credentials_are_refused_and_not_a_permanent_failure(sms_gateway):
    gateway = sms_gateway()

    result = gateway.provider(token="not-the-token").send(MEMBER, "hi", "x-2")

    assert (result.outcome, result.permanent) == (SendOutcome.FAILED, False)
    assert "credentials" in result.reason and "401" in result.reason
    bare = requests.get(gateway.url + "/messages", timeout=5)
    assert bare.status_code == 401 and bare.headers["WWW-Authenticate"].startswith("Bearer")
    assert gateway.messages() == []


def test_basic_auth_from_the_command_line(sms_gateway):
    gateway = sms_gateway("--basic", "ledger:pa55 word")

    assert gateway.provider(token="", username="ledger", password="pa55 word").send(MEMBER, "hi", "b-1").ok
    assert gateway.provider(token="", username="ledger", password="wrong").send(MEMBER, "hi", "b-2").outcome \
        is SendOutcome.FAILED


def test_a_slow_answer_times_out_and_resending_the_reference_sends_one_sms(sms_gateway):
    gateway = sms_gateway()
    gateway.control(mode="slow", delay_s=1.5, count=1)
    provider = gateway.provider(timeout_s=0.5)

    first = provider.send(MEMBER, "your code is 123456", "otp-9")
    assert first.outcome is SendOutcome.FAILED and "did not answer" in first.reason
    again = wait_until(lambda: gateway.messages())  # the gateway took it after all
    second = provider.send(MEMBER, "your code is 123456", "otp-9")

    assert second.ok and second.message_id == again[0]["id"]
    assert len(gateway.messages()) == 1


def test_a_gateway_that_is_not_there_is_a_failed_result():
    port = free_port()
    provider = HttpSmsProvider(HttpSmsConfig(url=f"http://127.0.0.1:{port}/messages", token="t", timeout_s=2))

    result = provider.send(MEMBER, "hi", "r")

    assert result.outcome is SendOutcome.FAILED and not result.permanent
    assert "could not be reached" in result.reason and "refused" in result.reason.lower()


def test_a_gateway_that_accepts_but_never_answers_times_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/messages"
        started = time.monotonic()
        result = HttpSmsProvider(HttpSmsConfig(url=url, token="t", timeout_s=0.5)).send(MEMBER, "hi", "r")
        assert time.monotonic() - started < 3

    assert result.outcome is SendOutcome.FAILED and "did not answer within 0.5 s" in result.reason


def test_form_fields_and_extra_fields_go_out_as_mapped(webhook_receiver):
    """A gateway that wants form fields To/Body/From and an account id: configuration only. The receiver
    answers 200 with a body that is not JSON, which is a failed result rather than an exception."""
    receiver = webhook_receiver()
    config = HttpSmsConfig(url=receiver.url, username="AC1", password="secret", sender="+15550001",
                           fields=FieldMapping(to="To", text="Body", sender="From", reference="", message_id="sid"),
                           body_format=BodyFormat.FORM, extra={"Account": "AC1"})

    result = HttpSmsProvider(config).send(MEMBER, "余额 12.50", "ref-not-sent")

    assert result == SendResult.failed("the SMS gateway answered HTTP 200 with a body that is not JSON")
    request = receiver.requests[0]
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert headers["authorization"].startswith("Basic ")
    assert parse_qs(request.body.decode()) == {"To": [MEMBER], "Body": ["余额 12.50"], "From": ["+15550001"],
                                               "Account": ["AC1"]}


# -- callbacks -------------------------------------------------------------------------------------------------

def test_a_delivery_receipt_arrives_signed_at_the_callback(sms_gateway, webhook_receiver):
    receiver = webhook_receiver()
    gateway = sms_gateway(callback=receiver.url)

    sent = gateway.provider().send(MEMBER, "thanks for visiting", "visit-7")
    request = receiver.wait_for(1)[0]

    header = signature(request)
    assert verify(SMS_SECRET, request.body, header)
    receipt = read_callback(SMS_SECRET, request.body, header)
    assert receipt == DeliveryReceipt(message_id=sent.message_id, reference="visit-7", to=MEMBER,
                                      status=DeliveryStatus.DELIVERED, at=receipt.at, error="")
    assert abs(receipt.at - time.time()) < 60
    assert wait_until(lambda: gateway.messages()[0]["callback"] == "sent")

    # the same callback tampered, signed with another secret, or replayed outside the window is refused
    t = int(header.split(",")[0].removeprefix("t="))
    assert not verify(SMS_SECRET, request.body.replace(b"delivered", b"failed\x20\x20\x20"), header, now=t)
    assert not verify("another-secret", request.body, header, now=t)
    assert verify(SMS_SECRET, request.body, header, now=t + 299)
    assert not verify(SMS_SECRET, request.body, header, now=t + 301)
    assert not verify(SMS_SECRET, request.body, header, now=t - 301)
    with pytest.raises(CallbackError, match="signature"):
        read_callback(SMS_SECRET, request.body, header, now=t + 3600)


def test_a_failed_delivery_is_reported_failed(sms_gateway, webhook_receiver):
    receiver = webhook_receiver()
    gateway = sms_gateway(callback=receiver.url)
    gateway.control(receipt="failed")

    sent = gateway.provider().send(MEMBER, "promo", "p-2")
    request = receiver.wait_for(1)[0]

    receipt = read_callback(SMS_SECRET, request.body, signature(request))
    assert isinstance(receipt, DeliveryReceipt)
    assert (receipt.message_id, receipt.status, receipt.error) == (sent.message_id, DeliveryStatus.FAILED,
                                                                   "undeliverable")


def test_inbound_stop_and_balance_replies_are_forwarded_signed(sms_gateway, webhook_receiver):
    receiver = webhook_receiver()
    gateway = sms_gateway(callback=receiver.url)

    first = gateway.inject(MEMBER, "STOP")
    second = gateway.inject("+8613900139000", " 余额 ")
    requests_seen = receiver.wait_for(2)

    messages = [read_callback(SMS_SECRET, r.body, signature(r)) for r in requests_seen]
    assert all(isinstance(m, InboundMessage) for m in messages)
    by_id = {m.message_id: m for m in messages if isinstance(m, InboundMessage)}
    stop, balance = by_id[first["id"]], by_id[second["id"]]
    assert (stop.sender, stop.text, stop.opt_out, stop.balance_query) == (MEMBER, "STOP", True, False)
    assert (balance.text, balance.opt_out, balance.balance_query) == (" 余额 ", False, True)
    assert json.loads(requests_seen[0].body)["type"] == "inbound"
    assert [m["text"] for m in gateway.inbound()] == ["STOP", " 余额 "]
    assert [r["direction"] for r in gateway.recorded()] == ["in", "in"]


def test_a_callback_receiver_that_fails_is_tried_again(sms_gateway, webhook_receiver):
    receiver = webhook_receiver(fail_first=2)
    gateway = sms_gateway(callback=receiver.url)

    gateway.inject(MEMBER, "unsubscribe")
    accepted = receiver.wait_for(1, timeout_s=10)

    assert len(receiver.requests) == 3
    assert verify(SMS_SECRET, accepted[0].body, signature(accepted[0]))
    assert wait_until(lambda: gateway.inbound()[0]["callback"] == "sent")


# -- the HTTP surface ------------------------------------------------------------------------------------------

def test_the_api_refuses_what_it_should_with_a_reason(sms_gateway):
    gateway = sms_gateway()
    auth = {"Authorization": f"Bearer {gateway.token}", "Content-Type": "application/json"}
    url = gateway.url

    too_big = requests.post(url + "/messages", data=b"x" * (64 * 1024 + 1), headers=auth, timeout=5)
    not_json = requests.post(url + "/messages", data=b"{nope", headers=auth, timeout=5)
    deep = requests.post(url + "/messages", data=b"[" * 60_000, headers=auth, timeout=5)
    unknown = gateway.api("POST", "/messages", {"to": MEMBER, "text": "hi", "priority": "high"})
    long_text = gateway.api("POST", "/messages", {"to": MEMBER, "text": "x" * 1601})
    bad_mode = gateway.api("POST", "/control", {"mode": "explode"})
    nowhere = gateway.api("GET", "/nowhere")
    wrong_method = gateway.api("DELETE", "/messages")

    assert [(r.status_code, r.json()["error"]) for r in (too_big, not_json, deep, unknown, long_text, bad_mode,
                                                          nowhere, wrong_method)] == [
        (413, "too_large"), (400, "bad_json"), (400, "bad_json"), (400, "unknown_field"), (400, "text_too_long"),
        (400, "bad_mode"), (404, "not_found"), (405, "method_not_allowed")]
    assert wrong_method.headers["Allow"] == "GET, POST"
    assert gateway.messages() == []  # and it still serves


def test_sigterm_and_sigint_stop_the_gateway_cleanly(sms_gateway):
    for sig in (signal.SIGTERM, signal.SIGINT):
        gateway = sms_gateway()
        assert gateway.provider().send(MEMBER, "bye", "z").ok

        assert gateway.terminate(sig) == 0
        assert gateway.output() == ["cardpos-sim-sms: stopped"]
        assert gateway.proc.stderr is not None


@pytest.mark.parametrize(("flags", "words"), [
    ([], ["credentials", "--token"]),
    (["--token", "t", "--callback", "http://127.0.0.1:9/hook"], ["--callback-secret"]),
    (["--token", "t", "--callback", "ftp://x", "--callback-secret", "s"], ["--callback", "http"]),
    (["--token", "t", "--port", "70000"], ["--port", "70000"]),
])
def test_bad_flags_are_one_line(clean_env, flags, words):
    result = subprocess.run([*CARDPOS, "sim-sms", *flags], env=clean_env, cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=30, check=False)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert all(word in result.stderr for word in words), result.stderr


def test_a_port_in_use_is_one_line(clean_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run([*CARDPOS, "sim-sms", "--token", "t", "--port", str(port)], env=clean_env,
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False)

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
