"""The thin slice, end to end, with real processes: a ledger server and the reader simulator as subprocesses,
the simulator on a real pty, the real reader driver, the counter on a real SQLite journal, sync over HTTP.

ledger issues card -> simulator taps it -> reader frame -> offline verify -> member shown -> stored-value sale
journaled (durable) before approval -> sync pushes it encrypted and signed -> ledger applies once and acks ->
the member's balance at the ledger reflects the sale.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from cardkit.core.money import Money
from cardpos.demo.children import CARDPOS
from cardpos.demo.runner import DemoRunner
from cardpos.demo.seed import DEMO_MEMBERS
from terminal.documents import require_enrollment
from terminal.reader.device import ReaderDevice
from terminal.reader.events import CardPresented, ReaderEvent, ReaderState, ReaderStatus
from terminal.service.loader import open_counter
from terminal.sync.service import SyncService, load_identity_key


@pytest.fixture
def demo(tmp_path: Path):
    runner = DemoRunner(tmp_path / "demo")
    try:
        runner.start()
        yield runner
    finally:
        runner.stop()


def _next(events: queue.Queue[ReaderEvent], kind: type, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if isinstance(event, kind) and (kind is not ReaderStatus or event.state == ReaderState.CONNECTED):
            return event
    raise AssertionError(f"no {kind.__name__} event within {timeout_s} s")


def _ledger_member(runner: DemoRunner, member_id: str) -> dict:
    assert runner.setup is not None
    proc = subprocess.run(
        [*CARDPOS, "ledger", "member", "show", member_id, "--json", "--ledger-dir", str(runner.setup.ledger_dir)],
        env=runner.env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_tap_sale_sync_reaches_the_ledger_once(demo: DemoRunner) -> None:
    assert demo.setup is not None
    li_wei = demo.setup.member_ids[0]
    opening = DEMO_MEMBERS[0][2]
    settings = demo.settings()
    events: queue.Queue[ReaderEvent] = queue.Queue()
    reader = ReaderDevice(demo.pty_path, baud=settings.reader.baud, on_event=events.put)
    counter = open_counter(settings)
    enrollment = require_enrollment(settings.data_dir)
    sync = SyncService(counter.store, enrollment, load_identity_key(settings.data_dir), settings=settings.sync)
    reader.start()
    try:
        _next(events, ReaderStatus)
        sync.sync_once()  # pull the member snapshots so the counter shows ledger figures

        assert demo.sim is not None
        assert demo.sim.command("tap 1").startswith("ok")  # wallet card 1: Li Wei's gold card
        presented = _next(events, CardPresented)
        tap = counter.tap(presented.token)
        assert tap.accepted and tap.member is not None
        assert tap.claims.member_id == li_wei
        assert tap.member.state.balance == opening

        receipt = counter.sale(tap.claims, Money.parse("88.00"), tender="sv", cashier_id="1001")
        spent = receipt.payload["sv"]
        assert 0 < spent <= 8800  # the gold discount applies

        # Durable before "approved": another connection to the journal file already sees the entry.
        with sqlite3.connect(settings.db_path) as raw:
            rows = raw.execute("SELECT count(*) FROM journal WHERE uuid = ?", (receipt.uuid,)).fetchone()
        assert rows == (1,)

        report = sync.sync_once()
        assert report.acked_seq >= receipt.seq and report.applied >= 1
        assert counter.store.journal.queue_depth == 0

        view = _ledger_member(demo, li_wei)
        assert view["balance"] == opening - spent

        again = sync.sync_once()  # nothing new: nothing applied twice
        assert again.applied == 0
        assert _ledger_member(demo, li_wei)["balance"] == opening - spent
    finally:
        reader.stop()
        counter.close()
