"""Campaign rules as pure functions: occasions, quiet hours in the member's zone, cap, templates, holdout."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.campaigns import model
from ledger.campaigns.model import FrequencyCap, MemberMoment, Occasion, QuietHours
from ledger.errors import LedgerError

TODAY = datetime.date(2026, 11, 30)


def moment(**kw: object) -> MemberMoment:
    values: dict[str, object] = {"member_id": "m1", "birthday": None, "join_day": None, "tier": "standard",
                                 "greeted_tier": "standard", "last_visit_day": None}
    values.update(kw)
    return MemberMoment(**values)  # type: ignore[arg-type]


def test_birthday_once_per_year_and_leap_day() -> None:
    assert model.occasion_key(Occasion.BIRTHDAY, moment(birthday="1990-11-30"), TODAY) == "birthday-2026"
    assert model.occasion_key(Occasion.BIRTHDAY, moment(birthday="1990-11-29"), TODAY) is None
    assert model.occasion_key(Occasion.BIRTHDAY, moment(birthday="2000-02-29"), datetime.date(2027, 2, 28)) \
        == "birthday-2027"
    assert model.occasion_key(Occasion.BIRTHDAY, moment(birthday="2000-02-29"), datetime.date(2028, 2, 28)) is None


def test_anniversary_tier_lapse_and_holiday() -> None:
    assert model.occasion_key(Occasion.ANNIVERSARY, moment(join_day=datetime.date(2024, 11, 30)), TODAY) \
        == "anniversary-2026"
    assert model.occasion_key(Occasion.ANNIVERSARY, moment(join_day=TODAY), TODAY) is None  # the day they joined
    assert model.occasion_key(Occasion.TIER_UPGRADE, moment(tier="gold"), TODAY) == "tier-gold"
    assert model.occasion_key(Occasion.TIER_UPGRADE, moment(tier="gold", greeted_tier="gold"), TODAY) is None
    lapsed = moment(last_visit_day=TODAY - datetime.timedelta(days=90))
    assert model.occasion_key(Occasion.WE_MISS_YOU, lapsed, TODAY, lapsed_days=90) == "lapsed-since-2026-09-01"
    assert model.occasion_key(Occasion.WE_MISS_YOU, lapsed, TODAY, lapsed_days=91) is None
    assert model.occasion_key(Occasion.HOLIDAY, moment(), TODAY, holiday="11-30") == "holiday-2026-11-30"
    with pytest.raises(LedgerError):
        model.parse_month_day("13-01")


def test_quiet_hours_in_the_members_zone() -> None:
    quiet = QuietHours()  # 21:00-08:00
    # 2026-11-30 14:00 UTC is 22:00 in Shanghai (quiet) and 09:00 in New York (not quiet)
    at = int(datetime.datetime(2026, 11, 30, 14, 0, tzinfo=datetime.UTC).timestamp() * 1000)
    assert quiet.next_allowed_ms(at, "America/New_York") == at
    end = quiet.next_allowed_ms(at, "Asia/Shanghai")
    assert datetime.datetime.fromtimestamp(end / 1000, datetime.UTC) == datetime.datetime(
        2026, 12, 1, 0, 0, tzinfo=datetime.UTC)  # 08:00 Shanghai
    assert QuietHours.parse("00:00-00:00").next_allowed_ms(at, "Asia/Shanghai") == at
    with pytest.raises(LedgerError):
        QuietHours.parse("9pm-8am")


@given(st.integers(0, 24 * 60 - 1), st.integers(0, 24 * 60 - 1), st.integers(1_700_000_000_000, 1_900_000_000_000))
def test_next_allowed_is_never_quiet(start: int, end: int, now_ms: int) -> None:
    quiet = QuietHours(start, end)
    allowed = quiet.next_allowed_ms(now_ms, "Asia/Shanghai")
    local = datetime.datetime.fromtimestamp(allowed / 1000, datetime.timezone(datetime.timedelta(hours=8)))
    assert allowed >= now_ms
    assert not quiet.is_quiet(local.hour * 60 + local.minute)
    assert allowed - now_ms <= 24 * 3_600_000


def test_frequency_cap() -> None:
    cap = FrequencyCap(2, 7)
    now = 100 * model.DAY_MS
    assert cap.allows([now - 8 * model.DAY_MS, now - 9 * model.DAY_MS], now)
    assert not cap.allows([now - model.DAY_MS, now - 2 * model.DAY_MS], now)
    assert FrequencyCap(0, 7).allows([now] * 10, now)


def test_templates_and_refusal_hint() -> None:
    rendered = model.render("生日快乐，{name}！{{积分}} {points}", {"name": "王芳", "points": "120"})
    assert rendered == "生日快乐，王芳！{积分} 120"
    with pytest.raises(LedgerError, match="fields are"):
        model.check_template("Hi {password}")
    with pytest.raises(LedgerError):
        model.check_template("Hi {name")
    assert model.sms_text("生日快乐", "zh") == "生日快乐 拒收请回复R"
    assert model.sms_text("Happy birthday", "en").endswith("Reply STOP to opt out")


def test_keys_and_references_are_stable() -> None:
    key = model.message_key("cmp-1", "m1", "birthday-2026", "sms")
    assert model.gateway_reference(key) == model.gateway_reference(key)
    assert len(model.gateway_reference(key)) <= 64 and model.gateway_reference(key).isascii()
    assert model.gateway_reference(key) != model.gateway_reference(key.replace("m1", "m2"))


def test_the_fast_planners_agree_with_the_rules() -> None:
    make = model.reference_maker("cmp-1", "birthday-2026", "sms")
    draw = model.holdout_draw("seed-1", 1000)
    for member in ("m1", "m2", "王芳", "x" * 32):
        assert make(member) == model.gateway_reference(model.message_key("cmp-1", member, "birthday-2026", "sms"))
        assert draw(member) == model.in_holdout(member, "seed-1", 1000)


def test_holdout_is_deterministic_and_near_its_share() -> None:
    drawn = [model.in_holdout(f"m{i}", "seed-1", 1000) for i in range(20_000)]
    assert drawn == [model.in_holdout(f"m{i}", "seed-1", 1000) for i in range(20_000)]
    assert 1800 < sum(drawn) < 2200
    assert not any(model.in_holdout(f"m{i}", "seed-1", 0) for i in range(100))
