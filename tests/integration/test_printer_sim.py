"""The receipt printer driver against the real simulator process, on a pty and over TCP: what is printed is
exactly what was laid out, a cut ends a ticket, and a printer that cannot print refuses in one sentence without
leaving half a receipt behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from terminal.printer.device import ReceiptPrinter
from terminal.printer.errors import PrinterError
from terminal.printer.status import OFFLINE, STATUS_REQUEST, PrinterStatus
from terminal.printer.text import Line, layout
from tests.conftest import CARDPOS, REPO_ROOT
from tests.fixtures.printer import PrinterSimFactory

RECEIPT: list[Line] = [
    "  CARDPOS  SALE",
    ("Terminal T-0001", "#12"),
    ("会员 张三", "卡 0001"),
    "-" * 40,
    ("Coffee beans 咖啡豆 1 kg", "128.00"),
    ("合计 Total", "128.00 CNY"),
    "OFFLINE: figures confirmed at next sync",
    "谢谢惠顾，欢迎再次光临！Thank you for shopping with us, see you again soon.",
]
SECOND: list[Line] = ["Z-REPORT  terminal T-0001", ("sale", "3"), ("  sv", "300.00 CNY")]


def as_printed(lines: list[Line], columns: int = 48) -> str:
    return "".join(f"{line}\n" for line in layout(lines, columns))


def test_a_receipt_prints_on_a_pty_exactly_as_laid_out(printer_sim: PrinterSimFactory) -> None:
    sim = printer_sim()
    printer = ReceiptPrinter(sim.port)
    status = printer.print_lines(RECEIPT)
    assert status.ready and not status.paper_low
    [text] = sim.wait_tickets(1)
    assert text == as_printed(RECEIPT)
    assert "会员 张三" in text and text.count("\n") == len(layout(RECEIPT, 48)) == 9  # the thank-you wrapped
    png = Image.open(sim.out_dir / "ticket-0001.png")
    assert png.format == "PNG" and png.size == (48 * 12 + 32, 9 * 30 + 32)
    assert png.convert("L").getextrema() == (0, 255)  # ink on paper

    # The serial:// form of the same port, with a baud rate, prints the next ticket.
    ReceiptPrinter(f"serial://{sim.port}?baud=19200").print_lines(SECOND)
    assert sim.wait_tickets(2)[1] == as_printed(SECOND)


def test_a_receipt_prints_over_tcp_as_a_network_printer(printer_sim: PrinterSimFactory) -> None:
    sim = printer_sim("--tcp", "0")
    ReceiptPrinter(sim.tcp_url).print_lines(RECEIPT)  # python-escpos Network
    ReceiptPrinter(sim.port).print_lines(SECOND)  # the same port through pyserial's socket://
    assert sim.wait_tickets(2) == [as_printed(RECEIPT), as_printed(SECOND)]


def test_a_cut_separates_two_tickets(printer_sim: PrinterSimFactory) -> None:
    sim = printer_sim()
    printer = ReceiptPrinter(sim.port, columns=32)
    printer.print_program(printer.program(RECEIPT) + printer.program(SECOND))  # one write, two cuts
    assert sim.wait_tickets(2) == [as_printed(RECEIPT, 32), as_printed(SECOND, 32)]
    assert "tickets=2 discarded=0 dropped=0" in sim.command("status")


def test_paper_out_refuses_the_print_and_a_reprint_after_loading_prints_once(printer_sim: PrinterSimFactory) -> None:
    sim = printer_sim()
    printer = ReceiptPrinter(sim.port)
    assert sim.command("paper out") == "ok paper out"
    with pytest.raises(PrinterError) as refused:
        printer.print_lines(RECEIPT)
    assert str(refused.value) == "The printer is out of paper."
    assert refused.value.status is not None and refused.value.status.paper_out
    assert printer.status().paper_out and printer.last_error == ""
    assert sim.tickets() == [] and " dropped=0 " in sim.command("status")  # nothing was even sent

    assert sim.command("paper in") == "ok paper ok"
    printer.print_lines(RECEIPT)  # the caller kept the receipt: the reprint
    time.sleep(0.3)
    assert sim.wait_tickets(1) == [as_printed(RECEIPT)]


def test_paper_running_out_mid_receipt_says_reprint_and_leaves_no_half_ticket(printer_sim: PrinterSimFactory) -> None:
    sim = printer_sim()
    printer = ReceiptPrinter(sim.port)
    assert sim.command("paper 3") == "ok paper low (3 lines left)"
    assert printer.status().paper_low
    with pytest.raises(PrinterError) as stopped:
        printer.print_lines(RECEIPT)
    assert str(stopped.value) == ("The printer ran out of paper while printing; load a new roll and reprint the "
                                  "receipt.")
    assert "discarded=1" in sim.command("status") and sim.tickets() == []
    sim.command("paper in")
    printer.print_lines(RECEIPT)
    assert sim.wait_tickets(1) == [as_printed(RECEIPT)]


def test_cover_open_offline_and_paper_low(printer_sim: PrinterSimFactory) -> None:
    sim = printer_sim()
    printer = ReceiptPrinter(sim.port)
    for fault, fixed, sentence in (("cover open", "cover close", "The printer cover is open."),
                                   ("offline", "online", "The printer is offline.")):
        sim.command(fault)
        with pytest.raises(PrinterError, match=f"^{sentence}$"):
            printer.print_lines(RECEIPT)
        status = printer.status()
        assert not status.ready and status.problem == sentence
        sim.command(fixed)
    assert sim.tickets() == []
    assert sim.command("paper low") == "ok paper low"
    status = printer.print_lines(SECOND)
    assert status == PrinterStatus(online=True, paper_out=False, paper_low=True, cover_open=False)  # warn: new roll
    assert sim.wait_tickets(1) == [as_printed(SECOND)]


def test_status_is_offline_when_the_simulator_is_stopped(printer_sim: PrinterSimFactory) -> None:
    pty_sim, tcp_sim = printer_sim(), printer_sim("--tcp", "0")
    on_pty, on_tcp = ReceiptPrinter(pty_sim.port), ReceiptPrinter(tcp_sim.tcp_url)
    assert on_pty.status().ready and on_tcp.status().ready
    assert pty_sim.stop() == 0 and tcp_sim.stop() == 0
    assert on_pty.status() == OFFLINE and "does not exist" in on_pty.last_error
    assert on_tcp.status() == OFFLINE and "Nothing is listening" in on_tcp.last_error
    with pytest.raises(PrinterError, match="does not exist; is the printer plugged in and switched on"):
        on_pty.print_lines(RECEIPT)
    with pytest.raises(PrinterError, match=r"^Nothing is listening at the printer address tcp://127\.0\.0\.1"):
        on_tcp.print_lines(RECEIPT)


def test_a_port_where_nobody_answers_is_offline_and_gets_no_receipt_bytes() -> None:
    master, slave = os.openpty()
    try:
        printer = ReceiptPrinter(os.ttyname(slave), status_timeout_s=0.2)
        assert printer.status() == OFFLINE and "did not answer" in printer.last_error
        with pytest.raises(PrinterError, match=r"^The printer is offline: it did not answer a status request\.$"):
            printer.print_lines(RECEIPT)
        os.set_blocking(master, False)
        assert os.read(master, 4096) == STATUS_REQUEST * 2  # the two status requests, and no receipt
    finally:
        os.close(master)
        os.close(slave)


def test_raster_mode_sends_chinese_lines_as_images(printer_sim: PrinterSimFactory) -> None:
    sim = printer_sim()
    ReceiptPrinter(sim.port, zh_mode="raster").print_lines(RECEIPT)
    [text] = sim.wait_tickets(1)
    expected = ["[raster image 576x24]" if not line.isascii() else line for line in layout(RECEIPT, 48)]
    assert text == "".join(f"{line}\n" for line in expected)
    assert text.count("[raster image 576x24]") == 4
    png = Image.open(sim.out_dir / "ticket-0001.png")
    assert png.size == (48 * 12 + 32, 5 * 30 + 4 * 24 + 32)


def test_without_a_console_the_control_file_drives_it_and_sigterm_stops_it(printer_sim: PrinterSimFactory,
                                                                           tmp_path: Path) -> None:
    control = tmp_path / "printer.control"
    sim = printer_sim("--control", str(control))
    assert sim.proc.stdin is not None
    sim.proc.stdin.close()  # no console from here on: the simulator keeps running
    printer = ReceiptPrinter(sim.port)
    control.write_text("cover open\nstatus\n")
    sim.wait_notice("cardpos-sim: control ok cover open", timeout=5)
    assert not control.exists()
    assert printer.status().cover_open
    control.write_text("cover close\n")
    sim.wait_notice("cardpos-sim: control ok cover closed", timeout=5)
    printer.print_lines(SECOND)
    sim.wait_notice("cardpos-sim: ticket 1 ticket-0001.txt (3 lines)", timeout=5)
    sim.proc.send_signal(signal.SIGTERM)
    assert sim.proc.wait(timeout=5) == 0
    assert not Path(sim.port).is_symlink()  # the link is removed on the way out


def test_a_restarted_simulator_appends_tickets(printer_sim: PrinterSimFactory, tmp_path: Path) -> None:
    first = printer_sim()
    ReceiptPrinter(first.port).print_lines(SECOND)
    first.wait_tickets(1)
    first.stop()
    second = printer_sim("--out", str(first.out_dir))  # the later --out wins
    ReceiptPrinter(second.port).print_lines(RECEIPT)
    deadline = time.monotonic() + 5
    while not (first.out_dir / "ticket-0002.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (first.out_dir / "ticket-0002.txt").read_text(encoding="utf-8") == as_printed(RECEIPT)


@pytest.mark.parametrize(("flags", "message"), [
    (["--tcp", "70000"], "cardpos: --tcp: a port number is 0 to 65535, not 70000"),
    (["--columns", "4"], "cardpos: --columns: a printer line is 8 to 255 characters, not 4"),
])
def test_bad_flags_are_one_line_errors(flags: list[str], message: str, clean_env: dict[str, str],
                                       tmp_path: Path) -> None:
    result = subprocess.run([*CARDPOS, "sim-printer", "--out", str(tmp_path / "t"), *flags], capture_output=True,
                            text=True, env=clean_env, cwd=REPO_ROOT, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and result.stderr == message + "\n" and result.stdout == ""
