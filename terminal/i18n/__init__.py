"""The terminal's words in English and Simplified Chinese: receipts, the Z-report, declines, errors, history lines.

What the counter prints and what it refuses is said here, outside the cashier UI, so receipts printed by
``cardpos terminal op`` and declines raised by the pure core read the same as on screen. The service builds
language-free ``Phrase``s (a catalogue key and its parameters); the edge (the app, the printer, the CLI) says
them in one language with ``Words``. The UI adds its screen tables on top (``terminal.ui.i18n.Translator``).

Templates are ``str.format`` text. A placeholder whose format spec names a term table is translated:
``{tier:tier}`` says ``tier.<value>`` (``Gold`` / ``金卡``), ``{tenders:tender}`` says each of a list, joined; an
unknown value is shown as it is (it is a code). A parameter that is itself a ``Phrase`` is said first.
Errors (``Words.error``) are said from the error's ``sentence`` and ``params`` (``cardkit.errors``): a
``DomainError`` under ``declines.<sentence>``, a ``PrinterError`` by the printer's state, any other
``CardposError`` under ``errors.<sentence>``; one without a sentence falls back to its own English message in
English and to a sentence for its kind (``errors.kind.<class>``) in other languages.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, ClassVar

from cardkit.errors import CardposError, DomainError
from terminal.printer.errors import PrinterError
from terminal.printer.status import PrinterStatus

LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "en"
CASHIER_LANGUAGE_KEY = "ui.lang.{cashier_id}"
"""Where a cashier's chosen language is kept in the terminal's store (its sync_state table): the app writes it
when the cashier switches, and the app and ``cardpos terminal op --cashier`` read it."""


@dataclass(frozen=True, slots=True)
class Phrase:
    """A sentence or label to be said in the reader's language: a catalogue key and its parameters."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)


Text = str | Phrase
"""What a receipt or history line holds: a ``str`` is printed as it is (amounts, ids, names); a ``Phrase`` is
said in the language of the receipt."""


def phrase(key: str, **params: Any) -> Phrase:
    return Phrase(key, params)


def flatten(node: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A TOML table → ``{"dotted.key": "text"}``."""
    flat: dict[str, str] = {}
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            flat.update(flatten(value, path))
        else:
            flat[path] = str(value)
    return flat


def load_table(package: str, lang: str) -> dict[str, str]:
    """``<package>/<lang>.toml`` (or ``<package>/i18n/<lang>.toml`` for the UI) as a flat table."""
    return _load_table(package, lang)


@cache
def _load_table(package: str, lang: str) -> dict[str, str]:
    folder = resources.files(package)
    if package != __name__:
        folder = folder.joinpath("i18n")
    return flatten(tomllib.loads(folder.joinpath(f"{lang}.toml").read_text(encoding="utf-8")))


def keys(lang: str) -> set[str]:
    """The keys of the terminal's own table in ``lang``."""
    return set(load_table(__name__, lang))


class SaidError(CardposError):
    """An error already said in the reader's language (``Words.error`` shows it as it is): what the app raises
    when it wraps a service's error for a screen that shows ``str(error)``."""

    title = "Refused"


_TERM_SPEC = re.compile(r"\{[^{}:]*:[A-Za-z_][A-Za-z0-9_]+\}")


@cache
def _has_terms(template: str) -> bool:
    """Whether a template names a term table (``{tier:tier}``), which only ``_Formatter`` says."""
    return _TERM_SPEC.search(template) is not None


class _Formatter(string.Formatter):
    """``str.format`` where a format spec naming a term table translates the value (see the module doc)."""

    def __init__(self, words: Words) -> None:
        super().__init__()
        self._words = words

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Phrase):
            value = self._words.say(value)
        if len(format_spec) > 1 and format_spec.isidentifier():
            return self._words.term(format_spec, value)
        return str(super().format_field(value, format_spec))


