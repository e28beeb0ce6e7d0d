"""The typed seam between the cashier app and the terminal's services.

Everything the app talks to is bundled in ``AppServices`` so ``cardpos terminal run`` and ``cardpos demo`` build
the same app (``terminal.compose.build_services``). The app never opens files, ports or sockets itself: it is
handed a counter (verify, quote, journal), the terminal store (cashiers, journal depth, document versions),
optionally a reader device, a receipt printer and a sync service, and a clock. Their callbacks (reader events,
sync status) go through ``Relay`` objects built with them, which the app attaches to when it starts.

Each service is described by a Protocol of exactly the calls the app makes (a *port*): the real ``Counter``,
``TerminalStore``, ``ReaderDevice`` and ``SyncService`` fit them, which mypy checks where they are put together
(``terminal/compose.py``). This is the one module of ``terminal/ui`` that names the store's, the sync's, the
reader driver's and the printer driver's types, and it names them for the type checker only, so importing the UI
loads no database, serial or HTTP code (``tests/unit/test_import_hygiene.py`` holds both to it). Other UI modules
take those names from here, and call the services only through ``terminal.ui.ops.TerminalOps``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from terminal.reader.events import ReaderEvent
from terminal.ui.relay import Relay

if TYPE_CHECKING:
    from cardkit.cards.verdict import CardClaims
    from cardkit.cards.verify import CardVerifier
    from cardkit.core.loyalty import SaleQuote
    from cardkit.core.members import Tier
    from cardkit.core.money import Money
    from cardkit.core.rules import Rules
    from cardkit.errors import CardposError
    from cardkit.qr import QrBlocks
    from terminal.offline.cashiers import Cashier
    from terminal.printer.status import PrinterStatus
    from terminal.printer.text import Line as PrinterLine
    from terminal.reader.device import ReaderStats
    from terminal.service.newcard import NewCardState
    from terminal.service.receipt import Receipt
    from terminal.service.signup_form import SignupForm
    from terminal.service.views import MemberView, OperationView, TapResult
    from terminal.service.zreport import ZReport
    from terminal.sync.service import SyncReport, SyncStatus


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class CounterPort(Protocol):
    """What the app asks of ``terminal.service.counter.Counter``: card checks, quotes, journaled operations
    (each returns the receipt built from the committed entry), queries, sign-in and shifts. Every call may block
    on SQLite: the app makes them in thread workers."""

    @property
    def rules(self) -> Rules: ...

    @property
    def verifier(self) -> CardVerifier: ...

    @property
    def store_id(self) -> str | None: ...

    @property
    def offline(self) -> bool: ...

    def tap(self, token: bytes, *, manual: bool = False,
            challenge: Callable[[bytes], bytes] | None = None) -> TapResult: ...

    def member_view(self, card: CardClaims) -> MemberView: ...

    def history(self, card_id: str, n: int = ...) -> list[OperationView]: ...

    def preview_sale(self, card: CardClaims, amount: Money, *, tender: str, coupon_ids: Sequence[str] = (),
                     redeem_points: int = 0) -> SaleQuote: ...

    def sale(self, card: CardClaims, amount: Money, *, tender: str, coupon_ids: Sequence[str] = (),
             redeem_points: int = 0, cashier_id: str | None = None) -> Receipt: ...

    def topup(self, card: CardClaims, amount: Money, *, tender: str, cashier_id: str | None = None) -> Receipt: ...

    def refund(self, orig_uuid: str, amount: Money, *, supervisor: Cashier,
               cashier_id: str | None = None) -> Receipt: ...

    def void(self, orig_uuid: str, *, supervisor: Cashier, cashier_id: str | None = None) -> Receipt: ...

    def redeem(self, card: CardClaims, points: int, item: str, *, cashier_id: str | None = None) -> Receipt: ...

    def redeem_gift(self, card: CardClaims, item_id: str, *, cashier_id: str | None = None) -> Receipt: ...

    def upgrade_tier(self, card: CardClaims, *, cashier_id: str | None = None) -> Receipt: ...

    def signup(self, form: SignupForm, *, store_id: str, cashier_id: str | None = None) -> Receipt: ...
    def pay_membership_fee(self, card: CardClaims, tier: Tier, *, tender: str,
                           cashier_id: str | None = None) -> Receipt: ...

    def update_member(self, member_id: str, *, notes: str | None = None, prefs: Mapping[str, str] | None = None,
                      cashier_id: str | None = None) -> Receipt: ...

    def sign_in(self, cashier_id: str, pin: str) -> Cashier: ...

    def authorize_supervisor(self, cashier_id: str, pin: str) -> Cashier: ...

    def z_report(self, since_ms: int) -> ZReport: ...

    def open_shift(self, shift_id: str, *, cashier_id: str | None = None) -> object: ...

    def close_shift(self, shift_id: str, since_ms: int, *, cashier_id: str | None = None) -> ZReport: ...

    def receipt_copy(self, uuid: str) -> Receipt: ...


class JournalDepthPort(Protocol):
    @property
    def queue_depth(self) -> int:
        """Entries recorded but not yet acknowledged by the ledger."""
        ...


class SyncMarksPort(Protocol):
    @property
    def last_sync_ms(self) -> int | None: ...

    def document_versions(self) -> dict[str, int]: ...

    def get(self, key: str, default: object = None) -> object:
        """A small durable value of this terminal (a cashier's language, ...)."""
        ...

    def set(self, key: str, value: object) -> None: ...


class MemberCachePort(Protocol):
    @property
    def snapshot_version(self) -> int: ...


class CashierCheckPort(Protocol):
    def authenticate(self, cashier_id: str, pin: str, *, now: int) -> Cashier: ...


class StorePort(Protocol):
    """What the app reads from ``terminal.offline.store.TerminalStore`` (in workers: every read is SQLite)."""

    @property
    def journal(self) -> JournalDepthPort: ...

    @property
    def sync_state(self) -> SyncMarksPort: ...

    @property
    def cache(self) -> MemberCachePort: ...

    @property
    def cashiers(self) -> CashierCheckPort: ...


class ReaderPort(Protocol):
    """What the app asks of the reader driver ``terminal.reader.device.ReaderDevice``."""

    @property
    def stats(self) -> ReaderStats:
        """Diagnostics counters, read on the UI thread (the driver keeps them in memory)."""
        ...

    def start(self, *, retry_if_missing: bool = False) -> None: ...

    def stop(self) -> None: ...

    def challenge(self, nonce: bytes, timeout_s: float = 1.0) -> bytes: ...

    def feedback(self, accepted: bool) -> None: ...

    def request_status(self) -> None: ...


class PrinterPort(Protocol):
    """What the app asks of the receipt printer ``terminal.printer.device.ReceiptPrinter``: every call opens the
    printer and waits for its answers, so the app makes them in workers."""

    @property
    def columns(self) -> int:
        """Characters per printed line."""
        ...

    def status(self) -> PrinterStatus: ...

    def print_lines(self, lines: Sequence[PrinterLine]) -> PrinterStatus:
        """Print and cut; raises ``PrinterError`` (one sentence, ``status`` set) when it did not print."""
        ...


class SyncPort(Protocol):
    """What the app asks of ``terminal.sync.service.SyncService`` (its status arrives through a ``Relay``)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def kick(self) -> None:
        """Push now rather than at the next interval (returns at once)."""
        ...

    def sync_once(self) -> SyncReport: ...


def not_allowed(text: str) -> CardposError:
    """The error for a person whose role may not do this (the store's ``CashierRoleError``), built on first use
    so that importing the UI does not load the store."""
    from terminal.offline.cashiers import CashierRoleError

    return CashierRoleError(text)


@dataclass
class AppServices:
    counter: CounterPort
    """``terminal.service.counter.Counter``: tap, sale, topup, refund, void, redeem, upgrade_tier, history, z_report."""
    store: StorePort
    """``terminal.offline.store.TerminalStore``: cashiers, journal depth, document and snapshot versions."""
    data_dir: Path
    """Where receipts/ is written."""
    reader: ReaderPort | None = None
    """``terminal.reader.device.ReaderDevice`` (None: manual entry only)."""
    printer: PrinterPort | None = None
    """``terminal.printer.device.ReceiptPrinter`` (None: receipts are saved as text files in receipts/)."""
    sync: SyncPort | None = None
    """``terminal.sync.service.SyncService`` (None: not enrolled with a ledger)."""
    clock: Callable[[], int] = wall_ms
    """Epoch milliseconds; fixed in tests so screens and receipts are reproducible."""
    tz: tzinfo | None = None
    """Time zone for the clock on screen (None: the machine's local zone)."""
    reader_events: Relay[ReaderEvent] = field(default_factory=Relay)
    sync_status: Relay[SyncStatus] = field(default_factory=Relay)
    test_card: bytes | None = None
    """A card token the technician self-test taps through the real verify path (None: self-test needs a tap)."""
    qr_blocks: QrBlocks = "sextant"
    """How a card's QR code is drawn first (``terminal.qr_blocks``); F7 on the QR screens switches."""
    store_id: str = "store-1"
    """The store this terminal was enrolled at (new members signed up here belong to it)."""
    signup_card: Callable[[str, str], NewCardState] | None = None
    """After a sign-up (its entry uuid, the provisional member id): queue the member's card, ask the ledger for it
    and write it through the reader (``terminal.service.newcard.card_for_signup``; called in a worker)."""
    upgrade_card: Callable[[str, str, str, str], NewCardState] | None = None
    """After a tier upgrade (its entry uuid, the old card id, the member id, the new tier): queue the new card, ask
    the ledger for it and write it through the reader (``terminal.service.newcard.card_for_upgrade``; a worker)."""
    reload_documents: Callable[[], None] | None = None
    """Load the trust list, revocations and rules again after a sync pulled new ones (called in a worker)."""
    on_close: list[Callable[[], None]] = field(default_factory=list)
    """Called once when the app exits (close the store, stop threads started by build_services)."""

    @property
    def receipts_dir(self) -> Path:
        from cardkit.locations import receipts_dir

        return receipts_dir(self.data_dir)
