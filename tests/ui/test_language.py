"""Every word in the cashier's language: a switch on the idle and member screens, remembered per cashier in the
terminal's store across restarts; and in Chinese, no screen and no receipt shows an English sentence. The second
test drives every screen and every receipt kind (sale, top-up, refund, void, redeem, fee, upgrade, Z-report) in
Chinese through Pilot and the printer simulator, and holds each screen and each ticket to the detector."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from textual.widgets import Input

from cardkit.journal import EntryKind
from terminal.printer.device import ReceiptPrinter
from terminal.ui.screens.dialogs import ConfirmScreen, DeclineScreen, DemoTapScreen, SupervisorScreen
from terminal.ui.screens.fee import FeeScreen
from terminal.ui.screens.idle import IdleScreen
from terminal.ui.screens.manual import ManualEntryScreen
from terminal.ui.screens.member import EditMemberScreen, MemberScreen
from terminal.ui.screens.newcard import NewCardScreen
from terminal.ui.screens.receipt import ReceiptScreen
from terminal.ui.screens.redeem import RedeemScreen
from terminal.ui.screens.refusal import RefusalScreen
from terminal.ui.screens.reverse import ReverseScreen
from terminal.ui.screens.sale import SaleScreen
from terminal.ui.screens.shift import ShiftScreen
from terminal.ui.screens.signin import SignInScreen
from terminal.ui.screens.technician import TechnicianScreen
from terminal.ui.screens.topup import TopUpScreen
from tests.fixtures.cards import key_from_seed
from tests.fixtures.english import english_runs, screen_text
from tests.fixtures.printer import PrinterSimFactory
from tests.fixtures.ui import SUPERVISOR_PIN, TECHNICIAN_PIN, UiWorld, settle, sign_in, tap

pytestmark = pytest.mark.anyio

NAMES = ("Cashier One", "Supervisor One", "Tech One", "Li Na", "Wang Wei", "prefers paper receipts", "Alice gold",
         "Bob forged", "mug", "cardpos terminal op newcard")
"""Names, commands and what members and cashiers typed: shown as they are in every language."""


def test_the_detector_finds_sentences_and_passes_names_and_codes() -> None:
    assert english_runs("金卡折扣 Gold discount -12.00") == ["Gold discount"]
    assert english_runs("读卡器：Reader: none (manual entry)") == ["Reader none manual entry"]
    assert english_runs("会员 Li Na · 余额 1000.00 CNY", NAMES) == []
    assert english_runs("CARDPOS  消费 │ Ctrl+Q 退出 │ Esc：取消 │ English") == []
    assert english_runs("编号 0192f0c2 sale") == []  # one word is not a sentence


async def test_the_language_switch_is_per_cashier_and_survives_a_restart(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        assert "Hold the member card" in screen_text(app)
        await pilot.press("l")  # the idle screen's switch
        await settle(pilot)
        assert isinstance(app.screen, IdleScreen) and "将会员卡放在读卡器上" in screen_text(app)
        await tap(pilot, ui_world.world.token())
        assert isinstance(app.screen, MemberScreen) and "余额：1000.00 CNY" in screen_text(app)
        await pilot.press("l")  # and the member screen's: back to English, the member still shown
        await settle(pilot)
        assert isinstance(app.screen, MemberScreen) and "Balance: 1000.00 CNY" in screen_text(app)
        await pilot.press("l")
        await settle(pilot)
        await pilot.press("escape", "ctrl+l")  # sign out: the terminal's own language again
        await settle(pilot)
        assert isinstance(app.screen, SignInScreen) and "Cashier sign-in" in screen_text(app)
        await sign_in(pilot, "s1", SUPERVISOR_PIN)  # another cashier keeps the terminal's language
        assert "Hold the member card" in screen_text(app)

    restarted = ui_world.app()  # a new app on the same store: c1's choice was kept
    async with restarted.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        assert restarted.tr.lang == "zh" and "将会员卡放在读卡器上" in screen_text(restarted)


class WalletTapper:
    """The demo's card wallet for the app: tapping a card sends it the way the simulated reader does."""

    def __init__(self, ui_world: UiWorld) -> None:
        self.tokens = [ui_world.world.token(), ui_world.world.token(key=key_from_seed(bytes([7]) * 32))]
        self.app: Any = None

    def cards(self) -> list[tuple[int, str, str]]:
        return [(0, "Alice gold", "valid"), (1, "Bob forged", "forged")]

    def accounts(self) -> list[tuple[str, str, str]]:
        """Demo sign-ins, so the sign-in screen's demo panel is checked in Chinese too."""
        return [("cashier", "c1", "1234"), ("supervisor", "s1", "9999"), ("technician", "t1", "7777")]

    def tap(self, index: int) -> None:
        from terminal.reader.events import CardPresented
        from terminal.ui.messages import ReaderEventArrived

        self.app.post_message(ReaderEventArrived(CardPresented(self.tokens[index], False)))


