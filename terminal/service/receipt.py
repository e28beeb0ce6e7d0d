"""The receipt of one journaled operation: what the cashier shows, prints or saves, and what scripts read as JSON.

A receipt exists only for an entry the journal has committed: it is built from the returned ``JournalEntry``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cardkit.core.state import MemberState
from cardkit.journal import EntryKind, JournalEntry
from terminal.documents import atomic_write

WIDTH = 40
TITLES: dict[str, str] = {
    EntryKind.SALE: "SALE", EntryKind.TOPUP: "TOP-UP", EntryKind.REFUND: "REFUND", EntryKind.VOID: "VOID",
    EntryKind.REDEEM: "POINTS REDEMPTION", EntryKind.TIER_UPGRADE: "TIER UPGRADE",
    EntryKind.MEMBERSHIP_FEE: "MEMBERSHIP FEE", EntryKind.MEMBER_UPDATE: "MEMBER DETAILS",
}
"""The heading of each kind's receipt; the lines under it come from ``receipt_lines``."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """An approved, durably journaled operation."""

    entry: JournalEntry
    lines: tuple[tuple[str, str], ...]
    """(label, value) pairs in print order; a label of "-" draws a rule."""
    after: MemberState | None
    """The member's figures once this operation is counted (an estimate while offline)."""
    offline: bool

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

    def to_text(self) -> str:
        """A plain-text receipt, WIDTH columns wide."""
        e = self.entry
        when = datetime.fromtimestamp(e.wall_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        out = [f"CARDPOS  {TITLES.get(e.kind, e.kind.upper())}".center(WIDTH).rstrip(),
               _pair(f"Terminal {e.terminal_id}", f"#{e.seq}"),
               _pair(when, f"Cashier {e.cashier_id}" if e.cashier_id else "")]
        member, card = e.payload.get("member"), e.payload.get("card")
        if member:
            out.append(_pair(f"Member {member}", f"Card {card}" if card else ""))
        out.append("-" * WIDTH)
        for label, value in self.lines:
            out.append("-" * WIDTH if label == "-" else _pair(label, value))
        out.append("-" * WIDTH)
        if self.offline:
            out.append("OFFLINE: figures confirmed at next sync")
        out.append(f"Ref {e.uuid}")
        return "\n".join(out) + "\n"

    def to_dict(self) -> dict[str, Any]:
        e = self.entry
        return {
            "ok": True, "kind": e.kind, "uuid": e.uuid, "seq": e.seq, "terminal": e.terminal_id,
            "wall_ms": e.wall_ms, "cashier": e.cashier_id, "payload": e.payload, "offline": self.offline,
            "lines": [[label, value] for label, value in self.lines if label != "-"],
            "after": self.after.to_mapping() if self.after is not None else None,
        }

    def write(self, directory: Path) -> Path:
        """Save ``to_text()`` as ``<directory>/<seq>-<kind>.txt`` (atomically) and return the path."""
        path = directory / f"{self.entry.seq:08d}-{self.entry.kind}.txt"
        atomic_write(path, self.to_text().encode("utf-8"))
        return path


def _pair(left: str, right: str) -> str:
    gap = max(1, WIDTH - len(left) - len(right))
    return f"{left}{' ' * gap}{right}".rstrip()
