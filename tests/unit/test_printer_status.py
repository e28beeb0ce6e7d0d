"""Printer status bits, printer URLs and the errors of opening one: each a clear sentence."""

from __future__ import annotations

import importlib.util
import itertools

import pytest
from escpos.constants import RT_MASK_LOWPAPER, RT_MASK_NOPAPER, RT_MASK_ONLINE
from hwsim.printer import PrinterMechanism
from hypothesis import given
from hypothesis import strategies as st

from terminal.printer.device import ReceiptPrinter
from terminal.printer.errors import PrinterError
from terminal.printer.status import OFFLINE, STATUS_REQUEST, PrinterStatus, parse_status
from terminal.printer.transport import open_transport, parse_printer_url

READY = PrinterStatus(online=True, paper_out=False, paper_low=False, cover_open=False)


@pytest.mark.parametrize(("answer", "status"), [
    ("12 12 12", READY),
    ("12 12 1e", PrinterStatus(online=True, paper_out=False, paper_low=True, cover_open=False)),
    ("1a 32 72", PrinterStatus(online=False, paper_out=True, paper_low=True, cover_open=False)),
    ("1a 16 12", PrinterStatus(online=False, paper_out=False, paper_low=False, cover_open=True)),
    ("1a 52 12", PrinterStatus(online=False, paper_out=False, paper_low=False, cover_open=False)),
    ("12 52 12", PrinterStatus(online=False, paper_out=False, paper_low=False, cover_open=False)),  # error bit
])
def test_status_bytes(answer: str, status: PrinterStatus) -> None:
    assert parse_status(bytes.fromhex(answer)) == status
    assert bytes.fromhex("10 04 01 10 04 02 10 04 04") == STATUS_REQUEST


def test_problems_are_one_sentence_cover_first() -> None:
    assert READY.ready and READY.problem is None
    assert OFFLINE.problem == "The printer is offline."
    both = PrinterStatus(online=False, paper_out=True, paper_low=True, cover_open=True)
    assert both.problem == "The printer cover is open."
    assert parse_status(bytes.fromhex("1a 32 72")).problem == "The printer is out of paper."


@pytest.mark.parametrize("answer", ["", "12 12", "00 00 00", "12 12 ff", "10 04 01"])
def test_answers_that_are_not_escpos_status_are_refused(answer: str) -> None:
    with pytest.raises(PrinterError, match="is not ESC/POS; check the printer's baud rate"):
        parse_status(bytes.fromhex(answer))


@given(st.binary(min_size=0, max_size=5))
def test_any_answer_is_a_status_or_a_printer_error(answer: bytes) -> None:
    try:
        status = parse_status(answer)
    except PrinterError as exc:
        assert "\n" not in str(exc)
    else:
        assert status.ready == (status.problem is None)


def test_the_simulator_answers_what_the_driver_and_python_escpos_read() -> None:
    mechanism = PrinterMechanism()
    for paper, cover, offline in itertools.product(("ok", "low", "out"), (False, True), (False, True)):
        mechanism.set_paper(paper)
        mechanism.set_cover(cover)
        mechanism.set_offline(offline)
        answer = bytes(mechanism.status_byte(n) or 0 for n in (1, 2, 4))
        status = parse_status(answer)
        assert status == PrinterStatus(online=paper != "out" and not cover and not offline,
                                       paper_out=paper == "out", paper_low=paper != "ok", cover_open=cover)
        # python-escpos's own reading of the same bytes (is_online, paper_status)
        assert (not answer[0] & RT_MASK_ONLINE) == status.online
        paper_byte = answer[2]
        escpos_paper = (0 if paper_byte & RT_MASK_NOPAPER == RT_MASK_NOPAPER
                        else 1 if paper_byte & RT_MASK_LOWPAPER == RT_MASK_LOWPAPER else 2)
        assert escpos_paper == {"out": 0, "low": 1, "ok": 2}[paper]


