"""End to end with real processes: a card tapped on the simulator (``cardpos sim`` on a pty) reaches the app
through the real reader driver, the cashier sells on stored value with keys alone, and the sync service pushes
the entry to the real ledger (``cardpos ledger serve``), whose ack marks it synced and whose balance moves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cardkit.config import load_settings
from cardkit.wallet import Wallet, WalletCard
from terminal.compose import build_services
from terminal.ui.app import CashierApp
from terminal.ui.screens.member import MemberScreen
from terminal.ui.screens.receipt import ReceiptScreen
from tests.fixtures.sync import SyncWorld
from tests.fixtures.ui import settle, sign_in, wait_until

pytestmark = pytest.mark.anyio



def enrolled_terminal(world: SyncWorld, member_id: str) -> tuple[Path, str]:
    """A terminal enrolled with the real CLI, a cashier added with the real CLI, a first sync (members pulled),
    and a fresh card for ``member_id`` issued by the ledger; returns (data dir, card text)."""
    from ledger import admin

    server = world.server()
    world.open_admin()
    card = admin.issue_card(member_id)
    _, data_dir = world.enroll("ui-e2e", server.url)
    world.add_cashier_and_sync(data_dir)
    return data_dir, card.token_text


async def test_simulator_tap_to_stored_value_sale_to_ledger_ack(sync_world: SyncWorld, sim_process: Any,
                                                                tmp_path: Path) -> None:
    member_id = "M001"
    balance_before = sync_world.opening[member_id][0]
    data_dir, card_text = enrolled_terminal(sync_world, member_id)
    wallet = Wallet()
    wallet.add(WalletCard(label="Member 1", kind="valid", token_text=card_text))
    wallet.save(tmp_path / "wallet.json")
    sim = sim_process(tmp_path / "wallet.json")

    settings = load_settings(env=sync_world.terminal_env(data_dir))
    settings.reader.port = sim.port
    services = build_services(settings)
    app = CashierApp(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot, "c1", "1111")
        await wait_until(pilot, lambda: app.reader_state == "connected", 15, "the reader to connect")
        await wait_until(pilot, lambda: app.sync_status is not None and app.sync_status.online, 15,
                         "the first sync")
        assert sim.command("tap 1").startswith("ok")
        await wait_until(pilot, lambda: isinstance(app.screen, MemberScreen), 15, "the member screen")
        member_screen = app.screen
        assert isinstance(member_screen, MemberScreen)
        assert member_screen.card.view.balance.minor == balance_before
        await pilot.press("s", *"12.50")
        await settle(pilot)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ReceiptScreen), 15, "the receipt")
        sale = [e for e in services.store.journal.entries() if e.kind == "sale"][-1]
        assert sale.payload["tender"] == "sv" and sale.payload["gross"] == 1_250
        await wait_until(pilot, lambda: services.store.journal.synced_seq >= sale.seq, 30, "the ledger's ack")
        await wait_until(pilot, lambda: app.queue_depth == 0, 15, "the status bar to show an empty queue")
    shown = sync_world.member_show(member_id)
    assert shown["balance"] == balance_before - sale.payload["net"], shown
