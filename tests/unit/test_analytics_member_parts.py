"""Pure parts of the member page and the SMS balance query: phone forms, consent shown read-only."""

from __future__ import annotations

from ledger.console.member_app import consent_of
from ledger.sms.inbound import phone_variants
from ledger.sms.keywords import is_balance_query


def test_a_phone_with_and_without_the_country_code_is_one_phone() -> None:
    assert phone_variants("13912345678") == ["13912345678", "8613912345678"]
    assert phone_variants("8613912345678") == ["8613912345678", "13912345678"]
    assert phone_variants("442071234567") == ["442071234567"]


def test_consent_is_read_from_the_preferences_until_member_facts_exist() -> None:
    assert consent_of({"consent_sms": "yes"}) == {"sms": "yes", "mail": ""}
    assert consent_of({}) == {"sms": "", "mail": ""}


def test_balance_keywords() -> None:
    assert all(is_balance_query(t) for t in ("BAL", "bal.", " 余额 ", "查余额", "Balance"))
    assert not any(is_balance_query(t) for t in ("balance please", "STOP", ""))
