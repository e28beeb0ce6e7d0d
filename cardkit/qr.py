"""QR codes for card numbers and enrollment codes, drawn two ways from one module matrix: inline SVG (the ledger's
console pages) and text (the terminal's screen: two modules across and three down a character with sextant
blocks, or one across and two down with half blocks for a terminal whose font has no sextants). The ``qrcode``
package computes the modules; this module only draws them, so both applications show the same code."""

from __future__ import annotations

from html import escape
from typing import Literal

import qrcode
import qrcode.constants

# Low error correction for text: a card's text form at "M" is too tall for an 80x24 screen with its sentences.
_LEVELS = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M}


def qr_matrix(data: str, *, border: int = 2, level: str = "M") -> list[list[bool]]:
    """The code's modules, ``True`` for dark, with a quiet zone of ``border`` modules."""
    code = qrcode.QRCode(error_correction=_LEVELS[level], border=border)
    code.add_data(data)
    code.make(fit=True)
    return [[bool(module) for module in row] for row in code.get_matrix()]


def qr_svg(data: str, title: str, *, border: int = 2) -> str:
    matrix = qr_matrix(data, border=border)
    size = len(matrix)
    runs: list[str] = []
    for y, row in enumerate(matrix):
        x = 0
        while x < size:
            if row[x]:
                start = x
                while x < size and row[x]:
                    x += 1
                runs.append(f"M{start},{y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    return (f'<svg class="qr" viewBox="0 0 {size} {size}" width="{size * 6}" height="{size * 6}" role="img" '
            f'shape-rendering="crispEdges" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
            f'<rect width="{size}" height="{size}" fill="#fff"/><path d="{"".join(runs)}" fill="#000"/></svg>')


def _sextant(dark: int) -> str:
    """The block character whose sixths ``dark`` marks: bit 0 the upper left, 1 upper right, 2 middle left,
    3 middle right, 4 lower left, 5 lower right (Unicode's BLOCK SEXTANT-N numbering, less one)."""
    if dark in _WHOLE_COLUMNS:
        return _WHOLE_COLUMNS[dark]
    return chr(0x1FB00 + dark - 1 - (dark > 0b010101) - (dark > 0b101010))  # the block leaves out ▌ and ▐


_WHOLE_COLUMNS = {0: " ", 0b010101: "\u258c", 0b101010: "\u2590", 0b111111: "\u2588"}
_SEXTANTS = [_sextant(dark) for dark in range(64)]


QrBlocks = Literal["sextant", "half"]
"""How the terminal draws a code: ``sextant`` (Unicode 13 sextant blocks, fits 80x24) or ``half`` (half blocks,
which every terminal font has, taller than 80x24); ``cardkit.config.QR_BLOCKS`` offers the same."""


def qr_text(data: str, *, border: int = 1, blocks: QrBlocks = "sextant") -> str:
    """The code as lines of block characters at low error correction: sextants (two modules across and three
    down a character) or, for ``blocks="half"``, half blocks (one across and two down).

    A card's text form needs a version 7 to 9 code (45 to 53 modules a side): at two modules a line (half
    blocks) that is 24 to 28 lines, more than an 80x24 screen holds; at three it is 16 to 19. A terminal's cell
    is about twice as tall as wide, so a module comes out a third taller than wide, which readers take in their
    stride (zbar reads it). Dark modules are ink: the screens show the code dark on light."""
    matrix = qr_matrix(data, border=border, level="L")
    if blocks == "half":
        return _half_block_text(matrix)
    width, height = len(matrix[0]) + len(matrix[0]) % 2, -(-len(matrix) // 3) * 3
    grid = [[*row, *[False] * (width - len(row))] for row in matrix] + [[False] * width] * (height - len(matrix))
    return "\n".join("".join(_SEXTANTS[sum(1 << bit for bit, (dy, dx) in enumerate(_SIXTHS) if grid[y + dy][x + dx])]
                             for x in range(0, width, 2))
                     for y in range(0, height, 3))


_SIXTHS = ((0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1))
"""(row, column) of each sixth of a character, in the bit order of ``_sextant``."""


# Upper module, lower module -> the character; dark modules are the ink (the screens draw it dark on light).
_HALF_BLOCKS = {(False, False): " ", (True, False): "\u2580", (False, True): "\u2584", (True, True): "\u2588"}


def _half_block_text(matrix: list[list[bool]]) -> str:
    """One line per two module rows: a card's text form is 24 to 28 lines, so the screens scroll it, but ▀ ▄ █
    are in every terminal font (the Linux console's too), where sextants may show as boxes."""
    if len(matrix) % 2:
        matrix = [*matrix, [False] * len(matrix[0])]
    return "\n".join("".join(_HALF_BLOCKS[(top, bottom)] for top, bottom in zip(upper, lower, strict=True))
                     for upper, lower in zip(matrix[::2], matrix[1::2], strict=True))
