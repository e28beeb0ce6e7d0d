"""The app on the real reader path: the simulator process on a pty, the real ReaderDevice thread, and the demo
panel (F2) tapping wallet cards through the simulator's console, as ``cardpos demo`` wires it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cardkit.cards.textform import token_to_text
from cardkit.wallet import Wallet, WalletCard
from terminal.reader.device import ReaderDevice
from terminal.ui.app import CashierApp
from terminal.ui.screens.dialogs import DemoTapScreen
from terminal.ui.screens.member import MemberScreen
from terminal.ui.screens.refusal import RefusalScreen
from terminal.ui.widgets.status import StatusBar
from tests.fixtures.cards import key_from_seed
from tests.fixtures.ui import UiWorld, settle, sign_in, wait_until

pytestmark = pytest.mark.anyio


class SimTapper:
    """A DemoTapper over the simulator's console, the way ``cardpos demo`` implements it."""

    def __init__(self, sim: Any, wallet: Wallet) -> None:
        self.sim = sim
        self.wallet = wallet

    def cards(self) -> list[tuple[int, str, str]]:
        return [(i, card.label, card.kind) for i, card in enumerate(self.wallet.cards, start=1)]

    def accounts(self) -> list[tuple[str, str, str]]:
        return []

    def tap(self, index: int) -> None:
        reply = self.sim.command(f"tap {index}")
        assert reply.startswith("ok"), reply



@pytest.fixture
def wallet(ui_world: UiWorld, tmp_path: Path) -> tuple[Wallet, Path]:
    world = ui_world.world
    w = Wallet()
    w.add(WalletCard(label="Li Na (gold)", kind="valid", token_text=token_to_text(world.token())))
    w.add(WalletCard(label="Forged copy", kind="forged",
                     token_text=token_to_text(world.token(key=key_from_seed(bytes([9]) * 32)))))
    path = tmp_path / "wallet.json"
    w.save(path)
    return w, path


async def test_demo_panel_taps_wallet_cards_through_the_simulated_reader(
        ui_world: UiWorld, sim_process: Any, wallet: tuple[Wallet, Path]) -> None:
    cards, path = wallet
    sim = sim_process(path)
    services = ui_world.services()
    services.reader = ReaderDevice(sim.port, on_event=services.reader_events, debounce_ms=200)
    app = CashierApp(services, demo=SimTapper(sim, cards))
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await wait_until(pilot, lambda: app.reader_state == "connected", 15, "the reader to connect")
        assert "Reader: connected" in str(app.screen.query_one(StatusBar).render())
        await pilot.press("f2")
        await settle(pilot)
        assert isinstance(app.screen, DemoTapScreen)
        await pilot.press("enter")  # the first card: genuine
        await wait_until(pilot, lambda: isinstance(app.screen, MemberScreen), 15, "the member screen")
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("f2", "down", "enter")  # the forged copy
        await wait_until(pilot, lambda: isinstance(app.screen, RefusalScreen), 15, "the refusal")
        refusal = app.screen
        assert isinstance(refusal, RefusalScreen) and refusal.reason.value == "bad_signature"
        # Unplugging the reader shows in words on the status bar, and replugging recovers without a restart.
        assert sim.command("unplug").startswith("ok")
        await wait_until(pilot, lambda: app.reader_state != "connected", 15, "the reader to be seen gone")
        assert "Reader: connected" not in str(app.screen.query_one(StatusBar).render())
        assert sim.command("replug").startswith("ok")
        await wait_until(pilot, lambda: app.reader_state == "connected", 15, "the reader to reconnect")


async def test_anti_copy_card_answers_the_challenge_and_a_clone_is_refused(
        ui_world: UiWorld, sim_process: Any, tmp_path: Path) -> None:
    from tests.fixtures.cards import CARD_KEY_SEED

    world = ui_world.world
    text = token_to_text(world.cards.challenge_token())
    cards = Wallet()
    cards.add(WalletCard(label="Li Na (anti-copy)", kind="challenge", token_text=text,
                         card_private_key_hex=CARD_KEY_SEED.hex()))
    cards.add(WalletCard(label="Copied card", kind="cloned", token_text=text,
                         card_private_key_hex=(bytes([8]) * 32).hex()))  # the token copied, not the card's key
    path = tmp_path / "wallet.json"
    cards.save(path)
    sim = sim_process(path)
    services = ui_world.services()
    services.reader = ReaderDevice(sim.port, on_event=services.reader_events, debounce_ms=200)
    app = CashierApp(services, demo=SimTapper(sim, cards))
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await wait_until(pilot, lambda: app.reader_state == "connected", 15, "the reader to connect")
        await pilot.press("f2", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MemberScreen), 15, "the member screen")
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("f2", "down", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, RefusalScreen), 15, "the refusal")
        refusal = app.screen
        assert isinstance(refusal, RefusalScreen) and refusal.reason.value == "challenge_failed"


async def test_a_missing_reader_is_shown_and_the_app_still_works(ui_world: UiWorld, tmp_path: Path) -> None:
    services = ui_world.services()
    services.reader = ReaderDevice(str(tmp_path / "no-such-reader"), on_event=services.reader_events)
    app = CashierApp(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await wait_until(pilot, lambda: "does not exist" in app.reader_detail, 10, "the reader's report")
        text = str(app.screen.query_one(StatusBar).render())
        assert "Reader: ERROR" in text or "Reader: reconnecting" in text
        await pilot.press("m")  # manual entry still works
        await settle(pilot)
        assert type(app.screen).__name__ == "ManualEntryScreen"
