"""Screen words in English and Simplified Chinese, read from ``i18n/<lang>.toml``.

Keys are dotted paths into the TOML tables (``idle.prompt``). A key missing from a language falls back to
English so a half-translated build still shows words, never a raw key; a key missing from English too is
shown as the key itself, which the i18n test catches.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.dom import DOMNode

LANGUAGES = ("en", "zh")


@cache
def _table(lang: str) -> dict[str, str]:
    text = resources.files("terminal.ui").joinpath("i18n", f"{lang}.toml").read_text(encoding="utf-8")
    flat: dict[str, str] = {}

    def walk(prefix: str, node: dict[str, Any]) -> None:
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                walk(path, value)
            else:
                flat[path] = str(value)

    walk("", tomllib.loads(text))
    return flat


def keys(lang: str) -> set[str]:
    return set(_table(lang))


class Translator:
    """``tr("status.queue", depth=3)`` → the words for the current language ("Queue: 3")."""

    def __init__(self, lang: str = "en") -> None:
        if lang not in LANGUAGES:
            lang = "en"
        self.lang = lang
        self._words = _table(lang)
        self._fallback = _table("en")

    def __call__(self, key: str, **values: object) -> str:
        text = self._words.get(key) or self._fallback.get(key) or key
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self._words or key in self._fallback


def translate_bindings(node: DOMNode, tr: Translator) -> None:
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
