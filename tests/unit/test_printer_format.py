"""The receipt formatter: printable text, columns, wrapping, pairs, and the ESC/POS program, checked byte for byte
and by reading the program back with the printer simulator's own parser and paper mechanism."""

from __future__ import annotations

import ast
import unicodedata
from pathlib import Path

import pytest
from hwsim.escpos_stream import Cut, EscposStream, NewLine, Note, Raster
from hwsim.printer import PrinterMechanism, Ticket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.printer.errors import PrinterError
from terminal.printer.program import CHINESE_OFF, FULL_CUT, INIT, PARTIAL_CUT, encode_line, receipt_program
from terminal.printer.raster import TextRasterizer
from terminal.printer.text import Line, columns, layout, pair, printable, wrap

# Text as receipts have it (ASCII, Chinese, full-width punctuation, the odd accent and control character) and
# text as anything might be.
RECEIPT_CHARS = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
    st.sampled_from(list(" ，。：！￥°×—éñ£😀\t\n\r\x1b\x1d\x10\u3000\u0301")),
)
TEXT = st.one_of(st.text(RECEIPT_CHARS, max_size=100), st.text(max_size=60))
LINES = st.lists(st.one_of(TEXT, st.tuples(TEXT, TEXT)), max_size=8)
WIDTHS = st.integers(min_value=2, max_value=64)


def print_back(program: bytes, width: int) -> list[Ticket]:
    """What the simulator prints for ``program``: fed one byte at a time (any split must do), checking that no
    byte is a command it does not know and that Chinese mode is off at the end of every line."""
    stream, mechanism = EscposStream(), PrinterMechanism(columns=width)
    tickets: list[Ticket] = []
    cuts = 0
    for i in range(len(program)):
        events = stream.feed(program[i : i + 1])
        assert not [e for e in events if isinstance(e, Note)], (events, program)
        if any(isinstance(e, NewLine) for e in events):
            assert not stream.chinese, "Chinese mode left on at a line end"
        cuts += sum(isinstance(e, Cut) for e in events)
        answers, done = mechanism.handle(events)
        assert answers == b""
        tickets += done
    assert cuts == 1 and not stream.chinese
    return tickets


def non_space(text: str) -> str:
    return "".join(text.split())


PURE_MODULES = ["text", "program", "status", "errors"]
IO_IMPORTS = {"serial", "socket", "os", "pathlib", "threading", "PIL", "escpos", "usb", "terminal.printer.device",
              "terminal.printer.transport", "terminal.printer.raster"}


@pytest.mark.parametrize("name", PURE_MODULES)
def test_the_formatter_and_the_status_bits_are_pure(name: str) -> None:
    path = Path(__file__).resolve().parents[2] / "terminal" / "printer" / f"{name}.py"
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert {n for n in imported if n in IO_IMPORTS or n.split(".")[0] in IO_IMPORTS} == set()


# ---- printable text and its width ----------------------------------------------------------------------------


def test_printable_keeps_ascii_and_chinese_and_drops_what_would_be_commands() -> None:
    assert printable("Total 合计：￥12.50") == "Total 合计：￥12.50"
    assert printable("\x1b@\x10\x04\x01\x00evil") == "@evil"  # no ESC, DLE EOT or NUL reaches the printer
    assert printable("a\tb\nc\u3000d") == "a b c\u3000d"  # the ideographic space is a wide character
    assert printable("José") == "José"  # é: GB18030 A8A6, printed full width
    assert printable("José".replace("é", "e\u0301")) == "José"  # NFC first
    assert printable("Peña £5 😀 ｱ") == "Pena ?5 ？ ア"  # folded, or replaced keeping its width
    assert columns("Total 合计") == 10 and columns("é°×") == 6


@given(TEXT)
def test_printable_text_is_printable_and_only_ascii_or_wide(text: str) -> None:
    shown = printable(text)
    assert printable(shown) == shown
    for ch in shown:
        assert " " <= ch <= "~" or (unicodedata.east_asian_width(ch) in "WFA" and len(ch.encode("gb18030")) == 2)


# ---- wrapping and pairs ----------------------------------------------------------------------------------------


