"""Everything the app talks to, bundled so ``cardpos terminal run`` and ``cardpos demo`` build the same app.

The app never opens files, ports or sockets itself: it is handed a counter (verify, quote, journal), the
terminal store (cashiers, journal depth), optionally a reader device and a sync service, and a clock. Their
callbacks (reader events, sync status) go through ``Relay`` objects built with them, which the app attaches to
when it starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

from terminal.reader.events import ReaderEvent
from terminal.ui.relay import Relay


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class AppServices:
    counter: Any
    """``terminal.service.counter.Counter``: tap, sale, topup, refund, void, redeem, upgrade_tier, history, z_report."""
    store: Any
    """``terminal.offline.TerminalStore``: ``.cashiers.authenticate`` and ``.journal.queue_depth``."""
    data_dir: Path
    """Where receipts/ is written."""
    reader: Any | None = None
    """``terminal.reader.device.ReaderDevice`` (None: manual entry only)."""
    sync: Any | None = None
    """``terminal.sync.service.SyncService`` (None: not enrolled with a ledger)."""
    clock: Callable[[], int] = wall_ms
    """Epoch milliseconds; fixed in tests so screens and receipts are reproducible."""
    tz: tzinfo | None = None
    """Time zone for the clock on screen (None: the machine's local zone)."""
    reader_events: Relay[ReaderEvent] = field(default_factory=Relay)
    sync_status: Relay[Any] = field(default_factory=Relay)
    test_card: bytes | None = None
    """A card token the technician self-test taps through the real verify path (None: self-test needs a tap)."""
    reload_documents: Callable[[], None] | None = None
    """Load the trust list, revocations and rules again after a sync pulled new ones (called in a worker)."""
    on_close: list[Callable[[], None]] = field(default_factory=list)
    """Called once when the app exits (close the store, stop threads started by build_services)."""

    @property
    def receipts_dir(self) -> Path:
        from cardkit.locations import receipts_dir

        return receipts_dir(self.data_dir)
