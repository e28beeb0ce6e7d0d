"""A readable difference between two rules files (pure): every setting that changed, as ``path: old → new``,
and a line diff of the TOML texts when both are at hand."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Change:
    path: str
    old: str | None  # None: added
    new: str | None  # None: removed


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """``{"points": {"per_unit": 1}}`` → ``{"points.per_unit": "1"}``; list items as ``[i]``."""
    out: dict[str, str] = {}
    if isinstance(value, Mapping):
        for key in sorted(value, key=str):
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list | tuple):
        if not value:
            out[prefix] = "[]"
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
    else:
        out[prefix] = "true" if value is True else "false" if value is False else str(value)
    return out


def changes(old: Mapping[str, Any], new: Mapping[str, Any], *, ignore: tuple[str, ...] = ("version",)) -> list[Change]:
    a = {k: v for k, v in flatten(old).items() if k not in ignore}
    b = {k: v for k, v in flatten(new).items() if k not in ignore}
    return [Change(path, a.get(path), b.get(path)) for path in sorted(set(a) | set(b)) if a.get(path) != b.get(path)]


def text_diff(old_text: str, new_text: str) -> list[str]:
    return list(difflib.unified_diff(old_text.splitlines(), new_text.splitlines(), "current", "new", lineterm="", n=2))
