"""Pure parts of the console: the docs' route table in step with the code, both languages complete, settings,
charts, masks, time boundaries, rules diffs, the roll-up's per-entry figures and the search classifier."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.console import charts, fmt, i18n, rollup, rulesdiff
from ledger.console.roles import ROUTES, Role
from ledger.console.settings import parse_settings
from ledger.console.views.auth import safe_next
from ledger.console.views.members import classify
from ledger.errors import LedgerError
from tests.conftest import REPO_ROOT


def test_the_docs_route_table_is_the_code_table() -> None:
    text = (REPO_ROOT / "docs" / "console.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| `(GET|POST) (\S+)` \| `(\w+)` \| ([^|]+) \|$", text, re.M)
    expected = []
    for r in ROUTES:
        who = ("anyone" if r.public else "every role" if len(r.roles) == len(Role)
               else ", ".join(x.value for x in Role if x in r.roles))
        expected.append((r.method, r.path, r.name, who))
    assert [(m, p, n, w.strip()) for m, p, n, w in documented] == expected


def test_both_languages_have_the_same_words() -> None:
    en, zh = i18n.catalog("en"), i18n.catalog("zh")
    assert set(en) == set(zh)
    for key in en:
        assert set(re.findall(r"\{(\w+)\}", en[key])) == set(re.findall(r"\{(\w+)\}", zh[key])), key


@pytest.mark.parametrize(("header", "cookie", "lang"), [
    ("zh-CN,zh;q=0.9,en;q=0.8", None, "zh"), ("en-US,en;q=0.9", None, "en"), ("fr-FR,zh;q=0.5", None, "zh"),
    ("de", None, "en"), (None, None, "en"), ("zh-CN", "en", "en"), ("en", "zh", "zh"), ("zh;q=0,en", None, "en"),
])
def test_language_follows_the_choice_then_the_browser(header: str | None, cookie: str | None, lang: str) -> None:
    assert i18n.negotiate(header, cookie) == lang


def test_settings_are_checked_by_name() -> None:
    settings = parse_settings({"time_zone": "Asia/Shanghai", "stores": {"s1": {"name": "Nanjing Road"}}})
    assert settings.store_zone("s1").key == "Asia/Shanghai" and settings.store_name("s1") == "Nanjing Road"
    assert settings.store_zone("other").key == "Asia/Shanghai" and settings.store_name("other") == "other"
    for bad in ({"time_zon": "UTC"}, {"time_zone": "Mars/Olympus"}, {"cookie_secure": "never"},
                {"online_within_s": 1}, {"ledger_url": "ftp://x"}, {"stores": {"s1": {"tz": "UTC"}}}):
        with pytest.raises(LedgerError):
            parse_settings(bad)


def test_week_and_day_start_in_the_store_zone() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    moment = int(dt.datetime(2026, 5, 6, 1, 30, tzinfo=zone).timestamp() * 1000)  # a Wednesday
    assert fmt.local_midnight(moment, zone) == int(dt.datetime(2026, 5, 6, tzinfo=zone).timestamp() * 1000)
    assert fmt.week_start(moment, zone) == int(dt.datetime(2026, 5, 4, tzinfo=zone).timestamp() * 1000)
    assert fmt.when(moment, zone) == "2026-05-06 01:30 CST"
    assert fmt.local_midnight(moment, zone) % rollup.BUCKET_MS == 0, "a midnight is a bucket boundary"
    nepal = ZoneInfo("Asia/Kathmandu")  # +05:45
    assert fmt.local_midnight(moment, nepal) % rollup.BUCKET_MS == 0


def test_masks_hide_all_but_a_hint() -> None:
    assert fmt.mask_name("Wang Xiao Ming") == "W＊＊＊" and fmt.mask_name("李伟") == "李＊"
    assert fmt.mask_phone("+86 138 0013 8000") == "•••• 00"
    assert fmt.mask_email("li.lei@example.com") == "l•••@example.com"


def test_rules_diff_names_each_changed_setting() -> None:
    old = {"version": 1, "points": {"per_unit": 1, "expiry_days": 365}, "topup_bonuses": [{"bonus": "10.00"}]}
    new = {"version": 2, "points": {"per_unit": 2}, "topup_bonuses": [{"bonus": "10.00"}, {"bonus": "50.00"}]}
    got = {(c.path, c.old, c.new) for c in rulesdiff.changes(old, new)}
    assert got == {("points.per_unit", "1", "2"), ("points.expiry_days", "365", None),
                   ("topup_bonuses[1].bonus", None, "50.00")}


def test_rollup_figures_per_kind() -> None:
    assert rollup.entry_figures("sale", {"net": 1250, "pts_earn": 12, "pts_redeem": 3}) == (1250, 12, 3)
    assert rollup.entry_figures("topup", {"amount": 50000, "bonus": 5000}) == (50000, 0, 0)
    assert rollup.entry_figures("refund", {"amount": 500, "pts_rev": 5, "pts_back": 1}) == (500, 5, 1)
    assert rollup.entry_figures("void", {"spend": 1250, "sv": 1250, "pts_rev": 12, "pts_back": 3}) == (1250, 12, 3)
    assert rollup.entry_figures("redeem", {"pts": 40}) == (0, 0, 40)
    assert rollup.entry_figures("sale", {"net": "12.50", "pts_earn": 1.5}) == (0, 0, 0), "never a float or text"


@given(st.lists(st.integers(min_value=0, max_value=10**12), max_size=30), st.text(max_size=30))
def test_charts_are_svg_without_style_or_script(values: list[int], label: str) -> None:
    bars = [charts.Bar(label, v, str(v)) for v in values]
    for svg in (charts.hbar_chart(bars, "t"), charts.column_chart(bars, "t")):
        assert svg.startswith("<svg") and svg.endswith("</svg>")
        assert "style=" not in svg and "<script" not in svg.lower()
        if "<" in label:
            assert label not in svg, "labels are escaped"


@pytest.mark.parametrize(("text", "kind"), [
    ("138 0013 8000", "phone"), ("+86 (21) 5555-0001", "phone"), ("0f3a9c11d2b4e5f6", "card"),
    ("li.lei@example.com", "email"), ("Xiao", "name"), ("李伟", "name"), ("1234", "name"),
])
def test_search_box_entries_are_classified(text: str, kind: str) -> None:
    assert classify(text) == kind


@pytest.mark.parametrize(("target", "safe"), [
    ("/members/M1", "/members/M1"), ("//evil.example/", "/dashboard"), ("https://evil.example", "/dashboard"),
    ("/\\evil.example", "/dashboard"), ("", "/dashboard"),
])
def test_after_sign_in_only_local_paths(target: str, safe: str) -> None:
    assert safe_next(target) == safe
