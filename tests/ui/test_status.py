"""The always-visible bars say every state in words (never colour alone), and input stays safe while workers run."""

from __future__ import annotations

import pytest

from terminal.reader.events import ReaderState, ReaderStatus
from terminal.sync.service import SyncStatus
from terminal.ui.messages import ReaderEventArrived, SyncStatusChanged
from terminal.ui.screens.receipt import ReceiptScreen
from terminal.ui.screens.sale import SaleScreen
from terminal.ui.widgets.status import StatusBar
from tests.fixtures.ui import UiWorld, settle, sign_in, tap

pytestmark = pytest.mark.anyio


def status_text(app) -> str:
    return str(app.screen.query_one(StatusBar).render())


async def test_reader_and_network_states_are_spelled_out(ui_world: UiWorld) -> None:
    now = ui_world.clock_ms()
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        assert "Reader: none (manual entry)" in status_text(app)
        assert "Synced 14:13" in status_text(app)  # the counter world synced at its fixed "now"
        app.post_message(ReaderEventArrived(ReaderStatus(ReaderState.RECONNECTING, "port gone")))
        app.post_message(SyncStatusChanged(SyncStatus(online=False, offline_since_ms=now - 3_600_000,
                                                      queue_depth=42, last_sync_ms=now - 86_400_000 - 60_000,
                                                      last_error="the ledger cannot be reached")))
        await settle(pilot)
        text = status_text(app)
        assert "Reader: reconnecting" in text
        assert "Network: OFFLINE since 13:13" in text
        assert "Queue: 42" in text
        assert "Synced 09-20 14:12" in text  # a sync from another day shows its date
        assert app.sync_log and "the ledger cannot be reached" in app.sync_log[-1]
        app.post_message(ReaderEventArrived(ReaderStatus(ReaderState.CONNECTED)))
        app.post_message(SyncStatusChanged(SyncStatus(online=True, offline_since_ms=None, queue_depth=0,
                                                      last_sync_ms=now, last_error=None)))
        await settle(pilot)
        text = status_text(app)
        assert "Reader: connected" in text and "Network: online" in text and "Queue: 0" in text


async def test_status_words_in_chinese(ui_world: UiWorld) -> None:
    app = ui_world.app("zh")
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        app.post_message(ReaderEventArrived(ReaderStatus(ReaderState.ERROR, "unplugged")))
        await settle(pilot)
        assert "读卡器：故障" in status_text(app)


async def test_enter_pressed_twice_records_one_sale(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await tap(pilot, ui_world.world.token())
        await pilot.press("s", *"10", "t")
        await settle(pilot)
        sale_screen = app.screen
        assert isinstance(sale_screen, SaleScreen)
        # Two Enters inside the same moment, before the journal write can finish: the second is ignored.
        sale_screen.action_confirm()
        sale_screen.action_confirm()
        await settle(pilot)
        assert isinstance(app.screen, ReceiptScreen)
    sales = [e for e in ui_world.counter.store.journal.entries() if e.kind == "sale"]
    assert len(sales) == 1
