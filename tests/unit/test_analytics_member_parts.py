"""Pure parts of the SMS balance query: phone forms and keywords."""

from __future__ import annotations

from ledger.sms.balance_query import phone_variants
from ledger.sms.keywords import is_balance_query


def test_a_phone_with_and_without_the_country_code_is_one_phone() -> None:
    assert phone_variants("13912345678") == ["13912345678", "8613912345678"]
    assert phone_variants("8613912345678") == ["8613912345678", "13912345678"]
    assert phone_variants("442071234567") == ["442071234567"]


def test_balance_keywords() -> None:
    assert all(is_balance_query(t) for t in ("BAL", "bal.", " 余额 ", "查余额", "Balance"))
    assert not any(is_balance_query(t) for t in ("balance please", "STOP", ""))
