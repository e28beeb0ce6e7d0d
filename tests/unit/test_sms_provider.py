"""The SMS provider's pure parts: what each HTTP answer means, Retry-After, the field mapping, the settings table;
and that ``send`` never raises, whatever it is given."""

from __future__ import annotations

import calendar
import email.utils

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit.errors import ConfigError
from ledger.sms.config import HttpSmsConfig, parse_sms_config
from ledger.sms.mapping import BodyFormat, FieldMapping, build_payload, extract_message_id, parse_retry_after
from ledger.sms.provider import HttpSmsProvider, SendOutcome, SendResult, result_from_answer
from tests.conftest import free_port

NOW = 1_796_000_000.0
CONFIG = HttpSmsConfig(url="http://127.0.0.1:1/messages", token="t")


def http_date(at: float) -> str:
    return email.utils.formatdate(at, usegmt=True)


@pytest.mark.parametrize(("status", "headers", "body", "expected"), [
    (202, {}, b'{"id": "sms-000001", "status": "queued"}', SendResult.accepted("sms-000001")),
    (200, {}, b'{"id": 42}', SendResult.accepted("42")),
    (200, {}, b"ok", SendResult.failed("the SMS gateway answered HTTP 200 with a body that is not JSON")),
    (200, {}, b'{"id": ""}', SendResult.failed("the SMS gateway answered HTTP 200 without a message id in 'id'")),
    (200, {}, b'{"id": true}', SendResult.failed("the SMS gateway answered HTTP 200 without a message id in 'id'")),
    (200, {}, b"[" * 50_000, SendResult.failed("the SMS gateway answered HTTP 200 with a body that is not JSON")),
    (429, {"Retry-After": "7"}, b"", SendResult.retry_after(7, "the SMS gateway asked us to wait (HTTP 429)")),
    (429, {}, b'{"message": "slow down"}',
     SendResult.retry_after(60, "the SMS gateway asked us to wait (HTTP 429): slow down")),
    (429, {"Retry-After": "soon"}, b"", SendResult.retry_after(60, "the SMS gateway asked us to wait (HTTP 429)")),
    (429, {"Retry-After": "999999"}, b"", SendResult.retry_after(3600, "the SMS gateway asked us to wait (HTTP 429)")),
    (429, {"Retry-After": http_date(NOW + 30)}, b"",
     SendResult.retry_after(30, "the SMS gateway asked us to wait (HTTP 429)")),
    (503, {"Retry-After": "5"}, b"", SendResult.retry_after(5, "the SMS gateway asked us to wait (HTTP 503)")),
    (503, {}, b"", SendResult.failed("the SMS gateway failed (HTTP 503)")),
    (500, {}, b'{"error": "internal", "message": "db\\ndown"}',
     SendResult.failed("the SMS gateway failed (HTTP 500): db down")),
    (400, {}, b'{"error": "bad_to", "message": "to must be a phone number"}',
     SendResult.failed("the SMS gateway refused the message (HTTP 400): to must be a phone number", permanent=True)),
    (413, {}, b"", SendResult.failed("the SMS gateway refused the message (HTTP 413)", permanent=True)),
    (401, {}, b"", SendResult.failed("the SMS gateway refused our credentials (HTTP 401)")),
    (403, {}, b"<html>", SendResult.failed("the SMS gateway refused our credentials (HTTP 403)")),
    (408, {}, b"", SendResult.failed("the SMS gateway could not take the message now (HTTP 408)")),
    (301, {"Location": "https://elsewhere"}, b"", SendResult.failed(
        "the SMS gateway redirected the request (HTTP 301); configure the URL it redirects to", permanent=True)),
])
def test_every_answer_is_a_result(status, headers, body, expected):
    assert result_from_answer(status, headers, body, CONFIG, NOW) == expected


def test_the_message_id_can_sit_deeper_in_the_answer():
    config = HttpSmsConfig(url="http://x/", fields=FieldMapping(message_id="messages.0.message-id"))
    body = b'{"message-count": "1", "messages": [{"message-id": "0A000000123", "status": "0"}]}'
    assert result_from_answer(200, {}, body, config, NOW) == SendResult.accepted("0A000000123")


@pytest.mark.parametrize(("document", "path", "expected"), [
    ({"id": "a"}, "id", "a"),
    ({"id": 7}, "id", "7"),
    ({"id": False}, "id", None),
    ({"id": 1.5}, "id", None),
    ({"id": "x" * 129}, "id", None),
    ({"id": "a\nb"}, "id", None),
    ({"data": {"sid": "S1"}}, "data.sid", "S1"),
    ({"messages": [{"id": "m"}]}, "messages.0.id", "m"),
    ({"messages": []}, "messages.0.id", None),
    ({"messages": [{"id": "m"}]}, "messages.x.id", None),
    ({"messages": [{"id": "m"}]}, "messages.٠.id", None),
    ([1, 2], "id", None),
    ("id", "id", None),
])
def test_extract_message_id(document, path, expected):
    assert extract_message_id(document, path) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("", None), ("7", 7), (" 12 ", 12), ("0", 0), ("-1", None), ("1.5", None), ("soon", None),
    ("99999999999", None), ("١٢", None), (http_date(NOW + 90), 90), (http_date(NOW - 90), 0),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0),
    ("Wed, 21 Oct 2099 07:28:00 -0000", calendar.timegm((2099, 10, 21, 7, 28, 0)) - int(NOW)),
])
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, NOW) == expected


