"""Issue 14's "Done when", on the cashier's screen with real processes: a store-2 terminal (enrolled with the real
CLI, built by the real composition root, so its counter looks members up online) serves a store-1 member with
name, balance, preferences and notes; after the ledger process stops, a store-1 member it was never sent takes
the unknown-balance path with a clear screen."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from cardkit.config import load_settings
from terminal.compose import build_services
from terminal.ui.app import CashierApp
from terminal.ui.screens.member import MemberScreen
from tests.fixtures.sync import SyncWorld
from tests.fixtures.ui import settle, sign_in, tap, text_of, wait_until

pytestmark = pytest.mark.anyio




def store2_terminal(world: SyncWorld) -> Path:
    """A store-2 terminal enrolled and synced with the real CLI, with cashier c1 (PIN 1111)."""
    from ledger import admin

    server = world.server()
    world.open_admin()
    _, code = admin.add_terminal("store-2 till", "store-2")
    data_dir = world.root / "store-2-till"
    data_dir.mkdir()
    enrolled = world.cardpos(data_dir, "terminal", "enroll", "--ledger", server.url, "--code", code)
    assert enrolled.returncode == 0, enrolled.stderr
    world.add_cashier_and_sync(data_dir)
    return data_dir


async def test_a_store2_till_serves_a_store1_member_then_shows_the_unknown_balance(sync_world: SyncWorld) -> None:
    from ledger import admin

    sync_world.open_admin()
    guest = admin.issue_card(admin.add_member("Li Wei", store_id="store-1", balance=80_000, points=1_200,
                                              notes="allergic to nuts", prefs={"drink": "green tea"}))
    stranger = admin.issue_card(admin.add_member("Zhang Min", store_id="store-1", balance=5_000))
    data_dir = store2_terminal(sync_world)
    services = build_services(load_settings(env=sync_world.terminal_env(data_dir)))
    app = CashierApp(services)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await sign_in(pilot, "c1", "1111")
            await tap(pilot, guest.token)
            await wait_until(pilot, lambda: isinstance(app.screen, MemberScreen), 15, "the member screen")
            await settle(pilot)
            assert text_of(app, "#member-name") == "Li Wei"
            assert "Balance: 800.00 CNY" in text_of(app, "#member-money")
            assert "Points: 1,200" in text_of(app, "#member-money")
            assert "drink=green tea" in text_of(app, "#member-prefs")
            assert "allergic to nuts" in text_of(app, "#member-notes")
            assert not app.screen.query_one("#member-unknown", Static).display
            await pilot.press("escape")
            await settle(pilot)

            sync_world.ledger.stop()
            await tap(pilot, stranger.token)
            await wait_until(pilot, lambda: isinstance(app.screen, MemberScreen), 15, "the member screen")
            await settle(pilot)
            assert text_of(app, "#member-estimate") == "[BALANCE UNKNOWN]"
            money = text_of(app, "#member-money")
            assert "Balance: unknown" in money and "0.00" not in money
            assert "ledger cannot be reached" in text_of(app, "#member-unknown")
    finally:
        app.close_services()
