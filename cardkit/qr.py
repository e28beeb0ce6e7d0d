"""QR codes for card numbers and enrollment codes, drawn two ways from one module matrix: inline SVG (the ledger's
console pages) and text (the terminal's screen, two module rows per line with half blocks). The ``qrcode``
package computes the modules; this module only draws them, so both applications show the same code."""

from __future__ import annotations

from html import escape

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


# Upper module, lower module -> the character (dark modules drawn as blank on a light-on-dark terminal would read
# inverted, so dark is drawn as the block: scanners read dark-on-light and reversed codes alike).
_HALF_BLOCKS = {(False, False): " ", (True, False): "\u2580", (False, True): "\u2584", (True, True): "\u2588"}


def qr_text(data: str, *, border: int = 1) -> str:
    """The code as lines of half-block characters (one line per two module rows), at low error correction so a
    card's text form fits a terminal screen."""
    matrix = qr_matrix(data, border=border, level="L")
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    return "\n".join("".join(_HALF_BLOCKS[(top, bottom)] for top, bottom in zip(upper, lower, strict=True))
                     for upper, lower in zip(matrix[::2], matrix[1::2], strict=True))
