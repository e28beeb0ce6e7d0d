"""The printer simulator's ESC/POS parser (pure): bytes in, in any chunks → printer events out.

It knows the length of every common ESC/POS command, so a command's arguments never print as text, and keeps an
incomplete command or character until the rest arrives. Text is decoded as the printer would: bytes 0x20-0x7E as
ASCII and 0x80-0xFF through code page 437 outside Chinese mode; GB18030 (1, 2 or 4 bytes) between ``FS &`` and
``FS .``. Commands that only change the look (bold, size, alignment, fonts ...) become ``Note`` events; unknown
ones too, skipping only their first two bytes, as a printer would be left guessing.

Every byte is hostile (house rule 12): a command that declares more than ``MAX_COMMAND`` bytes of data is noted
and its data skipped without being buffered.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_COMMAND = 1 << 20
ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
LF, CR, HT, FF, CAN, NUL = 0x0A, 0x0D, 0x09, 0x0C, 0x18, 0x00


@dataclass(frozen=True, slots=True)
class Text:
    """Printable text; ``wide``: every character is a double-byte GB18030 one, printed two columns wide."""

    text: str
    wide: bool = False


@dataclass(frozen=True, slots=True)
class NewLine:
    """LF: print the buffer and start a new line."""


@dataclass(frozen=True, slots=True)
class FeedLines:
    """ESC d n: print the buffer and feed n lines (n = 0: just print)."""

    count: int


@dataclass(frozen=True, slots=True)
class FeedDots:
    """ESC J n: print the buffer and feed n dots (paper motion, no text line)."""

    dots: int


@dataclass(frozen=True, slots=True)
class Cut:
    partial: bool


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """DLE EOT n: answer one status byte at once."""

    n: int


@dataclass(frozen=True, slots=True)
class Raster:
    """GS v 0: a bit image, ``width`` dots (a multiple of 8) by ``height``, rows MSB first, 1 = black."""

    width: int
    height: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Init:
    """ESC @: buffer cleared, modes reset."""


@dataclass(frozen=True, slots=True)
class Note:
    """A command that prints nothing and is not simulated (bold, size, barcode, ...), or one not understood."""

    what: str


Event = Text | NewLine | FeedLines | FeedDots | Cut | StatusRequest | Raster | Init | Note

# Commands with a fixed number of argument bytes after the two command bytes, and the name they are noted by.
_ESC_FIXED: dict[int, tuple[int, str]] = {
    ord("!"): (1, "print mode"), ord("E"): (1, "bold"), ord("G"): (1, "double strike"), ord("-"): (1, "underline"),
    ord("a"): (1, "justification"), ord("M"): (1, "font"), ord("V"): (1, "rotation"), ord("{"): (1, "upside down"),
    ord("R"): (1, "international character set"), ord(" "): (1, "character spacing"), ord("3"): (1, "line spacing"),
    ord("2"): (0, "default line spacing"), ord("r"): (1, "colour"), ord("="): (1, "peripheral select"),
    ord("U"): (1, "unidirectional"), ord("e"): (1, "reverse feed"), ord("%"): (1, "user characters"),
    ord("?"): (1, "cancel user character"), ord("$"): (2, "absolute position"), ord("\\"): (2, "relative position"),
    ord("p"): (3, "drawer kick"), ord("S"): (0, "standard mode"), ord("L"): (0, "page mode"),
    ord("T"): (1, "page direction"), ord("W"): (8, "page area"), ord("<"): (0, "return home"),
    ord("u"): (1, "peripheral status"), ord("v"): (1, "paper status"), ord("K"): (1, "reverse feed"),
}
_GS_FIXED: dict[int, tuple[int, str]] = {
    ord("!"): (1, "character size"), ord("B"): (1, "reverse print"), ord("b"): (1, "smoothing"),
    ord("H"): (1, "barcode text position"), ord("h"): (1, "barcode height"), ord("w"): (1, "barcode width"),
    ord("f"): (1, "barcode font"), ord("L"): (2, "left margin"), ord("W"): (2, "print area width"),
    ord("P"): (2, "motion units"), ord("$"): (2, "page position"), ord("\\"): (2, "page relative position"),
    ord("a"): (1, "automatic status back"), ord("r"): (1, "transmit status"), ord("I"): (1, "printer id"),
    ord("T"): (1, "line start"), ord(":"): (0, "macro"), ord("^"): (3, "macro run"), ord("/"): (1, "print image"),
    ord("E"): (1, "head control"), ord("g"): (2, "counter"), ord("C"): (2, "counter"),
}
_FS_FIXED: dict[int, tuple[int, str]] = {
    ord("!"): (1, "chinese print mode"), ord("-"): (1, "chinese underline"), ord("W"): (1, "chinese double size"),
    ord("C"): (1, "kanji code system"), ord("S"): (2, "chinese spacing"), ord("?"): (2, "cancel user kanji"),
    ord("p"): (2, "nv image print"), ord("2"): (74, "user kanji"),
}
_CUT_NO_ARG = {0: False, 48: False, 1: True, 49: True}
_CUT_WITH_FEED = {65: False, 97: False, 103: False, 66: True, 98: True, 104: True}


class EscposStream:
    """Feed it bytes; get the events of every command completed so far."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skip = 0
        self.chinese = False
        self.code_page = 0
        self.bytes_in = 0

    def reset(self) -> None:
        """A new connection: whatever half command was left is dropped."""
        self._buf.clear()
        self._skip = 0
        self.chinese = False
        self.code_page = 0

    def feed(self, data: bytes) -> list[Event]:
        self.bytes_in += len(data)
        self._buf += data
        events: list[Event] = []
        while self._buf:
            if self._skip:
                n = min(self._skip, len(self._buf))
                del self._buf[:n]
                self._skip -= n
                continue
            used = self._one(events)
            if used == 0 and len(self._buf) > MAX_COMMAND + 64:
                events.append(Note("oversized command, first byte dropped"))
                used = 1
            if used == 0:
                break  # an incomplete command or character: wait for more bytes
            del self._buf[:used]
        return events

    # ---- one command or text run -----------------------------------------------------------------------------

    def _one(self, events: list[Event]) -> int:
        b = self._buf
        first = b[0]
        if first >= 0x20 and first != 0x7F:
            return self._text(events)
        if first == LF:
            events.append(NewLine())
            return 1
        if first == HT:
            events.append(Text("\t"))
            return 1
        if first == CR:
            return 1  # carriage return: ignored (auto line feed off, the ESC/POS default)
        if first == ESC:
            return self._esc(events)
        if first == GS:
            return self._gs(events)
        if first == FS:
            return self._fs(events)
        if first == DLE:
            return self._dle(events)
        events.append(Note(f"control 0x{first:02x}"))
        return 1

    def _text(self, events: list[Event]) -> int:
        """One run of text of one width: single-byte characters, or (in Chinese mode) GB18030 ones."""
        b, out, i = self._buf, [], 0
        wide = self.chinese and b[0] >= 0x80
        while i < len(b) and b[i] >= 0x20 and b[i] != 0x7F:
            if not wide:
                if self.chinese and b[i] >= 0x80:
                    break
                out.append(chr(b[i]) if b[i] < 0x80 else bytes([b[i]]).decode("cp437"))
                i += 1
                continue
            if b[i] < 0x80:
                break
            size = _gb18030_size(b, i)
            if size == 0:
                break  # the rest of this character has not arrived yet
            if size < 0:
                out.append("\ufffd")
                events.append(Note("bad GB18030 byte"))
                i += 1
                continue
            out.append(bytes(b[i : i + size]).decode("gb18030", errors="replace"))
            i += size
        if out:
            events.append(Text("".join(out), wide=wide))
        return i

    def _fixed(self, events: list[Event], table: dict[int, tuple[int, str]], prefix: str) -> int:
        b = self._buf
        if len(b) < 2:
            return 0
        entry = table.get(b[1])
        if entry is None:
            events.append(Note(f"unknown {prefix} 0x{b[1]:02x}"))
            return 2
        args, name = entry
        if len(b) < 2 + args:
            return 0
        events.append(Note(name))
        return 2 + args

    def _esc(self, events: list[Event]) -> int:
        b = self._buf
        if len(b) < 2:
            return 0
        c = b[1]
        if c == ord("@"):
            self.chinese = False
            self.code_page = 0
            events.append(Init())
            return 2
        if c in (ord("d"), ord("J"), ord("t")):
            if len(b) < 3:
                return 0
            if c == ord("d"):
                events.append(FeedLines(b[2]))
            elif c == ord("J"):
                events.append(FeedDots(b[2]))
            else:
                self.code_page = b[2]
                if b[2] != 0:
                    events.append(Note(f"code page {b[2]} (shown as 437)"))
            return 3
        if c in (ord("i"), ord("m")):
            events.append(Cut(partial=c == ord("m")))
            return 2
        if c == ord("*"):  # ESC * m nL nH d...: column image, 1 or 3 bytes a column
            if len(b) < 5:
                return 0
            count = (b[3] | b[4] << 8) * (3 if b[2] in (32, 33) else 1)
            return self._data(events, 5, count, "column image")
        if c == ord("D"):  # ESC D n1 ... nk NUL: at most 32 tab stops
            end = b.find(NUL, 2, 2 + 33)
            if end < 0:
                return 0 if len(b) < 2 + 33 else self._note(events, "bad tab stops", 2)
            events.append(Note("tab stops"))
            return end + 1
        if c == ord("c"):  # ESC c 3/4/5 n: panel and paper sensors
            if len(b) < 4:
                return 0
            events.append(Note("sensors and panel"))
            return 4
        if c == ord("&"):  # ESC & y c1 c2 [x d1...d(y*x)]...: user-defined characters
            return self._user_chars(events)
        return self._fixed(events, _ESC_FIXED, "ESC")

    def _gs(self, events: list[Event]) -> int:
        b = self._buf
        if len(b) < 2:
            return 0
        c = b[1]
        if c == ord("V"):
            if len(b) < 3:
                return 0
            if b[2] in _CUT_NO_ARG:
                events.append(Cut(partial=_CUT_NO_ARG[b[2]]))
                return 3
            if b[2] in _CUT_WITH_FEED:
                if len(b) < 4:
                    return 0
                events.append(Cut(partial=_CUT_WITH_FEED[b[2]]))
                return 4
            return self._note(events, f"bad cut mode {b[2]}", 3)
        if c == ord("v"):  # GS v 0 m xL xH yL yH d...
            if len(b) < 8:
                return 0
            if b[2] != ord("0"):
                return self._note(events, "unknown GS v", 2)
            width_bytes, height = b[4] | b[5] << 8, b[6] | b[7] << 8
            size = width_bytes * height
            if size > MAX_COMMAND:
                return self._data(events, 8, size, "raster image")
            if len(b) < 8 + size:
                return 0
            events.append(Raster(width_bytes * 8, height, bytes(b[8 : 8 + size])))
            return 8 + size
        if c == ord("("):  # GS ( fn pL pH d...: graphics, 2D codes, settings
            if len(b) < 5:
                return 0
            return self._data(events, 5, b[3] | b[4] << 8, f"GS ( {chr(b[2]) if 0x20 < b[2] < 0x7F else '?'}")
        if c == ord("8"):  # GS 8 L p1 p2 p3 p4 ...: graphics, 32-bit length
            if len(b) < 7:
                return 0
            return self._data(events, 7, b[3] | b[4] << 8 | b[5] << 16 | b[6] << 24, "large graphics")
        if c == ord("k"):  # GS k m ...: barcode, NUL-terminated (m <= 6) or counted (m >= 65)
            if len(b) < 3:
                return 0
            if b[2] <= 6:  # at most 255 characters, then NUL
                end = b.find(NUL, 3, 3 + 256)
                if end < 0:
                    return 0 if len(b) < 3 + 256 else self._note(events, "bad barcode", 3)
                events.append(Note("barcode"))
                return end + 1
            if len(b) < 4:
                return 0
            return self._data(events, 4, b[3], "barcode")
        if c == ord("*"):  # GS * x y d...: downloaded bit image, x*y*8 bytes
            if len(b) < 4:
                return 0
            return self._data(events, 4, b[2] * b[3] * 8, "downloaded image")
        return self._fixed(events, _GS_FIXED, "GS")

    def _fs(self, events: list[Event]) -> int:
        b = self._buf
        if len(b) < 2:
            return 0
        if b[1] == ord("&"):
            self.chinese = True
            return 2
        if b[1] == ord("."):
            self.chinese = False
            return 2
        if b[1] == ord("("):
            if len(b) < 5:
                return 0
            return self._data(events, 5, b[3] | b[4] << 8, "FS (")
        return self._fixed(events, _FS_FIXED, "FS")

    def _dle(self, events: list[Event]) -> int:
        b = self._buf
        if len(b) < 2:
            return 0
        if b[1] == 0x04:  # DLE EOT n
            if len(b) < 3:
                return 0
            events.append(StatusRequest(b[2]))
            return 3
        if b[1] == 0x05:  # DLE ENQ n: recovery request
            if len(b) < 3:
                return 0
            return self._note(events, "recovery request", 3)
        if b[1] == 0x14:  # DLE DC4 fn a b: real-time pulse, power off, buffer clear
            if len(b) < 5:
                return 0
            return self._note(events, "real-time command", 5)
        return self._note(events, "control 0x10", 1)

    def _user_chars(self, events: list[Event]) -> int:
        b = self._buf
        if len(b) < 5:
            return 0
        y, first, last = b[2], b[3], b[4]
        i = 5
        for _ in range(max(0, last - first + 1)):
            if len(b) <= i:
                return 0
            i += 1 + y * b[i]
        if len(b) < i:
            return 0
        events.append(Note("user characters"))
        return i

    def _data(self, events: list[Event], header: int, size: int, name: str) -> int:
        """A command of ``header`` bytes followed by ``size`` data bytes, noted and skipped."""
        if size > MAX_COMMAND:
            events.append(Note(f"{name} too large ({size} bytes), skipped"))
            self._skip = size
            return header
        if len(self._buf) < header + size:
            return 0
        events.append(Note(name))
        return header + size

    @staticmethod
    def _note(events: list[Event], what: str, used: int) -> int:
        events.append(Note(what))
        return used


def _gb18030_size(b: bytearray, i: int) -> int:
    """Bytes in the GB18030 character at ``b[i]``: 2 or 4; 0 when it is cut short; -1 when ``b[i]`` cannot start
    one (or what follows cannot continue it)."""
    lead = b[i]
    if not 0x81 <= lead <= 0xFE:
        return -1
    if len(b) < i + 2:
        return 0
    second = b[i + 1]
    if 0x40 <= second <= 0xFE and second != 0x7F:
        return 2
    if not 0x30 <= second <= 0x39:
        return -1
    if len(b) < i + 4:
        return 0
    if 0x81 <= b[i + 2] <= 0xFE and 0x30 <= b[i + 3] <= 0x39:
        return 4
    return -1
