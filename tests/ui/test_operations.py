"""Every counter flow driven with keys alone through the real counter and journal: sale (tier discount, coupon,
points, tenders), declines with the reason and the way out, top-up with bonus, refund and void with a supervisor
PIN, tier upgrade, notes/preferences, shift close with a Z-report, and the technician screen."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input

from terminal.ui.screens.dialogs import DeclineScreen, SupervisorScreen
from terminal.ui.screens.fee import FeeScreen
from terminal.ui.screens.member import MemberScreen
from terminal.ui.screens.receipt import ReceiptScreen
from terminal.ui.screens.redeem import RedeemScreen
from terminal.ui.screens.sale import SaleScreen
from terminal.ui.screens.signin import SignInScreen
from terminal.ui.screens.technician import TechnicianScreen
from tests.fixtures.ui import SUPERVISOR_PIN, TECHNICIAN_PIN, UiWorld, settle, sign_in, tap, text_of

pytestmark = pytest.mark.anyio



def entries(ui_world: UiWorld, kind: str) -> list:
    return [e for e in ui_world.counter.store.journal.entries() if e.kind == kind]


async def open_member(pilot, ui_world: UiWorld, token: bytes | None = None) -> None:
    await sign_in(pilot)
    await tap(pilot, token or ui_world.world.token())
    assert isinstance(pilot.app.screen, MemberScreen)


async def test_stored_value_sale_applies_the_tier_discount_and_prints_a_receipt(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_member(pilot, ui_world)
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, SaleScreen)
        await pilot.press(*"100")
        await settle(pilot)
        quote = text_of(app, "#sale-quote")
        assert "Gross 100.00 CNY" in quote and "-12.00 CNY" in quote and "To pay 88.00 CNY by stored value" in quote
        assert "Points earned: 132" in quote
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ReceiptScreen)
        receipt = text_of(app, "#receipt-text")
        assert "SALE" in receipt and "TOTAL" in receipt and "88.00 CNY" in receipt
        assert "APPROVED" in text_of(app, "#receipt-approved")
        # Back to the member, whose figures now include the sale.
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MemberScreen)
        assert "912.00 CNY" in text_of(app, "#member-money")
    [sale] = entries(ui_world, "sale")
    assert sale.payload["tender"] == "sv" and sale.payload["net"] == 8_800 and sale.payload["sv"] == 8_800
    assert sale.cashier_id == "c1"
    files = list((ui_world.world.data_dir / "receipts").glob("*-sale.txt"))
    assert len(files) == 1 and "88.00 CNY" in files[0].read_text(encoding="utf-8")


async def test_sale_with_coupon_points_and_cash_tender(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_member(pilot, ui_world)
        await pilot.press("s", *"100.5")
        await pilot.press("c")  # first usable coupon: C10 (10.00 off over 50.00)
        await pilot.press("t")  # stored value -> cash
        await pilot.press("tab", *"200")  # points field
        await settle(pilot)
        choices = text_of(app, "#sale-choices")
        assert "C10" in choices and "Tender: cash" in choices
        quote = text_of(app, "#sale-quote")
        assert "Gross 100.50 CNY" in quote and "points (200) -2.00 CNY" in quote
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ReceiptScreen)
    [sale] = entries(ui_world, "sale")
    assert sale.payload["coupons"] == ["C10"] and sale.payload["pts_redeem"] == 200
    assert sale.payload["tender"] == "cash" and sale.payload["sv"] == 0
    assert sale.payload["gross"] == 10_050


async def test_insufficient_balance_is_declined_with_what_to_do(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_member(pilot, ui_world)
        await pilot.press("s", *"2000")
        await settle(pilot)
        assert "Would be declined: Stored value is 1000.00 CNY" in text_of(app, "#sale-quote")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DeclineScreen)
        assert "Stored value is 1000.00 CNY but 1760.00 CNY is needed" in text_of(app, "#decline-why")
        assert "Top up the card first" in text_of(app, "#decline-what")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SaleScreen)  # the cashier can change the tender and go on
        await pilot.press("t", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ReceiptScreen)
    assert [e.payload["tender"] for e in entries(ui_world, "sale")] == ["cash"]


async def test_offline_limit_is_declined_and_nothing_is_journaled(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_member(pilot, ui_world)
        await pilot.press("s", *"600", "enter")
        await settle(pilot)
        assert isinstance(app.screen, DeclineScreen)
        assert "cannot be used offline" in text_of(app, "#decline-why")
        assert "offline limit" in text_of(app, "#decline-what")
    assert entries(ui_world, "sale") == []


async def test_declines_are_explained_in_chinese(ui_world: UiWorld) -> None:
    app = ui_world.app("zh")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_member(pilot, ui_world)
        await pilot.press("s", *"2000", "enter")
        await settle(pilot)
        assert isinstance(app.screen, DeclineScreen)
        assert text_of(app, "#decline-what").startswith("处理方法：请先充值")


async def test_topup_shows_and_adds_the_bonus(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_member(pilot, ui_world)
        await pilot.press("t", *"500")
        await settle(pilot)
        assert "bonus 50.00 CNY = 550.00 CNY" in text_of(app, "#topup-quote")
        await pilot.press("t")  # cash -> bank card
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ReceiptScreen)
        await pilot.press("enter")
        await settle(pilot)
        assert "1550.00 CNY" in text_of(app, "#member-money")
    [topup] = entries(ui_world, "topup")
    assert topup.payload["amount"] == 50_000 and topup.payload["bonus"] == 5_000
    assert topup.payload["tender"] == "bank_card"


async def test_refund_needs_a_supervisor_pin_at_the_moment_of_use(ui_world: UiWorld) -> None:
    from cardkit.core.money import Money

    counter = ui_world.counter
    claims = counter.tap(ui_world.world.token()).claims
    sale = counter.sale(claims, Money(10_000, "CNY"), tender="sv", cashier_id="c1")
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_member(pilot, ui_world)
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("tab", *"20", "r")
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen)
        # A cashier cannot approve their own refund.
        await pilot.press(*"c1", "enter", *"1111", "enter")
        await settle(pilot)
        assert "needs a supervisor" in text_of(app, "#sup-error")
        app.screen.query_one("#sup-id", Input).value = ""
        app.screen.query_one("#sup-id").focus()
        await pilot.press("s")  # the refusal goes once the next person types
        await pilot.pause()
        assert text_of(app, "#sup-error") == ""
        await pilot.press("1", "enter", *SUPERVISOR_PIN, "enter")
        await settle(pilot)
        assert isinstance(app.screen, ReceiptScreen)
        assert "REFUND" in text_of(app, "#receipt-text")
    [refund] = entries(ui_world, "refund")
    assert refund.payload["orig"] == sale.uuid and refund.payload["amount"] == 2_000
    assert refund.payload["supervisor"] == "s1"


async def test_void_of_a_topup_with_supervisor_and_cancel_leaves_nothing(ui_world: UiWorld) -> None:
    from cardkit.core.money import Money

    counter = ui_world.counter
    claims = counter.tap(ui_world.world.token()).claims
    topup = counter.topup(claims, Money(20_000, "CNY"), tender="cash", cashier_id="c1")
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_member(pilot, ui_world)
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert entries(ui_world, "void") == []
        await pilot.press("v")
        await settle(pilot)
        await pilot.press(*"s1", "enter", *SUPERVISOR_PIN, "enter")
        await settle(pilot)
        assert isinstance(app.screen, ReceiptScreen)
        assert "VOID" in text_of(app, "#receipt-text")
    [void] = entries(ui_world, "void")
    assert void.payload["orig"] == topup.uuid and void.payload["sv"] == -21_000


async def test_tier_upgrade_is_offered_once_due(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_member(pilot, ui_world, ui_world.world.std_token())  # standard, 1950.00 spent this year
        assert not app.screen.query_one("#member-upgrade").display
        await pilot.press("s", *"50", "t", "enter")  # 50.00 cash reaches 2000.00
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MemberScreen)
        assert "Qualifies for Preferred" in text_of(app, "#member-upgrade")
        await pilot.press("u")
        await settle(pilot)
        await pilot.press("enter")  # confirm
        await settle(pilot)
        assert isinstance(app.screen, ReceiptScreen)
        assert "TIER UPGRADE" in text_of(app, "#receipt-text")
    [upgrade] = entries(ui_world, "tier_upgrade")
    assert upgrade.payload["to"] == "preferred"


async def test_notes_and_preferences_are_saved_through_the_journal(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_member(pilot, ui_world)
        await pilot.press("e")
        await settle(pilot)
        app.screen.query_one("#edit-notes", Input).value = "no peanuts [allergy]"
        app.screen.query_one("#edit-prefs", Input).value = "lang=zh; seat=window"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, MemberScreen)
        assert "no peanuts [allergy]" in text_of(app, "#member-notes")
        assert "seat=window" in text_of(app, "#member-prefs")
    [update] = entries(ui_world, "member_update")
    assert update.payload == {"member": "M0001", "notes": "no peanuts [allergy]",
                              "prefs": {"lang": "zh", "seat": "window"}}


async def test_shift_close_shows_the_z_report_journals_it_and_signs_out(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_member(pilot, ui_world)
        await pilot.press("s", *"100", "t", "enter")
        await settle(pilot)
        await pilot.press("enter", "escape")
        await settle(pilot)
        await pilot.press("z")
        await settle(pilot)
        report = text_of(app, "#z-report")
        assert "Z-REPORT" in report and "sale" in report and "88.00 CNY" in report
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SignInScreen)
    assert len(entries(ui_world, "shift_open")) == 1
    [close] = entries(ui_world, "shift_close")
    assert close.payload["totals"]["counts"]["sale"] == 1
    assert list((ui_world.world.data_dir / "receipts").glob("*z_report*")) or list(
        (ui_world.world.data_dir / "receipts").glob("*shift*"))


async def test_technician_screen_needs_a_technician_and_runs_the_self_test(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("f9")
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen)
        await pilot.press(*"t1", "enter", *TECHNICIAN_PIN, "enter")
        await settle(pilot)
        assert isinstance(app.screen, TechnicianScreen)
        docs = text_of(app, "#tech-docs")
        assert "Trust list: version 1" in docs and "Rules: version 7" in docs
        assert "No card reader configured" in text_of(app, "#tech-reader")
        await pilot.press("t")
        await settle(pilot)
        assert text_of(app, "#tech-selftest") == "PASS: the test card was accepted."


async def test_a_gift_is_chosen_from_the_catalogue_and_spends_its_points(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_member(pilot, ui_world)
        await pilot.press("g")
        await settle(pilot)
        assert isinstance(app.screen, RedeemScreen)
        table = app.screen.query_one("#gift-table", DataTable)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        assert rows[:2] == [["Coffee mug", "100", "mug", "enough points"],
                            ["Canvas tote bag", "300", "tote", "enough points"]]
        assert ["Folding umbrella", "800", "umbrella", "300 short"] in rows
        await pilot.press("down")  # nothing is typed: the cursor picks the gift, the rules give its points
        await settle(pilot)
        assert text_of(app, "#gift-choice") == "Chosen: Canvas tote bag for 300 points."
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ReceiptScreen)
        assert "POINTS REDEMPTION" in text_of(app, "#receipt-text")
        assert "Canvas tote bag" in text_of(app, "#receipt-text")  # the gift's name, not its code
        await pilot.press("enter")
        await settle(pilot)
        assert "Points: 200" in text_of(app, "#member-money")
        await pilot.press("g", "down", "down", "enter")  # the umbrella: 800 points, the member has 200
        await settle(pilot)
        assert isinstance(app.screen, DeclineScreen)
    [redeem] = entries(ui_world, "redeem")
    assert redeem.payload["pts"] == 300 and redeem.payload["item"] == "tote"


async def test_the_membership_fee_screen_sells_a_year_and_refuses_a_paid_one(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_member(pilot, ui_world)  # Li Na, gold, no fee paid
        await pilot.press("f")
        await settle(pilot)
        assert isinstance(app.screen, FeeScreen)
        assert text_of(app, "#fee-member") == "Li Na · Gold · no fee paid"
        table = app.screen.query_one("#fee-table", DataTable)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        assert rows == [["Preferred", "99.00 CNY", "10% off every sale, points 1.25x"],
                        ["Gold", "299.00 CNY", "12% off every sale, points 1.5x"],
                        ["Platinum", "599.00 CNY", "15% off every sale, points 2x"]]
        await pilot.press("down")
        await settle(pilot)
        assert text_of(app, "#fee-choice") == "Gold for 299.00 CNY: paid until 2027-09-21."
        await pilot.press("t")  # cash -> bank card
        await settle(pilot)
        assert text_of(app, "#fee-tender") == "Paid by: bank card"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ReceiptScreen)
        await pilot.press("enter", "f", "down")
        await settle(pilot)
        assert text_of(app, "#fee-member") == "Li Na · Gold · paid until 2027-09-21"
        assert text_of(app, "#fee-choice") == "Already paid: Gold until 2027-09-21. Nothing to pay now."
        await pilot.press("enter")  # refused: a paid year is not sold again
        await settle(pilot)
        assert isinstance(app.screen, FeeScreen)
        await pilot.press("up", "enter")  # preferred is below gold: the counter declines it
        await settle(pilot)
        assert isinstance(app.screen, FeeScreen)
    [fee] = entries(ui_world, "membership_fee")
    assert (fee.payload["tier"], fee.payload["amount"], fee.payload["tender"]) == ("gold", 29_900, "bank_card")


async def test_a_key_the_screen_takes_nothing_for_says_so(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await open_member(pilot, ui_world)
        await pilot.press("x")  # nothing on the member screen: said, not silently dropped
        await settle(pilot)
        assert [n.message for n in app._notifications] == [
            "X does nothing here; the keys this screen takes are at the bottom."]
        await pilot.press("s", *"12")  # the keypad and bound keys say nothing of the kind
        await settle(pilot)
        assert isinstance(app.screen, SaleScreen) and len(list(app._notifications)) == 1
