"""The terminal's composition root: open everything the cashier app talks to, and run the app around it.

``build_services(settings)`` opens the counter (and its store), the reader on ``settings.reader.port``, the
receipt printer on ``settings.printer.url`` and the sync service, and bundles them as the app's ``AppServices``;
``run_app`` runs the app and closes them after. ``cardpos terminal run`` calls both; ``cardpos demo`` builds the
very same app around a simulator.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cardkit.config import PrinterSettings, Settings
from cardkit.errors import CardposError, ConfigError
from terminal.documents import Enrollment, require_enrollment
from terminal.i18n import LANGUAGES
from terminal.printer.device import ReceiptPrinter
from terminal.printer.errors import PrinterError
from terminal.reader.device import ReaderDevice
from terminal.service.counter import Counter
from terminal.service.loader import load_rules, load_verifier, open_counter
from terminal.service.newcard import NewCardState, card_for_signup, card_for_upgrade
from terminal.ui.services import AppServices

if TYPE_CHECKING:
    from terminal.sync.lookup import LedgerLookup
    from terminal.sync.service import SyncService
    from terminal.ui.demo import DemoTapper

TEST_CARD_FILE = "test_card.txt"
"""A card's text form (``CP1:...``) the technician self-test taps through the real verify path (optional)."""



def open_printer(settings: PrinterSettings) -> ReceiptPrinter | None:
    """The receipt printer the settings name (None: no ``printer.url``, receipts are saved as text files).
    Nothing is opened yet: each print job opens the printer. Raises ``ConfigError`` for a URL or mode that cannot
    work."""
    if not settings.url:
        return None
    try:
        return ReceiptPrinter(settings.url, columns=settings.columns,
                              zh_mode="raster" if settings.zh_mode == "raster" else "codepage",
                              cut="partial" if settings.cut == "partial" else "full",
                              font_path=Path(settings.font).expanduser() if settings.font else None)
    except PrinterError as exc:
        raise ConfigError(f"printer.url {settings.url!r}: {exc}", orig=exc) from exc


def build_services(settings: Settings, *, with_sync: bool = True) -> AppServices:
    """Open the counter (and its store), the reader on ``settings.reader.port``, the printer on
    ``settings.printer.url`` and, when the terminal is enrolled with a ledger and ``with_sync``, the sync service.
    Nothing is started: the app starts the reader and sync in workers once its screen is up, and closes everything
    when it exits."""
    printer = open_printer(settings.printer)  # a bad printer URL is refused before anything is opened
    sync_holder: list[SyncService] = []

    def online() -> bool:
        # Stored value offline limits apply whenever the last sync attempt could not reach the ledger.
        return bool(sync_holder and sync_holder[0].status.online)

    counter = open_counter(settings, online=online)
    enrollment = require_enrollment(settings.data_dir)
    services = AppServices(counter=counter, store=counter.store, data_dir=settings.data_dir, printer=printer,
                           store_id=enrollment.store_id,
                           qr_blocks="half" if settings.terminal.qr_blocks == "half" else "sextant")
    reader: ReaderDevice | None = None
    if settings.reader.port:
        reader = ReaderDevice(
            settings.reader.port, baud=settings.reader.baud, on_event=services.reader_events,
            debounce_ms=settings.reader.debounce_ms, heartbeat_timeout_s=settings.reader.heartbeat_timeout_s,
        )
        services.reader = reader
    if with_sync:
        from terminal.sync.service import SyncService, load_identity_key

        sync = SyncService(counter.store, enrollment, load_identity_key(settings.data_dir),
                           settings=settings.sync, on_status=services.sync_status)
        sync_holder.append(sync)
        services.sync = sync
        services.on_close.append(attach_lookups(counter, settings, enrollment).close)

    def signup_card(request: str, provisional_id: str) -> NewCardState:
        # Not syncing: the card is only queued here (``cardpos terminal op newcard`` gets it later).
        syncing = sync_holder[0] if sync_holder else None
        return card_for_signup(counter.store, request=request, provisional_id=provisional_id,
                               settings=settings.sync if syncing else None,
                               sync=syncing.sync_once if syncing else None,
                               writer=(lambda token, key: reader.write_card(token, key)) if reader else None)

    services.signup_card = signup_card

    def upgrade_card(request: str, old_card: str, member_id: str, tier: str) -> NewCardState:
        # The same steps as ``op upgrade``, but written through the app's own reader connection.
        syncing = sync_holder[0] if sync_holder else None
        return card_for_upgrade(counter.store, request=request, old_card=old_card, member_id=member_id, tier=tier,
                                settings=settings.sync if syncing else None,
                                sync=syncing.sync_once if syncing else None,
                                writer=(lambda token, key: reader.write_card(token, key)) if reader else None)

    services.upgrade_card = upgrade_card

    def reload_documents() -> None:
        # A pull may have brought a new trust list, revocations or rules: check cards and price with them.
        counter.verifier = load_verifier(settings.data_dir, enrollment, clock_skew_s=settings.terminal.clock_skew_s)
        counter.rules = load_rules(settings.data_dir, enrollment)

    services.reload_documents = reload_documents
    test_card = settings.data_dir / TEST_CARD_FILE
    if test_card.exists():
        from cardkit.cards.textform import token_from_text

        try:
            services.test_card = token_from_text(test_card.read_text(encoding="ascii", errors="replace"))
        except CardposError as exc:
            raise ConfigError(f"the self-test card file {test_card} does not hold a card's text form ({exc})",
                              orig=exc) from exc
    services.on_close.append(counter.close)
    return services


def attach_lookups(counter: Counter, settings: Settings, enrollment: Enrollment) -> LedgerLookup:
    """Let the counter ask the ledger about members it was not sent and originals recorded elsewhere (issue 14);
    close what this returns when done."""
    from terminal.sync.lookup import LedgerLookup
    from terminal.sync.service import load_identity_key

    lookups = LedgerLookup(settings.data_dir, enrollment, load_identity_key(settings.data_dir),
                           ledger_url=settings.sync.ledger_url or None)
    counter.lookups = lookups
    return lookups


def run_app(services: AppServices, *, lang: str = "en", demo: DemoTapper | None = None) -> None:
    """Run the cashier app until the person quits, then stop the reader and sync and close the store."""
    from terminal.ui.app import CashierApp

    if lang not in LANGUAGES:
        raise ConfigError(f"language {lang!r} is not supported (en or zh)")
    app = CashierApp(services, lang=lang, demo=demo)
    try:
        app.run()
    finally:
        app.close_services()
