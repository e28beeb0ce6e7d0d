"""The unknown-balance path on the cashier's screen (issue 14): a verified card whose member this terminal was
never sent, while the ledger cannot be reached (the real look-up client against a closed port). The member screen
shows no figures and says what still works; a stored-value sale is declined with the reason and the way out; cash
goes through and earns points the ledger credits later. In English and in Chinese."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from textual.widgets import Static

from terminal import documents
from terminal.sync.lookup import LedgerLookup
from terminal.ui.screens.dialogs import DeclineScreen
from terminal.ui.screens.member import MemberScreen
from terminal.ui.screens.receipt import ReceiptScreen
from terminal.ui.screens.sale import SaleScreen
from tests.fixtures.ui import UiWorld, settle, sign_in, tap, text_of

pytestmark = pytest.mark.anyio



def unreachable_ledger(ui_world: UiWorld) -> LedgerLookup:
    """The look-up the app attaches, aimed at the enrollment's ledger URL, where nothing listens."""
    data_dir = ui_world.world.data_dir
    lookups = LedgerLookup(data_dir, documents.require_enrollment(data_dir), Ed25519PrivateKey.generate(),
                           timeout_s=0.5)
    ui_world.counter.lookups = lookups
    return lookups


async def test_unknown_member_shows_no_balance_and_takes_cash_only(ui_world: UiWorld) -> None:
    lookups = unreachable_ledger(ui_world)
    app = ui_world.app()
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await sign_in(pilot)
            await tap(pilot, ui_world.world.new_member_token())
            assert isinstance(app.screen, MemberScreen)
            assert text_of(app, "#member-estimate") == "[BALANCE UNKNOWN]"
            money = text_of(app, "#member-money")
            assert "Balance: unknown" in money and "Points: unknown" in money and "0.00" not in money
            explain = text_of(app, "#member-unknown")
            assert "ledger cannot be reached" in explain and "cash and bank card only" in explain
            # The sale starts from cash; chosen anyway, stored value is declined with the reason and the way out.
            await pilot.press("s", *"30")
            await settle(pilot)
            assert "Tender: cash" in text_of(app, "#sale-choices")
            await pilot.press("t", "t")  # cash -> bank card -> stored value
            await settle(pilot)
            assert "Tender: stored value" in text_of(app, "#sale-choices")
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(app.screen, DeclineScreen)
            assert "balance is not known" in text_of(app, "#decline-why")
            assert "Take cash or bank card" in text_of(app, "#decline-what")
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(app.screen, SaleScreen)
            await pilot.press("t", "enter")  # back to cash
            await settle(pilot)
            assert isinstance(app.screen, ReceiptScreen)
    finally:
        lookups.close()
    [sale] = [e for e in ui_world.counter.store.journal.entries() if e.kind == "sale"]
    assert sale.payload["tender"] == "cash" and sale.payload["pts_earn"] == 30 and sale.payload["offline"]


async def test_unknown_member_screen_in_chinese(ui_world: UiWorld) -> None:
    lookups = unreachable_ledger(ui_world)
    app = ui_world.app("zh")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await sign_in(pilot)
            await tap(pilot, ui_world.world.new_member_token())
            assert isinstance(app.screen, MemberScreen)
            assert text_of(app, "#member-estimate") == "【余额未知】"
            assert "余额：未知" in text_of(app, "#member-money")
            assert "无法连接总账" in text_of(app, "#member-unknown")
    finally:
        lookups.close()


async def test_a_known_member_shows_no_unknown_balance_line(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await tap(pilot, ui_world.world.token())
        assert isinstance(app.screen, MemberScreen)
        assert not app.screen.query_one("#member-unknown", Static).display
        assert "Balance: 1000.00 CNY" in text_of(app, "#member-money")
