"""Both languages say everything: same keys, and every key the code asks for exists."""

from __future__ import annotations

import re
from pathlib import Path

from terminal.ui.i18n import Translator, keys

UI_DIR = Path(__file__).resolve().parents[2] / "terminal" / "ui"


def test_english_and_chinese_have_the_same_keys() -> None:
    assert keys("en") == keys("zh")


def test_every_literal_key_used_in_the_code_exists() -> None:
    used: set[str] = set()
    for path in UI_DIR.rglob("*.py"):
        used |= set(re.findall(r'\btr\("([a-z_.]+)"', path.read_text(encoding="utf-8")))
    assert used, "the scan found no keys; the pattern is wrong"
    missing = sorted(used - keys("en"))
    assert missing == []


def test_every_footer_action_has_words_in_both_languages() -> None:
    actions: set[str] = set()
    for path in UI_DIR.rglob("*.py"):
        actions |= set(re.findall(r'Binding\("[^"]+", "(?:app\.)?([a-z_]+)"', path.read_text(encoding="utf-8")))
    for lang in ("en", "zh"):
        missing = sorted(a for a in actions if f"keys.{a}" not in keys(lang))
        assert missing == [], lang


def test_translator_formats_and_falls_back() -> None:
    zh = Translator("zh")
    assert zh("status.queue", depth=3) == "待同步：3"
    assert Translator("en")("status.queue", depth=3) == "Queue: 3"
    assert zh("no.such.key") == "no.such.key"
