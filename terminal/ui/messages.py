"""Small messages workers and threads post back to the UI. Each carries plain values, never a widget.

A journaled operation ends in ``OperationDone``, ``OperationDeclined`` or ``OperationFailed`` (named by its
journal ``EntryKind``); a read-only query ends in its own typed answer (``MemberLoaded``, ``SaleQuoted``, ...) or
in ``QueryDeclined`` / ``QueryFailed`` (named by its ``QueryName``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

from cardkit.journal import EntryKind
from terminal.reader.events import ReaderEvent

if TYPE_CHECKING:
    from cardkit.core.loyalty import SaleQuote, TopupQuote
    from terminal.service.newcard import NewCardState
    from terminal.service.receipt import Receipt
    from terminal.service.views import MemberView, OperationView, TapResult
    from terminal.service.zreport import ZReport
    from terminal.ui.services import Cashier, SyncReport, SyncStatus


class QueryName(enum.StrEnum):
    """The read-only questions screens ask in workers (nothing is journaled by them)."""

    MEMBER = "member"
    HISTORY = "history"
    SALE_QUOTE = "sale_quote"
    TOPUP_QUOTE = "topup_quote"
    Z_REPORT = "z_report"
    DOCUMENTS = "documents"
    SELF_TEST = "selftest"
    SYNC = "sync"
    PROBE = "probe"
    SIGNUP_CARD = "signup_card"
    UPGRADE_CARD = "upgrade_card"


# -- from the reader and sync threads, and the app's own workers --------------------------------------------------
@dataclass
class ReaderEventArrived(Message):
    """The reader thread delivered an event (card presented / removed / reader status)."""

    event: ReaderEvent


@dataclass
class SyncStatusChanged(Message):
    """The sync service reported its status."""

    status: SyncStatus


@dataclass
class QueueDepthRead(Message):
    """Read from the store: entries not yet acknowledged by the ledger, and when the last sync succeeded."""

    depth: int
    last_sync_ms: int | None = None


@dataclass
class TapVerified(Message):
    """The counter finished checking a card: the verdict, and the member view when it was accepted."""

    result: TapResult
    manual: bool


@dataclass
class TapFailed(Message):
    """Checking a card could not finish (reader, journal or storage failure); ``text`` is one sentence."""

    text: str


@dataclass
class SignedIn(Message):
    cashier: Cashier


@dataclass
class SignInRefused(Message):
    text: str


# -- journaled operations ---------------------------------------------------------------------------------------
@dataclass
class OperationDone(Message):
    """A counter operation was journaled; ``receipt`` is built from its entry; the text file is at ``path``."""

    kind: EntryKind
    receipt: Receipt
    path: Path | None


@dataclass
class OperationDeclined(Message):
    """A loyalty rule refused the operation: ``text`` says why, ``code`` picks the advice shown with it."""

    kind: EntryKind
    text: str
    code: str


@dataclass
class OperationFailed(Message):
    kind: EntryKind
    text: str


# -- read-only queries ------------------------------------------------------------------------------------------
@dataclass
class QueryDeclined(Message):
    """A loyalty rule says the question has no answer (a quote that would be declined): ``text`` says why."""

    what: QueryName
    text: str
    code: str


@dataclass
class QueryFailed(Message):
    """A query could not finish (storage, reader or network failure); ``text`` is one sentence."""

    what: QueryName
    text: str


@dataclass
class MemberLoaded(Message):
    view: MemberView


@dataclass
class HistoryLoaded(Message):
    """The card's recent operations at this terminal, newest first."""

    operations: list[OperationView]


@dataclass
class SaleQuoted(Message):
    quote: SaleQuote


@dataclass
class TopUpQuoted(Message):
    quote: TopupQuote


@dataclass
class ShiftReportLoaded(Message):
    report: ZReport


@dataclass
class SignupCardDone(Message):
    """How far a new member's card got: queued (no ledger now), issued (not written yet: why) or written."""

    state: NewCardState


@dataclass
class UpgradeCardDone(Message):
    """How far a tier upgrade's new card got: queued (no ledger now), issued (not written yet: why) or written."""

    state: NewCardState


@dataclass
class DocumentsLoaded(Message):
    """Document name (trust, revocations, rules, members) -> the version this terminal checks and prices with."""

    versions: dict[str, int]


@dataclass
class SelfTestDone(Message):
    """The technician's test card went through the real verify path."""

    result: TapResult


@dataclass
class SyncDone(Message):
    report: SyncReport


# -- the receipt printer ------------------------------------------------------------------------------------------
@dataclass
class PrintDone(Message):
    """A print job ended. ``ref`` names what was printed (a receipt's operation uuid, or ``Z_REPORT_REF``) and
    ``label`` says it to the cashier ("#12"); ``state`` is the printer's state afterwards (a ``printer.state``
    key; None when the job failed before reaching the printer); ``problem`` is one sentence when it did not
    print, in the language the job was started in."""

    ref: str
    label: str
    state: str | None
    problem: str | None = None


@dataclass
class PrinterPolled(Message):
    """The printer's state, asked while it had a problem (paper out, cover open, offline)."""

    state: str
