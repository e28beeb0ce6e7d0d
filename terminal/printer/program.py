"""Receipt lines → one ESC/POS byte program (pure: bytes out, no I/O).

The program, byte for byte::

    ESC @                      initialise: clears the buffer, resets modes
    FS .                       Chinese mode off (printers sold in China often start with it on)
    for each printed line:
        ASCII text ... LF                                  one line, ASCII runs as they are
        FS & <GB18030 bytes> FS .                          a run of wide characters, in Chinese mode
      or, in raster mode, a line with any wide character:
        GS v 0 m xL xH yL yH <bits>                        the whole line as one image (no LF: it advances itself)
    GS V A 0  (or GS V B 0)    feed to the cutter and cut (full, or partial leaving a hinge)

Two ways to print Chinese, chosen per printer:

* ``codepage`` (default): the text goes as GB18030 in Chinese mode (``FS &`` ... ``FS .``) and the printer draws it
  from its own CJK font. Small and fast (2 bytes a character); needs a printer with a GB18030/GBK font, which
  printers sold in China have.
* ``raster``: lines with Chinese are drawn on the terminal (``terminal.printer.raster``) and sent as a ``GS v 0``
  bit image. Works on any ESC/POS printer with raster support, font or not, at ~1.7 KB per line on 80 mm paper.

The bytes are written out here rather than with python-escpos's ``text()``/``cut()``: those go through its code
page guessing (``magic encode``) and feed six lines before a ``GS V 0`` cut, while a receipt needs exact control
of every byte (Chinese mode on and off around each run, one cut that feeds itself to the cutter). Rasterising
uses python-escpos (see ``raster``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

from terminal.printer.errors import PrinterError
from terminal.printer.text import Line, is_wide, layout

ZhMode = Literal["codepage", "raster"]
CutMode = Literal["full", "partial"]
Rasterize = Callable[[str, int], bytes]
"""(a printable line, the line width in columns) → one ESC/POS image command that prints that line."""

ESC, GS, FS, LF = b"\x1b", b"\x1d", b"\x1c", b"\n"
INIT = ESC + b"@"
CHINESE_ON = FS + b"&"
CHINESE_OFF = FS + b"."
FULL_CUT = GS + b"VA\x00"  # GS V 65 n: feed to the cutting position (+ n dots), then a full cut
PARTIAL_CUT = GS + b"VB\x00"  # GS V 66 n: the same with a partial cut
DEFAULT_COLUMNS = 48  # 80 mm paper, font A (12 x 24 dots)


def encode_line(line: str) -> bytes:
    """One printable line (no LF): ASCII runs as they are, runs of wide characters as GB18030 in Chinese mode."""
    out = bytearray()
    run: list[str] = []
    wide_run = False
    for ch in line + "\0":  # NUL flushes the last run
        wide = is_wide(ch)
        if run and (wide != wide_run or ch == "\0"):
            text = "".join(run)
            out += CHINESE_ON + text.encode("gb18030") + CHINESE_OFF if wide_run else text.encode("ascii")
            run = []
        run.append(ch)
        wide_run = wide
    return bytes(out)


def receipt_program(
    lines: Iterable[Line],
    *,
    columns: int = DEFAULT_COLUMNS,
    zh_mode: ZhMode = "codepage",
    rasterize: Rasterize | None = None,
    cut: CutMode = "full",
) -> bytes:
    """The ESC/POS program that prints ``lines`` (laid out by ``text.layout``) and cuts the paper once.

    ``rasterize`` draws a line in ``raster`` mode (``terminal.printer.raster.TextRasterizer``); it is required
    there and unused in ``codepage`` mode.
    """
    if zh_mode not in ("codepage", "raster"):
        raise PrinterError(f"Chinese text is printed in 'codepage' or 'raster' mode, not {zh_mode!r}.")
    if zh_mode == "raster" and rasterize is None:
        raise PrinterError("Raster mode needs a rasterizer to draw lines with Chinese text.")
    out = bytearray(INIT + CHINESE_OFF)
    for line in layout(lines, columns):
        if rasterize is not None and zh_mode == "raster" and not line.isascii():
            out += rasterize(line, columns)
        else:
            out += encode_line(line) + LF
    out += PARTIAL_CUT if cut == "partial" else FULL_CUT
    return bytes(out)
