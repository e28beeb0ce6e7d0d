"""Screen words in English and Simplified Chinese: the screens' tables (``i18n/<lang>.toml``) on top of the
terminal's own catalogue (``terminal/i18n``: receipts, declines, errors, tiers, tenders, operation kinds).

Keys are dotted paths into the TOML tables (``idle.prompt``). A key missing from a language falls back to
English so a half-translated build still shows words, never a raw key; a key missing from English too is
shown as the key itself, which the i18n test catches.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from terminal.i18n import LANGUAGES, Words

if TYPE_CHECKING:
    from textual.dom import DOMNode

__all__ = ["LANGUAGES", "Translator", "keys", "next_language", "translate_bindings"]


class Translator(Words):
    """``tr("status.queue", depth=3)`` → the words for the current language ("Queue: 3"); ``tr.say(phrase)`` and
    ``tr.error(exc)`` as ``terminal.i18n.Words``."""

    TABLES = ("terminal.i18n", "terminal.ui")


def keys(lang: str) -> set[str]:
    """Every key the screens can ask for in ``lang`` (screen tables and the terminal's catalogue)."""
    return Translator.all_keys(lang)


def next_language(lang: str) -> str:
    """The language the switch key moves to from ``lang`` (round the list)."""
    return LANGUAGES[(LANGUAGES.index(lang) + 1) % len(LANGUAGES)] if lang in LANGUAGES else LANGUAGES[0]


def translate_bindings(node: DOMNode, tr: Words) -> None:
    """Give a screen's footer keys the current language's words (``keys.<action>`` in the i18n files).

    Bindings are declared once per class in English; each screen instance swaps in its own translated copy,
    so the footer never mixes languages.
    """
    table = node._bindings.key_to_bindings
    for key, bindings in table.items():
        table[key] = [
            replace(b, description=tr(f"keys.{b.action.removeprefix('app.')}"))
            if tr.has(f"keys.{b.action.removeprefix('app.')}") else b
            for b in bindings
        ]