def test_build_payload_follows_the_mapping():
    default = build_payload(FieldMapping(), "+8613800138000", "hi", "CARDPOS", "r-1")
    assert default == {"to": "+8613800138000", "text": "hi", "sender": "CARDPOS", "reference": "r-1"}
    mapped = FieldMapping(to="To", text="Body", sender="", reference="", message_id="sid")
    assert build_payload(mapped, "+1555", "hi", "CARDPOS", "r-1", {"MessagingServiceSid": "MG1"}) == \
        {"MessagingServiceSid": "MG1", "To": "+1555", "Body": "hi"}
    assert build_payload(FieldMapping(), "+1555", "hi", "", "") == {"to": "+1555", "text": "hi"}


# -- settings -----------------------------------------------------------------------------------------------

def test_a_full_settings_table():
    config = parse_sms_config({
        "url": "https://sms.example.com/v1/messages", "username": "AC1", "password": "pw", "sender": "CARDPOS",
        "format": "form", "timeout_s": 2.5, "default_retry_s": 30, "max_retry_s": 600, "callback_secret": "whsec",
        "callback_tolerance_s": 120, "fields": {"to": "To", "text": "Body", "sender": "From", "reference": "",
                                                "message_id": "sid"},
        "extra": {"StatusCallback": "https://ledger.example.com/sms/callback"}})
    assert config.fields == FieldMapping(to="To", text="Body", sender="From", reference="", message_id="sid")
    assert (config.body_format, config.timeout_s, config.default_retry_s, config.max_retry_s) == \
        (BodyFormat.FORM, 2.5, 30, 600)
    assert config.extra == {"StatusCallback": "https://ledger.example.com/sms/callback"}
    assert "pw" not in repr(config) and "whsec" not in repr(config)
    assert parse_sms_config({"url": "http://127.0.0.1:8025/messages", "token": "t"}).fields == FieldMapping()


@pytest.mark.parametrize(("table", "words"), [
    ({}, "url"),
    ({"url": "ftp://x/"}, "url"),
    ({"url": "http://[::1/"}, "url"),
    ({"url": "http://h:99999/"}, "url"),
    ({"url": "http://h/", "token": "a b"}, "token"),
    ({"url": "http://h/", "token": "tökén"}, "ASCII"),
    ({"url": "http://h/", "username": "u"}, "password"),
    ({"url": "http://h/", "username": "a:b", "password": "p"}, "username"),
    ({"url": "http://h/", "token": "t", "username": "u", "password": "p"}, "not both"),
    ({"url": "http://h/", "format": "xml"}, "format"),
    ({"url": "http://h/", "retries": 3}, "unknown key 'retries'"),
    ({"url": "http://h/", "fields": {"phone": "x"}}, "fields.phone"),
    ({"url": "http://h/", "fields": {"to": ""}}, "fields.to"),
    ({"url": "http://h/", "fields": {"to": "x", "text": "x"}}, "same name"),
    ({"url": "http://h/", "fields": "to"}, "fields"),
    ({"url": "http://h/", "extra": {"to": "x"}}, "extra field 'to'"),
    ({"url": "http://h/", "extra": {"a": 1}}, "extra"),
    ({"url": "http://h/", "timeout_s": 0}, "timeout_s"),
    ({"url": "http://h/", "default_retry_s": 1.5}, "default_retry_s"),
    ({"url": "http://h/", "max_retry_s": True}, "max_retry_s"),
    ("url = x", "table"),
])
def test_bad_settings_are_one_config_error(table, words):
    with pytest.raises(ConfigError, match=words) as caught:
        parse_sms_config(table)
    assert "\n" not in str(caught.value)


# -- send never raises ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("to", "text", "reference", "words"), [
    ("", "hi", "r", "recipient"), ("+1" * 20, "hi", "r", "recipient"), ("+1555\n", "hi", "r", "recipient"),
    ("+1555", " ", "r", "empty"), ("+1555", "x" * 1601, "r", "over 1600"), ("+1555", "hi", "r" * 65, "reference"),
    ("+1555", "hi\ud800", "r", "not valid text"),
])
def test_a_message_no_gateway_takes_is_refused_before_the_network(to, text, reference, words):
    result = HttpSmsProvider(CONFIG).send(to, text, reference)  # port 1: any attempt would be refused
    assert (result.outcome, result.permanent) == (SendOutcome.FAILED, True)
    assert words in result.reason


@settings(max_examples=60, deadline=None)
@given(to=st.text(max_size=40), text=st.text(alphabet=st.characters(codec=None, categories=None), max_size=50),
       reference=st.text(max_size=70), form=st.booleans())
def test_send_never_raises(to, text, reference, form):
    config = HttpSmsConfig(url=f"http://127.0.0.1:{free_port()}/messages", token="t", timeout_s=1,
                           body_format=BodyFormat.FORM if form else BodyFormat.JSON)
    result = HttpSmsProvider(config).send(to, text, reference)
    assert result.outcome is SendOutcome.FAILED
    assert result.reason and "\n" not in result.reason