class Words:
    """The terminal's words in one language: ``words("receipt.total")``, ``words.say(phrase)``,
    ``words.error(exc)``. A key missing from the language falls back to English, then to the key itself (which
    the catalogue tests catch)."""

    TABLES: ClassVar[tuple[str, ...]] = (__name__,)
    """Packages whose ``<lang>.toml`` tables make up the catalogue; later ones win."""

    def __init__(self, lang: str = DEFAULT_LANGUAGE) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        self._words = self._merged(self.lang)
        self._fallback = self._merged(DEFAULT_LANGUAGE)
        self._formatter = _Formatter(self)

    @classmethod
    def _merged(cls, lang: str) -> dict[str, str]:
        merged: dict[str, str] = {}
        for package in cls.TABLES:
            merged.update(load_table(package, lang))
        return merged

    @classmethod
    def all_keys(cls, lang: str) -> set[str]:
        return set(cls._merged(lang))

    def has(self, key: str) -> bool:
        return key in self._words or key in self._fallback

    def __call__(self, key: str, **params: Any) -> str:
        template = self._words.get(key) or self._fallback.get(key)
        if template is None:
            return key
        if not params:
            return template
        try:
            if not _has_terms(template) and not any(isinstance(v, Phrase) for v in params.values()):
                return template.format(**params)  # the plain case, in C
            return self._formatter.vformat(template, (), params)
        except (KeyError, IndexError, ValueError):
            # A template asking for a parameter it was not given: the catalogue tests catch it; never crash here.
            fallback = self._fallback.get(key, key)
            try:
                return self._formatter.vformat(fallback, (), params)
            except (KeyError, IndexError, ValueError):
                return fallback

    def say(self, text: Text) -> str:
        """A receipt or history text in this language: a ``str`` as it is, a ``Phrase`` from the catalogue."""
        if isinstance(text, Phrase):
            return self(text.key, **text.params)
        return text

    def term(self, table: str, value: Any) -> str:
        """``value`` in the words of a term table (``tier``, ``tender``, ``op``, ...): a list is said item by item
        and joined; a value the table does not know is a code and is shown as it is."""
        if isinstance(value, Sequence) and not isinstance(value, str):
            return self("list.sep").join(self.term(table, item) for item in value)
        key = f"{table}.{value}"
        return self(key) if self.has(key) else str(value)

    def lines(self, texts: Iterable[tuple[Text, Text]]) -> list[tuple[str, str]]:
        return [(self.say(left), self.say(right)) for left, right in texts]

    def error(self, exc: BaseException) -> str:
        """One sentence for an error, in this language (see the module doc)."""
        if isinstance(exc, SaidError):
            return str(exc)
        if isinstance(exc, PrinterError):
            return self(f"printer.problem.{printer_problem(exc.status)}")
        if isinstance(exc, CardposError):
            sentence = exc.sentence
            key = f"declines.{sentence}" if isinstance(exc, DomainError) else f"errors.{sentence}"
            if sentence and self.has(key):
                return self(key, **exc.params)
            if self.lang == DEFAULT_LANGUAGE:
                return str(exc)
            for cls in type(exc).__mro__:
                if self.has(f"errors.kind.{cls.__name__}"):
                    return self(f"errors.kind.{cls.__name__}")
        if self.lang == DEFAULT_LANGUAGE:
            return str(exc) or type(exc).__name__
        return self("errors.kind.CardposError")


def printer_state(status: PrinterStatus | None) -> str:
    """The printer's state as a key of ``printer.state``: ready, paper_low, paper_out, cover_open or offline
    (None: it did not answer, or could not be opened)."""
    if status is None:
        return "offline"
    if status.ready:
        return "paper_low" if status.paper_low else "ready"
    return printer_problem(status)


def printer_problem(status: PrinterStatus | None) -> str:
    """Why a printer cannot print, as a key of ``printer.problem``: paper_out, cover_open or offline."""
    if status is not None and status.cover_open:
        return "cover_open"
    if status is not None and status.paper_out:
        return "paper_out"
    return "offline"


EN = Words("en")
"""English, for JSON output, logs and scripts."""


def words_for(lang: str) -> Words:
    return Words(lang) if lang != DEFAULT_LANGUAGE else EN


__all__ = ["CASHIER_LANGUAGE_KEY", "DEFAULT_LANGUAGE", "EN", "LANGUAGES", "Phrase", "SaidError", "Text", "Words",
           "keys", "phrase", "printer_problem", "printer_state", "words_for"]
