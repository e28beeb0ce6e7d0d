"""Member facts and consent history on a real SQLite ledger: the sign-up's ``record_facts``, consent as the latest
statement, withdrawals by phone, audit entries; and the one-click unsubscribe tokens and campaign settings."""

from __future__ import annotations

import inspect
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit.errors import ConfigError
from ledger import admin, member_facts
from ledger.campaigns import config, tables, unsubscribe
from ledger.errors import LedgerError
from ledger.sms import inbound
from ledger.sms.callbacks import CallbackError, sign
from ledger.sms.config import HttpSmsConfig
from tests.fixtures.alerts import AlertLedger

T0 = 1_790_000_000_000


@pytest.fixture
def facts_ledger(alert_ledger: AlertLedger) -> AlertLedger:
    tables.create_tables()
    return alert_ledger


def test_record_facts_has_the_signature_sign_up_calls() -> None:
    signature = inspect.signature(member_facts.record_facts)
    assert str(signature) == ("(member_id: 'str', *, birthday: 'str | None', language: 'str | None', "
                              "consents: 'dict[str, bool]', at_ms: 'int', source: 'str') -> 'None'")


def test_facts_and_consent_history(facts_ledger: AlertLedger) -> None:
    member = admin.add_member("王芳", phone="+86 138 0000 0001")
    assert not member_facts.has_consent(member, "sms")  # no statement: no consent
    member_facts.record_facts(member, birthday="1990-11-30", language="zh", consents={"sms": True, "mail": False},
                              at_ms=T0, source="till:T-1")
    member_facts.record_facts(member, birthday=None, language=None, consents={"sms": True}, at_ms=T0 + 1,
                              source="till:T-2")  # says the same again: no new statement
    facts = member_facts.facts_of(member)
    assert (facts.birthday, facts.language, facts.consent) == ("1990-11-30", "zh", {"sms": True, "mail": False})
    assert [(s.channel, s.granted, s.source) for s in facts.history] == [("mail", False, "till:T-1"),
                                                                         ("sms", True, "till:T-1")]
    assert member_facts.set_consent(member, "sms", False, at_ms=T0 + 5, source="console", actor="sam")
    # an older grant arriving late (an offline till syncing) does not undo a later withdrawal
    member_facts.record_facts(member, birthday=None, language=None, consents={"sms": True}, at_ms=T0 + 2,
                              source="till:T-3")
    assert not member_facts.has_consent(member, "sms")
    assert member_facts.consenting([member], "sms") == set()
    actions = [r["action"] for r in admin.audit_log(20) if r["subject"] == member]
    assert actions.count("member_facts") == 3 and "consent_withdraw" in actions


def test_a_withdrawal_and_a_grant_at_the_same_instant_leave_no_consent(facts_ledger: AlertLedger) -> None:
    member = admin.add_member("Same Instant")
    member_facts.record_facts(member, birthday=None, language=None, consents={"mail": True}, at_ms=T0, source="a")
    member_facts.set_consent(member, "mail", False, at_ms=T0, source="b", actor="x")
    assert not member_facts.has_consent(member, "mail")
    assert member_facts.consenting([member], "mail") == set()


def test_a_refusal_by_phone_reaches_every_member_with_that_phone(facts_ledger: AlertLedger) -> None:
    one = admin.add_member("One", phone="+8613800000001")
    two = admin.add_member("Two", phone="138 0000 0001")  # without the country code: another number
    for member in (one, two):
        member_facts.record_facts(member, birthday=None, language=None, consents={"sms": True}, at_ms=T0,
                                  source="till")
    assert member_facts.withdraw_sms_by_phone("+86 138-0000-0001", at_ms=T0 + 1, source="sms_reply") == [one]
    assert not member_facts.has_consent(one, "sms") and member_facts.has_consent(two, "sms")
    assert member_facts.withdraw_sms_by_phone("+8600000", at_ms=T0 + 1, source="sms_reply") == []


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"birthday": "1990-02-30"}, "YYYY-MM-DD"), ({"birthday": "30/11/1990"}, "YYYY-MM-DD"),
    ({"language": "fr"}, "language"), ({"time_zone": "Mars/Olympus"}, "time zone")])
def test_bad_facts_are_one_sentence(facts_ledger: AlertLedger, kwargs: dict[str, str], words: str) -> None:
    member = admin.add_member("Bad Facts")
    with pytest.raises(LedgerError, match=words):
        member_facts.set_facts(member, at_ms=T0, actor="x", **kwargs)
    with pytest.raises(LedgerError, match="channel"):
        member_facts.set_consent(member, "fax", True, at_ms=T0, source="x", actor="x")


def test_stop_callbacks_are_verified_once_and_withdraw_sms_consent(facts_ledger: AlertLedger) -> None:
    member = admin.add_member("Stopper", phone="+8613800000009")
    member_facts.record_facts(member, birthday=None, language=None, consents={"sms": True}, at_ms=T0, source="t")
    gateway = HttpSmsConfig(url="http://127.0.0.1:9/messages", callback_secret="whsec-1")
    body = json.dumps({"type": "inbound", "id": "in-000001", "from": "+8613800000009", "text": " Stop! ",
                       "at": T0 // 1000}).encode()
    now = T0 + 10_000
    with pytest.raises(CallbackError):
        inbound.handle(gateway, body, sign("wrong-secret", body, now // 1000), now)
    assert member_facts.has_consent(member, "sms")
    assert inbound.handle(gateway, body, sign("whsec-1", body, now // 1000), now) == "opted out 1 member(s)"
    assert inbound.handle(gateway, body, sign("whsec-1", body, now // 1000), now) == "duplicate"
    assert not member_facts.has_consent(member, "sms")


@settings(max_examples=60, deadline=None)
@given(st.from_regex(r"[!-~]{1,32}", fullmatch=True), st.sampled_from(["sms", "mail"]),
       st.integers(0, 80), st.sampled_from("0123456789abcdef"))
def test_unsubscribe_tokens_round_trip_and_any_change_is_refused(member: str, channel: str, position: int,
                                                                 replacement: str) -> None:
    key = bytes(range(32))
    what = unsubscribe.Unsubscribe(member, channel, "cmp-1")
    token = unsubscribe.make_token(key, what)
    assert unsubscribe.read_token(key, token) == what
    assert unsubscribe.read_token(bytes(32), token) is None
    spot = position % len(token)
    changed = token[:spot] + replacement + token[spot + 1:]
    if changed != token:  # the MAC covers the encoded text, so any change at all is refused
        assert unsubscribe.read_token(key, changed) is None


def test_campaign_settings_refuse_bad_values_by_name() -> None:
    assert config.parse({}).quiet_hours["sms"].start_min == 21 * 60
    for data, words in (({"quiet_hours": {"sms": "9pm-8am"}}, "quiet_hours.sms"), ({"colour": 1}, "colour"),
                        ({"time_zone": "Nowhere/City"}, "time_zone"), ({"mail": {"host": "h", "username": "u"}},
                                                                       "password"),
                        ({"sms": {"url": "ftp://x"}}, "url"), ({"frequency_cap": {"count": -1}}, "count")):
        with pytest.raises(ConfigError, match=words):
            config.parse(data)
