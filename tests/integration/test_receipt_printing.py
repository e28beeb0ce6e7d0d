"""Receipts and the Z-report on the receipt printer, through the real simulator process on a pty: what the
counter recorded is what comes out on paper, in English and in Chinese; ``cardpos terminal op`` prints when a
printer is configured, keeps the operation when the printer cannot print, and reprints it from the journal."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from cardkit.core.money import Money
from terminal.i18n import CASHIER_LANGUAGE_KEY, EN, Words
from terminal.offline.store import TerminalStore
from terminal.printer.device import ReceiptPrinter
from tests.conftest import CARDPOS
from tests.fixtures.counter import TERMINAL_ID, CounterWorld
from tests.fixtures.printer import PrinterSimFactory

ZH = Words("zh")


def paper(lines: list[str]) -> str:
    """What the simulator's ticket file holds for these printed lines."""
    return "".join(f"{line}\n" for line in lines)


def test_a_sale_receipt_and_the_z_report_print_in_english_and_chinese(counter_world: CounterWorld,
                                                                      printer_sim: PrinterSimFactory) -> None:
    sim = printer_sim()
    printer = ReceiptPrinter(sim.port)
    counter = counter_world.counter()
    claims = counter.tap(counter_world.token()).claims
    receipt = counter.sale(claims, Money(10_000, "CNY"), tender="sv", coupon_ids=["C10"], cashier_id="c1")
    report = counter.z_report(0)
    for words in (EN, ZH):
        printer.print_lines(receipt.printed(words, printer.columns))
        printer.print_lines(report.printed(words, printer.columns))
    en_sale, en_report, zh_sale, zh_report = sim.wait_tickets(4)
    assert [en_sale, en_report, zh_sale, zh_report] == [
        paper(receipt.printed(EN, 48)), paper(report.printed(EN, 48)),
        paper(receipt.printed(ZH, 48)), paper(report.printed(ZH, 48))]

    def row(text: str, left: str, right: str) -> bool:
        return any(line.startswith(left) and line.endswith(right) for line in text.splitlines())

    assert en_sale.splitlines()[0].strip() == "CARDPOS  SALE"
    assert row(en_sale, "Gold discount", "-12.00") and row(en_sale, "Coupons C10", "-10.00")
    assert row(en_sale, "TOTAL", "78.00 CNY") and row(en_sale, "Paid by", "stored value")
    assert row(en_sale, "Balance now", "922.00") and en_sale.splitlines()[-1] == f"Ref {receipt.uuid}"
    assert zh_sale.splitlines()[0].strip() == "CARDPOS  消费"
    assert row(zh_sale, "金卡折扣", "-12.00") and row(zh_sale, "优惠券 C10", "-10.00")
    assert row(zh_sale, "合计", "78.00 CNY") and row(zh_sale, "支付方式", "储值") and row(zh_sale, "当前余额", "922.00")
    assert row(zh_sale, "终端 T-COUNTER-1", f"#{receipt.seq}") and f"编号 {receipt.uuid}" in zh_sale

    assert en_report.splitlines()[0] == "Z-REPORT  terminal T-COUNTER-1"
    assert row(en_report, "sale", "1") and row(en_report, "  stored value", "78.00 CNY")
    assert zh_report.splitlines()[0] == "Z报表  终端 T-COUNTER-1"
    assert row(zh_report, "消费", "1") and row(zh_report, "  储值", "78.00 CNY") and row(zh_report, "发放积分", "117")


def test_a_gift_receipt_names_the_gift_in_the_receipts_language_on_paper_and_on_its_copy(
        counter_world: CounterWorld, printer_sim: PrinterSimFactory) -> None:
    sim = printer_sim()
    printer = ReceiptPrinter(sim.port)
    counter = counter_world.counter()
    claims = counter.tap(counter_world.token()).claims
    receipt = counter.redeem_gift(claims, "tote", cashier_id="c1")
    copy = counter.receipt_copy(receipt.uuid)  # the reprint from the journal names it too
    for words in (EN, ZH):
        printer.print_lines(receipt.printed(words, printer.columns))
        printer.print_lines(copy.printed(words, printer.columns))
    en_gift, en_copy, zh_gift, zh_copy = sim.wait_tickets(4)
    for ticket in (en_gift, en_copy):
        gift = [line for line in ticket.splitlines() if line.startswith("Gift ")]
        assert len(gift) == 1 and gift[0].endswith(" Canvas tote bag"), ticket
    for ticket in (zh_gift, zh_copy):
        gift = [line for line in ticket.splitlines() if line.startswith("礼品 ")]
        assert len(gift) == 1 and gift[0].endswith(" 帆布袋"), ticket
    assert "tote" not in zh_gift  # the name, not the catalogue's code
    assert receipt.to_dict()["lines"][0] == ["Gift", "Canvas tote bag"]


# -- cardpos terminal op ------------------------------------------------------------------------------------------
def op(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CARDPOS, "terminal", "op", *args, "--json"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def answer(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_terminal_op_prints_keeps_a_sale_the_printer_refused_and_reprints_it(
        cli_world: CounterWorld, clean_env: dict[str, str], printer_sim: PrinterSimFactory) -> None:
    sim = printer_sim()
    env = {**clean_env, "CARDPOS_PRINTER_URL": sim.port}
    card = cli_world.text()
    with TerminalStore.open(cli_world.data_dir, TERMINAL_ID) as store:  # c1 chose Chinese in the app
        store.sync_state.set(CASHIER_LANGUAGE_KEY.format(cashier_id="c1"), "zh")

    printed = answer(op(env, "sale", "20.00", "--card", card, "--tender", "cash", "--cashier", "c1"))
    assert printed["printed"] is True
    [ticket] = sim.wait_tickets(1)
    assert "合计" in ticket and "17.60 CNY" in ticket and printed["uuid"] in ticket

    assert "printed" not in answer(op(env, "topup", "50.00", "--card", card, "--no-print"))
    sim.command("paper out")
    refused = op(env, "sale", "30.00", "--card", card, "--tender", "cash")
    kept = answer(refused)
    assert (kept["ok"], kept["printed"], kept["print_error"]) == (True, False, "The printer is out of paper.")
    assert refused.stderr == (f"cardpos: not printed: The printer is out of paper. (recorded; print it again with "
                              f"'cardpos terminal op reprint {kept['uuid']}')\n")
    assert sim.tickets() == [ticket]  # nothing for the topup (--no-print) nor the refused sale

    sim.command("paper in")
    copy = answer(op(env, "reprint", kept["uuid"]))
    assert copy["printed"] is True and copy["uuid"] == kept["uuid"]
    _, second = sim.wait_tickets(2)
    assert "SALE (COPY)" in second and "26.40 CNY" in second and kept["uuid"] in second  # terminal language: en
