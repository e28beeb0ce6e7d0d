"""Receipt text laid out in printer columns (pure: strings in, strings out).

A receipt printer prints a fixed number of columns per line: 48 with font A on 80 mm paper, 32 on 58 mm. ASCII
takes one column. Chinese is printed from the printer's CJK font, in which every double-byte GB18030 character is
one full-width glyph: two columns. ``unicodedata.east_asian_width`` says which characters those are: Wide and
Fullwidth (汉字, kana, ，￥) and Ambiguous (°, ×, —, é), which GB18030 also holds as double-byte codes that print
full width. ``printable`` reduces any text to that repertoire first, so every count here is exact:

* ASCII letters, digits and punctuation are kept (1 column);
* a W/F/A character with a double-byte GB18030 code is kept (2 columns);
* tabs, newlines and other spaces become one space; control and format characters are dropped, so no text can
  smuggle an ESC/POS command onto the printer;
* anything else is folded to ASCII where Unicode says how (ñ → n, ｱ → ア), else replaced by ``?`` (or ``？`` for
  a wide character the printer's font lacks, such as an emoji, so the layout keeps its width).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable

from terminal.printer.errors import PrinterError

Line = str | tuple[str, str]
"""A receipt line: plain text, or a ``(left, right)`` pair printed flush left and flush right."""

WIDE_WIDTHS = frozenset({"W", "F", "A"})
MIN_COLUMNS = 2  # room for one wide character
MAX_COLUMNS = 255


def check_columns(columns: int) -> None:
    if not MIN_COLUMNS <= columns <= MAX_COLUMNS:
        raise PrinterError(f"A receipt line must be {MIN_COLUMNS} to {MAX_COLUMNS} columns wide, not {columns}.")


def is_wide(ch: str) -> bool:
    """A character the printer prints full width from its CJK font (two columns)."""
    return ord(ch) >= 0x80 and unicodedata.east_asian_width(ch) in WIDE_WIDTHS


def _in_printer_font(ch: str) -> bool:
    """A double-byte GB18030 code: what a GB18030 printer font holds. Four-byte codes (rare ideographs, emoji)
    are beyond the fonts of real receipt printers."""
    try:
        return len(ch.encode("gb18030")) == 2
    except UnicodeEncodeError:
        return False


@functools.lru_cache(maxsize=8192)
def _printable_char(ch: str) -> str:
    if " " <= ch <= "~":
        return ch
    if is_wide(ch):
        if _in_printer_font(ch):
            return ch
        return "？"
    if ch.isspace():
        return " "
    category = unicodedata.category(ch)
    if category[0] == "C" or category in ("Mn", "Me"):
        return ""  # control/format/unassigned, or a combining mark NFC could not compose
    folded = "".join(c for c in unicodedata.normalize("NFKD", ch) if unicodedata.category(c) != "Mn")
    if folded and all(" " <= c <= "~" or (is_wide(c) and _in_printer_font(c)) for c in folded):
        return folded
    return "?"


def printable(text: str) -> str:
    """``text`` reduced to what the printer prints, with known widths (see the module docstring)."""
    if text.isascii() and text.isprintable():  # most receipt lines: nothing to reduce (and 40x faster)
        return text
    return "".join(_printable_char(ch) for ch in unicodedata.normalize("NFC", text))


def columns(text: str) -> int:
    """Printed width of ``printable`` text: 1 per ASCII character, 2 per wide one."""
    if text.isascii():
        return len(text)
    return sum(2 if is_wide(ch) else 1 for ch in text)


def _fit(text: str, width: int) -> int:
    """Length of the longest prefix of ``text`` that fits in ``width`` columns."""
    used = 0
    for index, ch in enumerate(text):
        used += 2 if is_wide(ch) else 1
        if used > width:
            return index
    return len(text)


def wrap(text: str, width: int) -> list[str]:
    """Break ``printable`` text into lines of at most ``width`` columns: at the last space that fits, else at
    the column limit (a wide character is never split). Leading spaces of the first line are kept (a centred
    title), spaces at a break and at line ends are dropped, nothing else is. An empty text is one blank line."""
    check_columns(width)
    lines: list[str] = []
    rest = text.rstrip(" ")
    while columns(rest) > width:
        cut = _fit(rest, width)
        head = rest[:cut]
        if not head.strip(" "):  # an indent as wide as the line: drop it rather than print blank lines
            rest = rest.lstrip(" ")
            continue
        space = rest.rfind(" ", 0, cut + 1)
        if space > 0 and rest[:space].strip(" "):
            lines.append(rest[:space].rstrip(" "))
            rest = rest[space:].lstrip(" ")
        else:  # one word longer than the line: cut it at the column limit
            lines.append(head)
            rest = rest[cut:].lstrip(" ")
    if rest or not lines:
        lines.append(rest)
    return lines


def pair(left: str, right: str, width: int) -> list[str]:
    """``left`` flush left and ``right`` flush right on one line when both fit with a space between; otherwise
    ``left`` wrapped, and ``right`` right-aligned after it (on the last line if it fits there, else below)."""
    check_columns(width)
    left, right = printable(left).rstrip(" "), printable(right).strip(" ")
    if not right:
        return wrap(left, width)
    left_cols, right_cols = columns(left), columns(right)
    if left_cols + 1 + right_cols <= width:
        return [left + " " * (width - left_cols - right_cols) + right]
    lines = wrap(left, width) if left.strip(" ") else []
    if lines and columns(lines[-1]) + 1 + right_cols <= width:
        last = lines[-1]
        lines[-1] = last + " " * (width - columns(last) - right_cols) + right
        return lines
    return lines + [" " * (width - columns(part)) + part for part in wrap(right, width)]


def layout(lines: Iterable[Line], width: int) -> list[str]:
    """Receipt lines → printed lines, each at most ``width`` columns of ``printable`` text. A plain line with
    line breaks in it becomes several lines."""
    check_columns(width)
    out: list[str] = []
    for line in lines:
        if isinstance(line, tuple):
            left, right = line
            out += pair(left, right, width)
        else:
            for part in line.splitlines() or [""]:
                out += wrap(printable(part), width)
    return out
