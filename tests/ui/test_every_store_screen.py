"""Issue 14's "Done when", on the cashier's screen with real processes: a store-2 terminal (enrolled with the real
CLI, built by the real composition root, so its counter looks members up online) serves a store-1 member with
name, balance, preferences and notes; after the ledger process stops, a store-1 member it was never sent takes
the unknown-balance path with a clear screen."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from cardkit.config import load_settings
from terminal.compose import build_services
from terminal.ui.app import CashierApp
from terminal.ui.screens.member import MemberScreen
from tests.conftest import REPO_ROOT
from tests.fixtures.sync import SyncWorld
from tests.fixtures.ui import settle, sign_in, tap

pytestmark = pytest.mark.anyio


def text_of(app: Any, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def wait_until(pilot: Any, condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)


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
    env = {**world.terminal_env(data_dir), "CASHIER_PIN": "1111"}
    added = subprocess.run([sys.executable, "-m", "cardpos", "terminal", "cashier", "add", "c1", "--name", "Ana",
                            "--role", "cashier", "--pin-env", "CASHIER_PIN"], env=env, cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    synced = world.cardpos(data_dir, "terminal", "sync", "--once")
    assert synced.returncode == 0, synced.stderr
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
