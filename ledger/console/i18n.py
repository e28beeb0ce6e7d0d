"""The console's words in English and Chinese: one TOML catalog per language (``locale/en.toml``,
``locale/zh.toml``, the same keys in both; a test checks). The language follows the browser's
``Accept-Language`` until the admin picks one (a cookie); English when neither says.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Any

LANGUAGES = ("en", "zh")
DEFAULT = "en"
LOCALE_DIR = Path(__file__).parent / "locale"


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    with open(LOCALE_DIR / f"{lang}.toml", "rb") as handle:
        raw = tomllib.load(handle)
    return dict(_flatten(raw))


def _flatten(table: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out += _flatten(value, name + ".")
        else:
            out.append((name, str(value)))
    return out


def negotiate(accept_language: str | None, chosen: str | None) -> str:
    """The chosen language if valid, else the browser's first supported one (q-values honoured), else English."""
    if chosen in LANGUAGES:
        return str(chosen)
    best, best_q = DEFAULT, -1.0
    for index, part in enumerate((accept_language or "")[:512].split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and q > best_q and q > 0:
            best, best_q = primary, q - index * 1e-6  # earlier wins a tie
    return best


class Translator:
    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT
        self._words = catalog(self.lang)

    def __call__(self, key: str, **values: Any) -> str:
        text = self._words.get(key)
        if text is None:
            text = catalog(DEFAULT).get(key, key)
        return text.format(**values) if values else text
