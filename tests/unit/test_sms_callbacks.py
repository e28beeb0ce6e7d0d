"""Signed SMS callbacks: the t=…,v1=… signature (a vector computed with openssl, tolerance, rotation, never
raising on any header) and the typed receipt and inbound records."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.sms.callbacks import (
    TOLERANCE_S,
    CallbackError,
    DeliveryReceipt,
    DeliveryStatus,
    InboundMessage,
    parse_callback,
    read_callback,
    sign,
    verify,
)

# docs/sms-gateway.md: printf '%s' "$T.$BODY" | openssl dgst -sha256 -hmac "$SECRET"
VECTOR_SECRET = "whsec-doc-example"
VECTOR_T = 1_796_000_000
VECTOR_BODY = (b'{"at":1796000000,"error":null,"id":"sms-000001","reference":"greet-42","status":"delivered",'
               b'"to":"+8613800138000","type":"receipt"}')
VECTOR_HEX = "b21058e6b42bb38c7aa9f7a10aa5931848559f6d69c2dd593dc1dbdde66b37e3"
VECTOR_HEADER = f"t={VECTOR_T},v1={VECTOR_HEX}"


def test_the_documented_vector_signs_and_verifies():
    assert sign(VECTOR_SECRET, VECTOR_BODY, VECTOR_T) == VECTOR_HEADER
    assert verify(VECTOR_SECRET, VECTOR_BODY, VECTOR_HEADER, now=VECTOR_T)
    assert read_callback(VECTOR_SECRET, VECTOR_BODY, VECTOR_HEADER, now=VECTOR_T) == DeliveryReceipt(
        message_id="sms-000001", reference="greet-42", to="+8613800138000", status=DeliveryStatus.DELIVERED,
        at=1_796_000_000, error="")


def test_the_window_is_300_seconds_either_way():
    assert TOLERANCE_S == 300
    for offset, ok in [(-301, False), (-300, True), (0, True), (300, True), (301, False)]:
        assert verify(VECTOR_SECRET, VECTOR_BODY, VECTOR_HEADER, now=VECTOR_T + offset) is ok, offset
    assert verify(VECTOR_SECRET, VECTOR_BODY, VECTOR_HEADER, now=VECTOR_T + 1000, tolerance_s=1000)
    assert not verify(VECTOR_SECRET, VECTOR_BODY, VECTOR_HEADER, now=float("nan"))
    # a negative window is no window: only the exact second passes
    assert verify(VECTOR_SECRET, VECTOR_BODY, VECTOR_HEADER, now=VECTOR_T, tolerance_s=-5)
    assert not verify(VECTOR_SECRET, VECTOR_BODY, VECTOR_HEADER, now=VECTOR_T + 1, tolerance_s=-5)


@pytest.mark.parametrize("header", [
    "",
    f"v1={VECTOR_HEX}",                                      # no timestamp
    f"t={VECTOR_T}",                                         # no signature
    f"t={VECTOR_T},t={VECTOR_T},v1={VECTOR_HEX}",            # two timestamps
    f"t={VECTOR_T}.0,v1={VECTOR_HEX}",                       # not a whole number
    f"t=١٧٩٦٠٠٠٠٠٠,v1={VECTOR_HEX}",                         # Arabic-Indic digits are digits, not ASCII
    f"t={VECTOR_T},v1={VECTOR_HEX.upper()}",                 # the hex is lower case
    f"t={VECTOR_T},v1={VECTOR_HEX[:-1]}",                    # short
    f"t={VECTOR_T},v0={VECTOR_HEX}",                         # another scheme
    f"t={VECTOR_T},v1={VECTOR_HEX[:-1]}é",                   # non-ASCII
    f"t={VECTOR_T},v1={VECTOR_HEX}," + "x" * 2000,           # oversized
    f"sha256={VECTOR_HEX}",                                  # the alert webhook's scheme, not this one
])
def test_malformed_headers_are_false(header):
    assert verify(VECTOR_SECRET, VECTOR_BODY, header, now=VECTOR_T) is False


def test_wrong_secret_tampered_body_and_empty_secret_are_false():
    assert not verify("whsec-other", VECTOR_BODY, VECTOR_HEADER, now=VECTOR_T)
    assert not verify(VECTOR_SECRET, VECTOR_BODY.replace(b"delivered", b"failed"), VECTOR_HEADER, now=VECTOR_T)
    assert not verify(VECTOR_SECRET, VECTOR_BODY + b" ", VECTOR_HEADER, now=VECTOR_T)
    assert not verify("", VECTOR_BODY, sign("", VECTOR_BODY, VECTOR_T), now=VECTOR_T)  # unsigned never passes
    assert not verify(VECTOR_SECRET, VECTOR_BODY, None, now=VECTOR_T)


def test_any_one_of_several_signatures_is_enough_while_a_secret_rotates():
    old = sign("whsec-old", VECTOR_BODY, VECTOR_T).split(",")[1]
    header = f"t={VECTOR_T},{old},v1={VECTOR_HEX}"
    assert verify(VECTOR_SECRET, VECTOR_BODY, header, now=VECTOR_T)
    assert verify("whsec-old", VECTOR_BODY, header, now=VECTOR_T)
    assert not verify("whsec-third", VECTOR_BODY, header, now=VECTOR_T)
    assert verify(VECTOR_SECRET, VECTOR_BODY, f" t={VECTOR_T} , v1={VECTOR_HEX} ", now=VECTOR_T)  # spaces


any_text = st.text(alphabet=st.characters(codec=None, categories=None), max_size=200)
header_like = st.builds(lambda t, rest: f"t={t},v1={rest}", st.one_of(st.integers(), any_text), any_text)


@settings(max_examples=500, deadline=None)
@given(secret=any_text, body=st.binary(max_size=200), header=st.one_of(any_text, header_like),
       now=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)))
def test_verify_never_raises_on_any_header(secret, body, header, now):
    assert verify(secret, body, header, now=now) in (True, False)


@settings(max_examples=200, deadline=None)
@given(secret=st.text(min_size=1, max_size=40), body=st.binary(max_size=200),
       t=st.integers(min_value=0, max_value=10**11), flip=st.integers(min_value=0))
def test_a_signature_verifies_and_any_changed_byte_does_not(secret, body, t, flip):
    header = sign(secret, body, t)
    assert verify(secret, body, header, now=t)
    if body:
        i = flip % len(body)
        changed = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1:]
        assert not verify(secret, changed, header, now=t)


# -- records ------------------------------------------------------------------------------------------------

def body(**fields) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode("utf-8")


def test_an_inbound_reply_is_a_typed_record():
    message = parse_callback(body(type="inbound", id="in-000001", **{"from": "+8613800138000"}, text="退订",
                                  at=1_796_000_000))
    assert message == InboundMessage(message_id="in-000001", sender="+8613800138000", text="退订",
                                     at=1_796_000_000)
    assert isinstance(message, InboundMessage) and message.opt_out and not message.balance_query


@pytest.mark.parametrize(("raw", "words"), [
    (b"\xff\xfe", "UTF-8 JSON"),
    (b"[" * 100_000, "over"),
    (b"[" * 50_000, "UTF-8 JSON"),
    (b"[1, 2]", "JSON object"),
    (body(type="greeting"), "type"),
    (body(type="receipt", id="m1", status="lost", at=1), "status"),
    (body(type="receipt", status="delivered", at=1), "id"),
    (body(type="receipt", id="m1", status="delivered", at="yesterday"), "unix seconds"),
    (body(type="receipt", id="m1", status="delivered", at=True), "unix seconds"),
    (body(type="inbound", id="in-1", text="hi", at=1), "from"),
    (body(type="inbound", id="in-1", **{"from": "+1555"}, text="x" * 1601, at=1), "text"),
])
def test_a_body_outside_the_schema_is_one_clear_error(raw, words):
    with pytest.raises(CallbackError, match=words) as caught:
        parse_callback(raw)
    assert "\n" not in str(caught.value)


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.binary(max_size=300), any_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
                     st.dictionaries(st.sampled_from(["type", "id", "from", "text", "at", "status", "to",
                                                      "reference", "error"]),
                                     st.one_of(st.none(), st.integers(), any_text, st.sampled_from(
                                         ["receipt", "inbound", "delivered", "failed"])))
                     .map(lambda d: json.dumps(d).encode())))
def test_parse_raises_only_callback_errors(raw):
    try:
        record = parse_callback(raw)
    except CallbackError:
        return
    assert isinstance(record, DeliveryReceipt | InboundMessage)