async def test_no_chinese_screen_or_receipt_shows_an_english_sentence(ui_world: UiWorld,
                                                                      printer_sim: PrinterSimFactory) -> None:
    sim = printer_sim()
    tapper = WalletTapper(ui_world)
    app = ui_world.app("zh", printer=ReceiptPrinter(sim.port), demo=tapper)
    tapper.app = app
    seen: list[str] = []
    leaks: list[str] = []

    def check(where: str) -> None:
        text = screen_text(app)
        seen.append(where)
        leaks.extend(f"{where}: {run}" for run in english_runs(text, NAMES))

    def tickets() -> Iterator[str]:
        yield from sim.tickets()

    async with app.run_test(size=(80, 24), notifications=True) as pilot:  # notices are words on screen too
        await pilot.pause()
        check("sign-in")
        await pilot.press(*"c1", "enter", *"9999", "enter")
        await settle(pilot)
        check("sign-in refused")
        app.screen.query_one("#cashier-id", Input).value = ""
        app.screen.query_one("#cashier-id").focus()
        await sign_in(pilot)
        assert isinstance(app.screen, IdleScreen)
        check("idle")

        await pilot.press("m")
        await settle(pilot)
        assert isinstance(app.screen, ManualEntryScreen)
        check("manual entry")
        await pilot.press(*"not a card", "enter")
        await settle(pilot)
        assert isinstance(app.screen, RefusalScreen)
        check("refusal: unreadable")
        await pilot.press("enter", "f2")
        await settle(pilot)
        assert isinstance(app.screen, DemoTapScreen)
        check("demo wallet")
        await pilot.press("down", "enter")  # the forged card
        await settle(pilot)
        assert isinstance(app.screen, RefusalScreen)
        check("refusal: demo card")
        await pilot.press("enter")
        await tap(pilot, ui_world.world.token(key=key_from_seed(bytes([9]) * 32)))
        check("refusal: unknown key")
        await pilot.press("enter")

        # Li Na (gold): a declined sale, then sale, top-up, gift, notes, refund and void.
        await tap(pilot, ui_world.world.token())
        assert isinstance(app.screen, MemberScreen)
        check("member")
        await pilot.press("s", *"2000")
        await settle(pilot)
        assert isinstance(app.screen, SaleScreen)
        check("sale: would be declined")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DeclineScreen)
        check("declined")
        await pilot.press("enter", "t", "c")
        await settle(pilot)
        check("sale: quote")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ReceiptScreen)
        check("receipt: sale")
        await pilot.press("enter", "t", *"500")
        await settle(pilot)
        assert isinstance(app.screen, TopUpScreen)
        check("top-up")
        await pilot.press("enter")
        await settle(pilot)
        check("receipt: top-up")
        await pilot.press("enter", "g")
        await settle(pilot)
        assert isinstance(app.screen, RedeemScreen)
        check("gift")
        await pilot.press("enter")  # the catalogue's first gift
        await settle(pilot)
        check("receipt: redeem")
        await pilot.press("enter", "e")
        await settle(pilot)
        assert isinstance(app.screen, EditMemberScreen)
        check("notes and preferences")
        await pilot.press("escape", "r")
        await settle(pilot)
        assert isinstance(app.screen, ReverseScreen)
        check("refund or void")
        await pilot.press("down", "tab", *"10", "r")  # the sale (under the top-up), 10.00 of it
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen)
        await pilot.press(*"c1", "enter", *"1111", "enter")
        await settle(pilot)
        check("supervisor: not a supervisor")
        app.screen.query_one("#sup-id", Input).value = ""
        app.screen.query_one("#sup-id").focus()
        await pilot.press(*"s1", "enter", *SUPERVISOR_PIN, "enter")
        await settle(pilot)
        assert isinstance(app.screen, ReceiptScreen)
        check("receipt: refund")
        await pilot.press("enter", "r")
        await settle(pilot)
        await pilot.press("v")  # the newest: the top-up
        await settle(pilot)
        await pilot.press(*"s1", "enter", *SUPERVISOR_PIN, "enter")
        await settle(pilot)
        assert isinstance(app.screen, ReceiptScreen) and app.screen.kind == EntryKind.VOID
        check("receipt: void")
        await pilot.press("enter")
        await settle(pilot)
        check("member: history")
        await pilot.press("p")  # reprint the newest from the history: a copy
        await settle(pilot)
        check("member: reprinting")
        await pilot.press("escape")
        await settle(pilot)

        # Wang Wei (standard, near the next tier): a sale reaches it, the upgrade, then a year's fee.
        await tap(pilot, ui_world.world.std_token())
        await pilot.press("s", *"50", "t", "enter")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        check("member: upgrade due")
        await pilot.press("u")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        check("confirm upgrade")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ReceiptScreen)
        check("receipt: upgrade")
        await pilot.press("enter")  # the upgrade's new card: asked for, then written (queued here: no ledger)
        await settle(pilot)
        assert isinstance(app.screen, NewCardScreen)
        check("new card")
        await pilot.press("enter")  # back to idle: the member is served again from a tap (the old card, until
        await settle(pilot)          # this terminal's next pull revokes it)
        await tap(pilot, ui_world.world.std_token())
        await pilot.press("f")
        await settle(pilot)
        assert isinstance(app.screen, FeeScreen)
        check("membership fee")
        await pilot.press("enter")  # a year of preferred, the tier just reached
        await settle(pilot)
        assert isinstance(app.screen, ReceiptScreen) and app.screen.kind == EntryKind.MEMBERSHIP_FEE
        check("receipt: fee")
        await pilot.press("enter", "f")
        await settle(pilot)
        check("membership fee: already paid")
        await pilot.press("enter")  # refused, with a notice
        await settle(pilot)
        check("membership fee: refused")
        await pilot.press("escape", "escape")
        await settle(pilot)

        # The printer runs out of paper: the bar and the notice say so in Chinese.
        sim.command("paper out")
        await tap(pilot, ui_world.world.std_token())
        await pilot.press("s", *"5", "t", "enter")
        await settle(pilot)
        check("receipt: not printed")
        sim.command("paper in")
        await pilot.press("enter", "escape", "z")
        await settle(pilot)
        assert isinstance(app.screen, ShiftScreen)
        check("shift and Z-report")
        await pilot.press("p", "c")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        check("confirm close")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SignInScreen)

        await sign_in(pilot, "t1", TECHNICIAN_PIN)
        await pilot.press("f9")
        await settle(pilot)
        assert isinstance(app.screen, TechnicianScreen)
        await pilot.press("t")
        await settle(pilot)
        check("technician")

    printed = sim.wait_tickets(11)
    kinds = ["消费", "充值", "积分兑换", "退款", "撤销", "撤销（副本）", "消费", "等级升级", "会员费", "Z报表", "Z报表"]
    assert [ticket.split("\n")[0].strip().removeprefix("CARDPOS  ").split("  ")[0] for ticket in printed] == kinds
    for number, ticket in enumerate(tickets(), 1):
        leaks.extend(f"ticket {number}: {run}" for run in english_runs(ticket, NAMES))
    assert len(seen) == 36
    assert leaks == []
