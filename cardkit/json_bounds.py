"""Bounded JSON: size, nesting depth and item count checked on the raw bytes before ``json.loads`` runs.

Python's JSON decoder recurses once per nesting level (a few kilobytes of ``[`` raise ``RecursionError``, which
is not a ``ValueError`` and escapes the usual error handling) and builds whatever the text describes.
``scan`` looks at the bytes once, linearly: string contents are skipped by a possessive regular expression (no
backtracking), the brackets and commas outside them are counted. ``loads`` scans, then decodes; every refusal
is ``JsonRefused``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from cardkit.errors import CardposError

# After an opening quote: characters that are neither quote nor backslash, or a backslash and any one character,
# then the closing quote. Possessive (*+): a string without its closing quote fails once, without backtracking.
_STRING_REST = re.compile(rb'(?:[^"\\]|\\.)*+"', re.DOTALL)
_TOKEN = re.compile(rb'["\[\]{},]')


class JsonRefused(CardposError):
    """Untrusted JSON outside its limits or not well formed; ``reason`` says what."""

    title = "Malformed data"

    def __init__(self, reason: str, *, orig: BaseException | None = None) -> None:
        super().__init__(f"the JSON data is refused: {reason}", orig=orig)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class JsonLimits:
    max_bytes: int
    max_depth: int = 4
    """Nesting of arrays and objects: a flat object is depth 1."""
    max_items: int = 256
    """Values in all arrays and objects together (counted by their separators and brackets)."""


def scan(data: bytes, limits: JsonLimits) -> None:
    """Refuse ``data`` (``JsonRefused``) when it is larger, deeper or holds more items than ``limits`` allow."""
    if len(data) > limits.max_bytes:
        raise JsonRefused(f"{len(data)} bytes is more than the {limits.max_bytes} allowed")
    depth = deepest = items = pos = 0
    while (match := _TOKEN.search(data, pos)) is not None:
        char = match.group()
        pos = match.end()
        if char == b'"':  # skip the string's contents: brackets and commas in it are text
            rest = _STRING_REST.match(data, pos)
            if rest is None:
                raise JsonRefused("a string has no closing quote")
            pos = rest.end()
        elif char in b"[{":
            depth += 1
            items += 1
            if depth > deepest:
                deepest = depth
                if deepest > limits.max_depth:
                    raise JsonRefused(f"nesting deeper than {limits.max_depth} levels")
        elif char == b",":
            items += 1
        else:
            depth -= 1
        if items > limits.max_items:
            raise JsonRefused(f"more than {limits.max_items} items")


def loads(data: bytes, limits: JsonLimits) -> Any:
    """``scan`` then ``json.loads``; raise ``JsonRefused`` for anything refused or not JSON."""
    scan(data, limits)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise JsonRefused(f"it is not JSON ({exc})", orig=exc) from exc
