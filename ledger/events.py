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
class BatchApplied:
    terminal_id: str
    store_id: str
    batch_id: str
    entries: list[JournalEntry]  # only the newly applied ones, in sequence order
    received_ms: int


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


LedgerEvent = BatchApplied | BatchRejected | TerminalSeen
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