def test_wrap_breaks_at_spaces_then_at_the_column_limit() -> None:
    assert wrap("thank you for shopping", 10) == ["thank you", "for", "shopping"]
    assert wrap("abcdefghij", 4) == ["abcd", "efgh", "ij"]
    assert wrap("谢谢惠顾欢迎", 5) == ["谢谢", "惠顾", "欢迎"]  # a wide character is never split
    assert wrap("  centred", 20) == ["  centred"] and wrap("", 8) == [""]


def test_pairs_are_flush_left_and_flush_right() -> None:
    assert pair("Total 合计", "12.50 CNY", 24) == ["Total 合计     12.50 CNY"]
    assert pair("Coffee beans, dark roast", "128.00", 20) == ["Coffee beans, dark", "roast         128.00"]
    assert pair("Member 张三", "Card 0001-0002-0003", 20) == ["Member 张三", " Card 0001-0002-0003"]
    assert pair("Refund", "", 10) == ["Refund"]


@given(LINES, WIDTHS)
def test_no_line_overflows_and_nothing_is_lost(lines: list[Line], width: int) -> None:
    laid = layout(lines, width)
    for line in laid:
        assert columns(line) <= width
        assert printable(line) == line and line == line.rstrip(" ")
    expected = "".join(non_space(printable(" ".join(line) if isinstance(line, tuple) else line)) for line in lines)
    assert non_space("".join(laid)) == expected


def test_widths_outside_2_to_255_columns_are_refused() -> None:
    for width in (0, 1, 256):
        with pytest.raises(PrinterError, match=f"2 to 255 columns wide, not {width}"):
            layout(["x"], width)


# ---- the ESC/POS program ------------------------------------------------------------------------------------


def test_program_bytes_for_a_small_receipt() -> None:
    # The test vector in docs/printer.md.
    program = receipt_program(["SALE", ("合计", "1.00")], columns=16)
    assert program == (b"\x1b@\x1c." + b"SALE\n"
                       + b"\x1c&\xba\xcf\xbc\xc6\x1c." + b"        1.00\n"
                       + b"\x1dVA\x00")
    assert receipt_program([], cut="partial") == INIT + CHINESE_OFF + PARTIAL_CUT
    assert encode_line("a中b文") == b"a\x1c&\xd6\xd0\x1c.b\x1c&\xce\xc4\x1c."


def test_program_options_are_checked() -> None:
    with pytest.raises(PrinterError, match="needs a rasterizer"):
        receipt_program(["x"], zh_mode="raster")
    with pytest.raises(PrinterError, match="'codepage' or 'raster' mode, not 'bitmap'"):
        receipt_program(["x"], zh_mode="bitmap")  # type: ignore[arg-type]


@given(LINES, WIDTHS)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_the_printer_prints_exactly_the_laid_out_lines(lines: list[Line], width: int) -> None:
    program = receipt_program(lines, columns=width)
    assert program.startswith(INIT + CHINESE_OFF) and program.endswith(FULL_CUT)
    laid = layout(lines, width)
    tickets = print_back(program, width)
    if laid:
        assert [ticket.lines for ticket in tickets] == [laid]
    else:
        assert tickets == []  # a cut with nothing printed is no ticket


@given(st.lists(st.one_of(TEXT, st.tuples(TEXT, TEXT)), min_size=1, max_size=4), st.integers(4, 48))
@settings(max_examples=25, deadline=None)
def test_raster_mode_sends_every_non_ascii_line_as_one_image(lines: list[Line], width: int) -> None:
    program = receipt_program(lines, columns=width, zh_mode="raster", rasterize=TextRasterizer())
    laid = layout(lines, width)
    dots = (width * 12 + 7) // 8 * 8
    expected = [line if line.isascii() else f"[raster image {dots}x24]" for line in laid]
    [ticket] = print_back(program, width)
    assert ticket.text() == "".join(f"{line}\n" for line in expected)
    for printed, line in zip(ticket.lines, laid, strict=True):
        if isinstance(printed, Raster) and line.strip():
            assert any(printed.data), "a line with characters draws some black dots"


def test_the_rasterizer_refuses_lines_wider_than_80mm_paper() -> None:
    with pytest.raises(PrinterError, match="at most 48 columns"):
        TextRasterizer()("中文", 49)
