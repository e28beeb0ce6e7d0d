"""The printer simulator's parts: the ESC/POS stream parser (any bytes, any split), the paper mechanism (wrap,
tickets, paper out in the middle of a ticket) and the ticket files."""

from __future__ import annotations

from pathlib import Path

from hwsim.escpos_stream import (
    MAX_COMMAND,
    Cut,
    EscposStream,
    Event,
    FeedLines,
    Init,
    NewLine,
    Note,
    Raster,
    StatusRequest,
    Text,
)
from hwsim.printer import PrinterMechanism, Ticket
from hwsim.ticket import TicketWriter
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

ESC_POS_BYTES = st.binary(max_size=300) | st.lists(
    st.sampled_from([b"\x1b@", b"\x1c&", b"\x1c.", b"\n", b"\x10\x04\x01", b"\x1dVA\x00", b"\x1b!\x08", b"\x1dv0",
                     b"\x00\x01\x00\x01\x00\xff", b"\xd6\xd0", b"\x81\x30\x81\x30", b"abc", b"\x1bD\x08\x10\x00",
                     b"\x1dk\x04123\x00", b"\x1b&\x03\x41\x41\x02ABCDEF", b"\x1d(k\x03\x00\x31\x41\x32"]),
    max_size=40).map(b"".join)


def _merged(events: list[Event]) -> tuple[list[Event], list[str]]:
    """Events with adjacent text of the same width joined and notes set apart (their place among text runs
    depends on where the bytes were split)."""
    out: list[Event] = []
    notes = []
    for event in events:
        if isinstance(event, Note):
            notes.append(event.what)
        elif isinstance(event, Text) and out and isinstance(out[-1], Text) and out[-1].wide == event.wide:
            out[-1] = Text(out[-1].text + event.text, event.wide)
        else:
            out.append(event)
    return out, sorted(notes)


@given(ESC_POS_BYTES, st.lists(st.integers(1, 50), max_size=20))
def test_any_bytes_parse_the_same_however_they_are_split(data: bytes, sizes: list[int]) -> None:
    whole = EscposStream().feed(data)
    stream, pieces, at = EscposStream(), [], 0
    for size in sizes:
        pieces += stream.feed(data[at : at + size])
        at += size
    pieces += stream.feed(data[at:])
    assert _merged(pieces) == _merged(whole)


def test_commands_text_and_chinese_mode() -> None:
    events = EscposStream().feed(b"\x1b@\x1b!\x08Hi\x1c&\xd6\xd0\xce\xc4\x1c.!\n\x1bd\x02\x10\x04\x04\x1dVB\x03")
    assert events == [Init(), Note("print mode"), Text("Hi"), Text("中文", wide=True), Text("!"), NewLine(),
                      FeedLines(2), StatusRequest(4), Cut(partial=True)]


def test_a_chinese_character_split_across_reads_waits_for_its_second_byte() -> None:
    stream = EscposStream()
    assert stream.feed(b"\x1c&\xd6") == []
    assert stream.feed(b"\xd0\x81") == [Text("中", wide=True)]
    assert stream.feed(b"\x30\x81\x30") == [Text("\x80", wide=True)]  # a four-byte GB18030 code


def test_raster_images_are_kept_and_huge_data_is_skipped_unbuffered() -> None:
    stream = EscposStream()
    assert stream.feed(b"\x1dv0\x00\x01\x00\x02\x00\x80\x01") == [Raster(8, 2, b"\x80\x01")]
    huge = 0xFFFF * 0x20  # 2 MiB declared
    assert huge > MAX_COMMAND
    events = stream.feed(b"\x1dv0\x00\xff\xff\x20\x00" + b"\x00" * 1000)
    assert events == [Note(f"raster image too large ({huge} bytes), skipped")]
    assert len(stream._buf) == 0  # skipped as it came, nothing held


def _print(mechanism: PrinterMechanism, data: bytes, stream: EscposStream | None = None) -> tuple[bytes, list[Ticket]]:
    return mechanism.handle((stream or EscposStream()).feed(data))


def test_the_mechanism_wraps_full_lines_and_cuts_tickets() -> None:
    mechanism = PrinterMechanism(columns=8)
    answers, tickets = _print(mechanism, b"12345678\nabcdefghij\x1c&\xd6\xd0\xce\xc4\x1c.\tX\n\x1dVA\x00"
                                         b"second\x10\x04\x01\x1dV\x00\x1dV\x00")
    assert answers == b"\x12"
    assert [t.lines for t in tickets] == [["12345678", "abcdefgh", "ij中文", "X"], ["second"]]
    assert mechanism.notes["cut with nothing printed"] == 1


def test_paper_out_in_the_middle_discards_the_ticket_and_drops_the_rest() -> None:
    mechanism = PrinterMechanism()
    stream = EscposStream()
    _print(mechanism, b"\x1b@line one\nline two\n", stream)
    assert mechanism.set_paper("out") == 2 and mechanism.discarded == 1
    answers, tickets = _print(mechanism, b"line three\n\x1dVA\x00\x10\x04\x04", stream)
    assert tickets == [] and answers == b"\x7e" and mechanism.dropped == 3
    mechanism.set_paper("ok")
    _, tickets = _print(mechanism, b"\x1b@again\n\x1dVA\x00", stream)
    assert [t.lines for t in tickets] == [["again"]]


def test_a_roll_near_its_end_runs_out_after_its_last_line() -> None:
    mechanism = PrinterMechanism()
    mechanism.set_roll(2)
    answers, tickets = _print(mechanism, b"one\ntwo\nthree\nfour\n\x1dVA\x00\x10\x04\x01\x10\x04\x02")
    assert tickets == [] and mechanism.paper == "out" and mechanism.discarded == 1
    assert answers == b"\x1a\x32"  # offline, stopped by paper end


def test_init_clears_an_unfinished_line_but_not_printed_ones() -> None:
    _, tickets = _print(PrinterMechanism(), b"kept\nlost\x1b@\x1dVA\x00")
    assert [t.lines for t in tickets] == [["kept"]]


def test_tickets_are_numbered_after_those_already_there(tmp_path: Path) -> None:
    (tmp_path / "ticket-0007.txt").write_text("old\n")
    writer = TicketWriter(tmp_path, columns=16)
    path = writer.write(Ticket(["Total 合计", "", Raster(8, 2, b"\xff\x00")]))
    assert path.name == "ticket-0008.txt"
    assert path.read_text(encoding="utf-8") == "Total 合计\n\n[raster image 8x2]\n"
    image = Image.open(tmp_path / "ticket-0008.png")
    assert image.size == (16 * 12 + 32, 30 + 30 + 2 + 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ticket-0007.txt", "ticket-0008.png", "ticket-0008.txt"]
