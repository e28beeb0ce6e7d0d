"""What the counter may ask the ledger while it answers (``terminal.sync.lookup`` does the asking).

The counter works without it (tests, a terminal that cannot sign its questions): then every member it has not
been sent is served on the unknown-balance path and reversals take only this terminal's originals. The app and the
headless ``op`` (``terminal.commands.op_ledger``) attach it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from cardkit.lookup_answers import OriginalOperation

__all__ = ["LedgerLookups", "LookedUpMember", "OriginalOperation"]


@dataclass(frozen=True)
class LookedUpMember:
    """One member's snapshot from the ledger (verified and opened), and this terminal's last entry it counts."""

    snapshot: dict[str, Any]
    folded_seq: int
    version: int


class LedgerLookups(Protocol):
    """Online questions with a short timeout; each raises ``cardkit.errors.SyncError`` (a subclass says which:
    unreachable, refused, not authentic) when there is no usable answer."""

    def member(self, card_id: str) -> LookedUpMember: ...

    def original(self, entry_uuid: str) -> OriginalOperation: ...