# ---- URLs ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "fields"), [
    ("/dev/ttyUSB0", {"kind": "serial", "target": "/dev/ttyUSB0", "baud": 19200}),
    ("serial:///dev/ttyUSB0?baud=38400", {"kind": "serial", "target": "/dev/ttyUSB0", "baud": 38400}),
    ("serial:///dev/ttyS1?baud=9600&flow=rtscts", {"target": "/dev/ttyS1", "baud": 9600, "flow": "rtscts"}),
    ("serial://COM3?baud=115200", {"target": "COM3", "baud": 115200}),
    ("socket://127.0.0.1:9100", {"kind": "serial", "target": "socket://127.0.0.1:9100"}),
    ("rfc2217://host:2217", {"kind": "serial", "target": "rfc2217://host:2217"}),
    ("tcp://192.168.1.50", {"kind": "tcp", "host": "192.168.1.50", "port": 9100}),
    ("tcp://printer.local:9101", {"kind": "tcp", "host": "printer.local", "port": 9101}),
    ("usb://04b8:0202", {"kind": "usb", "vendor_id": 0x04B8, "product_id": 0x0202, "in_ep": 0x82, "out_ep": 0x01}),
    ("usb://0x0416:0x5011?in_ep=0x81&out_ep=0x03", {"vendor_id": 0x0416, "product_id": 0x5011, "in_ep": 0x81,
                                                    "out_ep": 0x03}),
])
def test_printer_urls(url: str, fields: dict[str, object]) -> None:
    address = parse_printer_url(url)
    assert {name: getattr(address, name) for name in fields} == fields


@pytest.mark.parametrize(("url", "why"), [
    ("", "is empty"),
    ("serial://?baud=9600", "names no serial port"),
    ("serial:///dev/ttyUSB0?baud=fast", "has baud='fast', not a number"),
    ("serial:///dev/ttyUSB0?baud=10", "has baud=10, outside 50 to 4000000"),
    ("serial:///dev/ttyUSB0?parity=E", "has an unknown option 'parity'"),
    ("serial:///dev/ttyUSB0?flow=hardware", "has flow='hardware' (one of none, rtscts, dsrdtr, xonxoff)"),
    ("tcp://:9100", "names no host"),
    ("tcp://host:99999", "has a bad port number"),
    ("usb://epson", "needs hex ids as usb://VID:PID (e.g. usb://04b8:0202)"),
    ("usb://0:0", "has ids or endpoints out of range"),
    ("lpt://1", "has an unknown scheme 'lpt'"),
])
def test_bad_urls_are_one_sentence(url: str, why: str) -> None:
    with pytest.raises(PrinterError) as refused:
        ReceiptPrinter(url)
    message = str(refused.value)
    assert message.startswith(f"The printer URL {url!r} {why}; use serial:///dev/ttyUSB0?baud=19200")
    assert "\n" not in message


def test_other_settings_are_checked_at_construction() -> None:
    with pytest.raises(PrinterError, match="2 to 255 columns wide, not 300"):
        ReceiptPrinter("/dev/null", columns=300)
    with pytest.raises(PrinterError, match="not 'bitmap'"):
        ReceiptPrinter("/dev/null", zh_mode="bitmap")  # type: ignore[arg-type]


def test_a_missing_port_is_offline_for_status_and_a_sentence_for_printing(tmp_path: object) -> None:
    printer = ReceiptPrinter("/dev/cardpos-no-such-printer")
    assert printer.status() == OFFLINE
    assert printer.last_error == ("The printer port /dev/cardpos-no-such-printer does not exist; is the printer "
                                  "plugged in and switched on?")
    with pytest.raises(PrinterError, match=r"^The printer port /dev/cardpos-no-such-printer does not exist"):
        printer.print_lines(["x"])


def test_an_echoing_line_is_no_printer() -> None:
    # loop:// sends our own bytes back: a status "answer" of 10 04 01 is what a wrong baud rate looks like.
    with pytest.raises(PrinterError, match=r"answer 10 04 01 is not ESC/POS"):
        ReceiptPrinter("loop://", status_timeout_s=0.2).status()


@pytest.mark.skipif(importlib.util.find_spec("usb") is not None, reason="pyusb is installed here")
def test_usb_without_pyusb_is_one_sentence() -> None:
    with pytest.raises(PrinterError) as refused:
        open_transport(parse_printer_url("usb://04b8:0202"), connect_timeout_s=1, write_timeout_s=1)
    assert str(refused.value) == ("USB printers need the pyusb package and libusb, which are not installed; install "
                                  "them or connect the printer 04b8:0202 by serial or network.")
