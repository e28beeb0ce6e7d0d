"""The gateway simulator's behaviour without its HTTP layer: requests decoded against a fixed schema (any JSON
is a reply or a refusal with a reason, never a crash), credentials, bounded memory, and its signature agreeing
with the ledger's verifier (two implementations of one documented scheme)."""

from __future__ import annotations

import base64

import pytest
from hwsim.smsgateway import MAX_TEXT, FaultState, Gateway, GatewaySettings, Refused, sign
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.sms import callbacks

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10)
request_objects = st.dictionaries(
    st.sampled_from(["to", "text", "sender", "reference", "from", "mode", "retry_after_s", "delay_s", "count",
                     "receipt", "other"]),
    st.one_of(json_values, st.sampled_from(["+8613800138000", "hello", "ok", "throttle", "failed", "CARDPOS"])),
    max_size=6)


def gateway(**overrides) -> Gateway:
    return Gateway(GatewaySettings(token="tok", **overrides))


@settings(max_examples=300, deadline=None)
@given(payload=st.one_of(json_values, request_objects))
def test_any_json_is_a_reply_or_a_reasoned_refusal(payload):
    sim = gateway()
    for action in (sim.send, sim.inject_inbound, sim.control):
        try:
            reply = action(payload)
        except Refused as refusal:
            assert 400 <= refusal.status < 600 and refusal.code and "\n" not in refusal.message
        else:
            assert reply.status in (200, 202)
        sim.fault = FaultState()  # a control that set slow or fail must not slow or fail the next round
    sim.close()


def test_credentials_bearer_and_basic():
    sim = Gateway(GatewaySettings(token="tok", basic=("ledger", "pa55")))
    basic = base64.b64encode(b"ledger:pa55").decode()
    assert sim.authorized("Bearer tok") and sim.authorized("bearer  tok ")
    assert sim.authorized(f"Basic {basic}")
    for header in (None, "", "Bearer", "Bearer tok2", "Bearer to", "Token tok", f"Basic {basic}x", "Basic ",
                   "Bearer tök", "Bearer \udcff", "Basic \x00"):
        assert not sim.authorized(header), header


@settings(max_examples=200, deadline=None)
@given(header=st.text(alphabet=st.characters(codec=None, categories=None), max_size=80))
def test_authorized_never_raises(header):
    assert Gateway(GatewaySettings(token="tok", basic=("u", "p"))).authorized(header) in (True, False)


def test_memory_is_bounded_and_references_go_with_their_messages():
    sim = gateway(keep=3)
    ids = [sim.send({"to": "+8613800138000", "text": f"m{i}", "reference": f"r{i}"}).body["id"] for i in range(5)]
    listed = sim.listing().body["messages"]
    assert [m["id"] for m in listed] == ids[2:]
    assert sim.send({"to": "+8613800138000", "text": "again", "reference": "r4"}).body == \
        {"id": ids[4], "status": "queued", "duplicate": True}
    assert sim.send({"to": "+8613800138000", "text": "again", "reference": "r0"}).status == 202  # forgotten


def test_limits_and_schema():
    sim = gateway()
    ok = {"to": "+8613800138000", "text": "x" * MAX_TEXT}
    assert sim.send(ok).status == 202
    for bad, code in [({**ok, "text": "x" * (MAX_TEXT + 1)}, "text_too_long"), ({**ok, "to": "12345"}, "bad_to"),
                      ({**ok, "to": "+1" + "2" * 15}, "bad_to"), ({**ok, "sender": "x" * 17}, "bad_sender"),
                      ({**ok, "reference": "has space"}, "bad_reference"), ({"to": "+8613800138000"}, "missing_field"),
                      ({**ok, "extra": 1}, "unknown_field"), ([ok], "bad_request")]:
        with pytest.raises(Refused) as refused:
            sim.send(bad)
        assert (refused.value.status, refused.value.code) == (400, code)


def test_fault_modes_answer_as_documented():
    sim = gateway()
    sim.control({"mode": "throttle", "retry_after_s": 9, "count": 2})
    for _ in range(2):
        with pytest.raises(Refused) as throttled:
            sim.send({"to": "+8613800138000", "text": "hi"})
        assert (throttled.value.status, throttled.value.headers) == (429, {"Retry-After": "9"})
    assert sim.send({"to": "+8613800138000", "text": "hi"}).status == 202
    sim.control({"mode": "fail"})
    with pytest.raises(Refused) as failed:
        sim.send({"to": "+8613800138000", "text": "hi"})
    assert failed.value.status == 500
    assert sim.control(None).body == {"mode": "fail", "retry_after_s": 9, "delay_s": 2.0, "count": None,
                                      "receipt": "delivered", "refused": 3}


@settings(max_examples=100, deadline=None)
@given(secrets=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=3),
       body=st.binary(max_size=200), t=st.integers(min_value=0, max_value=10**11))
def test_the_simulators_signature_is_what_the_ledger_verifies(secrets, body, t):
    header = sign(tuple(secrets), t, body)
    for secret in secrets:
        assert callbacks.verify(secret, body, header, now=t)
    assert header.startswith(f"t={t},v1=")
    if len(secrets) == 1:
        assert header == callbacks.sign(secrets[0], body, t)
