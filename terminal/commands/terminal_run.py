"""cardpos terminal run: the cashier app.

``build_services(settings)`` opens everything the app talks to (counter, store, reader, sync) so that
``cardpos demo`` can build the very same app around a simulator; ``run_app`` runs it and closes them after.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from cardkit.cliutil import Subparsers, add_common, settings_from_args
from cardkit.config import Settings
from cardkit.errors import CardposError, ConfigError

TEST_CARD_FILE = "test_card.txt"
"""A card's text form (``CP1:...``) the technician self-test taps through the real verify path (optional)."""

if TYPE_CHECKING:
    from terminal.ui.demo import DemoTapper
    from terminal.ui.services import AppServices


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run the cashier and technician app",
        description="Run the cashier and technician app (Textual, keyboard only, 80x24 or larger).",
    )
    add_common(parser)
    parser.add_argument("--lang", choices=("en", "zh"), default=None,
                        help="screen language (default: settings terminal.lang)")
    parser.add_argument("--port", default=None,
                        help="card reader pyserial URL, e.g. /dev/ttyUSB0 or /dev/pts/5 "
                             "(default: settings reader.port)")
    parser.add_argument("--no-sync", action="store_true", help="do not start background sync with the ledger")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if args.port is not None:
        settings.reader.port = args.port
    lang = args.lang or settings.terminal.lang
    services = build_services(settings, with_sync=not args.no_sync)
    run_app(services, lang=lang)
    return 0


def build_services(settings: Settings, *, with_sync: bool = True) -> AppServices:
    """Open the counter (and its store), the reader on ``settings.reader.port`` and, when the terminal is
    enrolled with a ledger and ``with_sync``, the sync service. Nothing is started: the app starts the reader and
    sync in workers once its screen is up, and closes everything when it exits."""
    from terminal.documents import require_enrollment
    from terminal.reader.device import ReaderDevice
    from terminal.service.loader import load_rules, load_verifier, open_counter
    from terminal.ui.services import AppServices

    sync_holder: list[Any] = []

    def online() -> bool:
        # Stored value offline limits apply whenever the last sync attempt could not reach the ledger.
        return bool(sync_holder and sync_holder[0].status.online)

    counter = open_counter(settings, online=online)
    enrollment = require_enrollment(settings.data_dir)
    services = AppServices(counter=counter, store=counter.store, data_dir=settings.data_dir)
    if settings.reader.port:
        services.reader = ReaderDevice(
            settings.reader.port, baud=settings.reader.baud, on_event=services.reader_events,
            debounce_ms=settings.reader.debounce_ms, heartbeat_timeout_s=settings.reader.heartbeat_timeout_s,
        )
    if with_sync:
        from terminal.sync.service import SyncService, load_identity_key

        sync = SyncService(counter.store, enrollment, load_identity_key(settings.data_dir),
                           settings=settings.sync, on_status=services.sync_status)
        sync_holder.append(sync)
        services.sync = sync

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


def run_app(services: AppServices, *, lang: str = "en", demo: DemoTapper | None = None) -> None:
    from terminal.ui.app import CashierApp

    if lang not in ("en", "zh"):
        raise ConfigError(f"language {lang!r} is not supported (en or zh)")
    app = CashierApp(services, lang=lang, demo=demo)
    try:
        app.run()
    finally:
        app.close_services()
