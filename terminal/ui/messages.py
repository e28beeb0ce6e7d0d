"""Small messages workers and threads post back to the UI. Each carries plain values, never a widget."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from terminal.reader.events import ReaderEvent


@dataclass
class ReaderEventArrived(Message):
    """The reader thread delivered an event (card presented / removed / reader status)."""

    event: ReaderEvent


@dataclass
class SyncStatusChanged(Message):
    """The sync service reported its status (``terminal.sync.service.SyncStatus``)."""

    status: Any


@dataclass
class QueueDepthRead(Message):
    """Read from the store: entries not yet acknowledged by the ledger, and when the last sync succeeded."""

    depth: int
    last_sync_ms: int | None = None


@dataclass
class TapVerified(Message):
    """The counter finished checking a card: ``result`` is a ``TapResult`` (verdict + member view or None)."""

    result: Any
    manual: bool


@dataclass
class TapFailed(Message):
    """Checking a card could not finish (reader, journal or storage failure); ``text`` is one sentence."""

    text: str


@dataclass
class SignedIn(Message):
    cashier: Any


@dataclass
class SignInRefused(Message):
    text: str


@dataclass
class OperationDone(Message):
    """A counter operation was journaled; ``receipt`` has ``to_text()``; the text file is at ``path``."""

    kind: str
    receipt: Any
    path: Path | None


@dataclass
class OperationDeclined(Message):
    """A loyalty rule refused the operation: ``text`` says why, ``code`` picks the advice shown with it."""

    kind: str
    text: str
    code: str


@dataclass
class OperationFailed(Message):
    kind: str
    text: str


@dataclass
class DataLoaded(Message):
    """A read-only query (history, quote, Z-report, diagnostics) finished."""

    what: str
    value: Any


@dataclass
class SupervisorApproved(Message):
    supervisor_id: str
