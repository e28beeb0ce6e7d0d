"""The cashier app with a receipt printer (the real simulator process on a pty): receipts print after the journal,
a printer that runs out of paper during a sale never loses the sale and says so in the status bar, and the
receipt is printed again, once, from the receipt screen and from the member's history; the Z-report prints."""

from __future__ import annotations

import time

import pytest

from terminal.printer.device import ReceiptPrinter
from terminal.ui.screens.member import MemberScreen
from terminal.ui.screens.receipt import ReceiptScreen
from terminal.ui.screens.shift import ShiftScreen
from terminal.ui.screens.signin import SignInScreen
from terminal.ui.widgets.status import StatusBar
from tests.fixtures.printer import PrinterSimFactory
from tests.fixtures.ui import UiWorld, settle, sign_in, tap, text_of

pytestmark = pytest.mark.anyio



def status_text(app) -> str:
    return " ".join(str(app.screen.query_one(StatusBar).render()).split())


def sales(ui_world: UiWorld) -> list:
    return [e for e in ui_world.counter.store.journal.entries() if e.kind == "sale"]


async def test_paper_out_during_a_sale_keeps_the_sale_shows_it_and_a_reprint_prints_once(
        ui_world: UiWorld, printer_sim: PrinterSimFactory) -> None:
    sim = printer_sim()
    assert sim.command("paper 3").startswith("ok paper low")  # three lines left: it runs out mid-receipt
    app = ui_world.app(printer=ReceiptPrinter(sim.port))
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await tap(pilot, ui_world.world.token())
        await pilot.press("s", *"100", "t", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ReceiptScreen)
        [sale] = sales(ui_world)  # journaled before anything was printed
        assert app.screen.receipt.uuid == sale.uuid
        assert f"Printer: OUT OF PAPER, #{sale.seq} not printed" in status_text(app)
        assert text_of(app, "#receipt-file").startswith("Not printed: The printer is out of paper")
        assert "discarded=1" in sim.command("status") and sim.tickets() == []  # no half receipt

        assert sim.command("paper in") == "ok paper ok"
        await pilot.press("p")  # print again, from the receipt screen
        await settle(pilot)
        [ticket] = sim.wait_tickets(1)
        assert "CARDPOS  SALE" in ticket and "88.00 CNY" in ticket and sale.uuid in ticket
        assert "(COPY)" not in ticket  # the receipt itself, with the figures after the sale
        assert "Printer: ready" in status_text(app) and "not printed" not in status_text(app)
        assert text_of(app, "#receipt-file").startswith("Receipt printed.")

        # From the member's history: a copy rebuilt from the journal.
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MemberScreen)
        await pilot.press("p")
        await settle(pilot)
        _, copy = sim.wait_tickets(2)
        assert "CARDPOS  SALE (COPY)" in copy and sale.uuid in copy and "Balance now" not in copy
    time.sleep(0.3)
    assert len(sim.tickets()) == 2 and sales(ui_world) == [sale]  # each print once; one sale


async def test_the_z_report_prints_from_the_shift_screen_and_at_close(
        ui_world: UiWorld, printer_sim: PrinterSimFactory) -> None:
    sim = printer_sim()
    app = ui_world.app(printer=ReceiptPrinter(sim.port, columns=32))
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await tap(pilot, ui_world.world.token())
        await pilot.press("s", *"10", "t", "enter")
        await settle(pilot)
        await pilot.press("enter", "escape", "z")
        await settle(pilot)
        assert isinstance(app.screen, ShiftScreen)
        await pilot.press("p")
        await settle(pilot)
        receipt, report = sim.wait_tickets(2)
        assert "CARDPOS  SALE" in receipt and report.startswith("Z-REPORT  terminal T-COUNTER-1\n")
        assert all(len(line) <= 32 for line in report.splitlines())
        await pilot.press("c", "enter")  # close the shift: journaled, printed, signed out
        await settle(pilot)
        assert isinstance(app.screen, SignInScreen)
        *_, closing = sim.wait_tickets(3)
        assert closing.startswith("Z-REPORT") and "sale" in closing
    assert not list((ui_world.world.data_dir / "receipts").glob("*")), "a printed receipt is not also a file"
