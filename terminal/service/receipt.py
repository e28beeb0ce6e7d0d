"""The receipt of one journaled operation: what the cashier shows, prints or saves, and what scripts read as JSON.

A receipt exists only for an entry the journal has committed: it is built from the returned ``JournalEntry``.
It holds no language: ``printed(words, width)`` says it in one (``terminal/i18n``) and lays it out in printer
columns (a Chinese character takes two), the same lines for the screen, the text file and the paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cardkit.core.state import MemberState
from cardkit.journal import JournalEntry
from terminal.documents import atomic_write
from terminal.i18n import EN, Words
from terminal.printer.text import Line as PrintedLine
from terminal.printer.text import columns, layout, printable
from terminal.service.authorization import AUTH_FIELD, OFFLINE_PATH
from terminal.service.receipt_lines import Line

WIDTH = 40
"""Columns of the text a receipt is shown and saved in (a printer lays it out in its own columns)."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """An approved, durably journaled operation."""

    entry: JournalEntry
    lines: tuple[Line, ...]
    """(label, value) pairs in print order, in no language yet; a label of "-" draws a rule."""
    after: MemberState | None
    """The member's figures once this operation is counted (an estimate while offline)."""
    offline: bool
    copy: bool = False
    """Reprinted from the journal later (said on the receipt); the figures it could not know are left out."""

    @property
    def kind(self) -> str:
        return self.entry.kind

    @property
    def uuid(self) -> str:
        return self.entry.uuid

    @property
    def seq(self) -> int:
        return self.entry.seq

    @property
    def payload(self) -> dict[str, Any]:
        return self.entry.payload

    def printed(self, words: Words = EN, width: int = WIDTH) -> list[str]:
        """The receipt in ``words``' language, laid out in ``width`` columns: one string per printed line."""
        e = self.entry
        when = datetime.fromtimestamp(e.wall_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        title = words(f"receipt.title.{e.kind}") if words.has(f"receipt.title.{e.kind}") else e.kind.upper()
        if self.copy:
            title = words("receipt.copy", title=title)
        out: list[PrintedLine] = [
            centred(words("receipt.heading", title=title), width),
            (words("receipt.terminal", terminal=e.terminal_id), f"#{e.seq}"),
            (when, words("receipt.cashier", cashier=e.cashier_id) if e.cashier_id else ""),
        ]
        member, card = e.payload.get("member"), e.payload.get("card")
        if member:
            out.append((words("receipt.member", member=member), words("receipt.card", card=card) if card else ""))
        out.append("-" * width)
        for label, value in self.lines:
            out.append("-" * width if label == "-" else (words.say(label), words.say(value)))
        out.append("-" * width)
        if self.offline:
            out.append(words("receipt.offline"))
        auth = e.payload.get(AUTH_FIELD)
        if isinstance(auth, str):  # which path decided it: the ledger online, or this terminal's offline limits
            out.append(words("receipt.auth_offline") if auth == OFFLINE_PATH else words("receipt.auth_online",
                                                                                        auth=auth))
        out.append(words("receipt.ref", uuid=e.uuid))
        return layout(out, width)

    def to_text(self, words: Words = EN, width: int = WIDTH) -> str:
        """A plain-text receipt, ``width`` columns wide."""
        return "\n".join(self.printed(words, width)) + "\n"

    def to_dict(self) -> dict[str, Any]:
        e = self.entry
        return {
            "ok": True, "kind": e.kind, "uuid": e.uuid, "seq": e.seq, "terminal": e.terminal_id,
            "wall_ms": e.wall_ms, "cashier": e.cashier_id, "payload": e.payload, "offline": self.offline,
            "lines": [[label, value] for label, value in EN.lines(self.lines) if label != "-"],
            "after": self.after.to_mapping() if self.after is not None else None,
        }

    def write(self, directory: Path, words: Words = EN) -> Path:
        """Save ``to_text(words)`` as ``<directory>/<seq>-<kind>.txt`` (atomically) and return the path."""
        path = directory / f"{self.entry.seq:08d}-{self.entry.kind}.txt"
        atomic_write(path, self.to_text(words).encode("utf-8"))
        return path


def centred(text: str, width: int) -> str:
    """``text`` centred in ``width`` printer columns (as ``str.center`` places it, counting a Chinese character as
    two); longer text is left as it is, for the layout to wrap."""
    text = printable(text)
    margin = width - columns(text)
    if margin <= 0:
        return text
    left = margin // 2 + (margin & width & 1)
    return " " * left + text
