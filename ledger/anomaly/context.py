"""What every detector gets: thresholds, its state, and a read-only view of the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ledger.anomaly.state import StateStore
from ledger.anomaly.thresholds import Thresholds


class LedgerView(Protocol):
    """The ledger's merged figures, read after a batch has committed."""

    def balance_minor(self, member_id: str) -> int | None:
        """The member's stored value in minor units after every applied batch, or None if unknown."""

    def card_blocked_since(self, card_id: str) -> int | None:
        """Epoch ms since which the card is revoked or on hold at the ledger, or None if it is usable."""

    def terminals(self) -> dict[str, tuple[str, str, int | None]]:
        """Enrolled terminals: id → (status, store id, last seen epoch ms)."""


class NullLedgerView:
    """A view that knows nothing (balance and card checks are skipped)."""

    def balance_minor(self, member_id: str) -> int | None:
        return None

    def card_blocked_since(self, card_id: str) -> int | None:
        return None

    def terminals(self) -> dict[str, tuple[str, str, int | None]]:
        return {}


@dataclass(slots=True)
class Context:
    thresholds: Thresholds
    state: StateStore
    view: LedgerView
