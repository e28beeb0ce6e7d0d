"""Ingest events and their observers.

The ingest path publishes what happened to every batch; the anomaly detector (and anything else) subscribes.
Observers run after the batch's transaction commits; an observer that fails is logged and never undoes or
blocks the ingest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from cardkit.journal import JournalEntry

log = logging.getLogger("cardpos.ledger.events")


@dataclass(frozen=True)
class Quarantined:
    """A new entry of a batch that was journaled but not applied (``ledger.semantics``)."""

    seq: int
    code: str
    reason: str


@dataclass(frozen=True)
class BatchApplied:
    terminal_id: str
    store_id: str
    batch_id: str
    entries: list[JournalEntry]  # the newly journaled ones, in sequence order (quarantined ones included)
    received_ms: int
    quarantined: tuple[Quarantined, ...] = ()  # which of ``entries`` were not applied, and why

    @property
    def applied_entries(self) -> list[JournalEntry]:
        """The entries that took effect (``entries`` less the quarantined ones)."""
        if not self.quarantined:
            return self.entries
        skipped = {q.seq for q in self.quarantined}
        return [e for e in self.entries if e.seq not in skipped]


@dataclass(frozen=True)
class BatchRejected:
    """A batch refused at ingest. ``reason``: unknown_terminal, disabled_terminal, bad_signature, decrypt_failed,
    malformed, sequence_gap, broken_chain, tampered (same seq, other content), replayed."""

    terminal_id: str | None
    reason: str
    detail: str
    received_ms: int
    seqs: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class TerminalSeen:
    terminal_id: str
    store_id: str
    terminal_clock_ms: int | None
    received_ms: int


@dataclass(frozen=True)
class UnauthenticatedRefused:
    """The first refused unauthenticated request of a source in its window (``ledger.noise``); later ones of
    the window are only counted. ``claimed`` is the terminal id it claimed, cut and sanitized, if any."""

    source: str
    what: str  # batch or pull
    reason: str
    claimed: str | None
    received_ms: int


LedgerEvent = BatchApplied | BatchRejected | TerminalSeen | UnauthenticatedRefused
Observer = Callable[[LedgerEvent], None]

_observers: list[Observer] = []


def subscribe(observer: Observer) -> None:
    if observer not in _observers:
        _observers.append(observer)


def unsubscribe(observer: Observer) -> None:
    if observer in _observers:
        _observers.remove(observer)


def publish(event: LedgerEvent) -> None:
    for observer in list(_observers):
        try:
            observer(event)
        except Exception:  # an observer must never break ingest
            log.exception("ledger observer failed", extra={"fields": {"observer": getattr(observer, "__name__", "?")}})
