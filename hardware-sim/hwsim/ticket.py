"""Finished tickets on disk: ``ticket-NNNN.txt`` (UTF-8 text) and ``ticket-NNNN.png`` (the paper as drawn).

Numbers continue after the highest ticket already in the directory, so a restarted simulator appends. Each file
is written under a temporary name and renamed into place, the PNG first: whoever sees ``ticket-NNNN.txt`` can
read both files whole.

The PNG draws the print area of 80 mm paper at 203 dpi: 12 dots a column, 30 dots a text line (24 for the glyph,
6 of line spacing), wide characters in two cells, raster images as sent. It uses a CJK font when one is installed
(``--font`` or the usual places), else Pillow's built-in font, which draws Chinese as boxes.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from hwsim.errors import SimulatorError
from hwsim.escpos_stream import Raster
from hwsim.printer import Ticket

DOTS_PER_COLUMN = 12
LINE_DOTS = 30
MARGIN = 16
FONT_SIZE = 22
CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)
_NAME = re.compile(r"ticket-(\d+)\.txt")

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def load_font(path: Path | None) -> Font:
    candidates = [str(path)] if path is not None else [c for c in CJK_FONTS if Path(c).is_file()]
    for candidate in candidates:
        try:
            return ImageFont.truetype(candidate, FONT_SIZE)
        except OSError as exc:
            if path is not None:
                raise SimulatorError(f"cannot load the font {path}: {exc}", orig=exc) from exc
    return ImageFont.load_default(FONT_SIZE)


class TicketWriter:
    def __init__(self, out_dir: Path, *, columns: int, font_path: Path | None = None) -> None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            existing = [int(m.group(1)) for p in out_dir.iterdir() if (m := _NAME.fullmatch(p.name))]
        except OSError as exc:
            raise SimulatorError(f"cannot use the ticket directory {out_dir}: {exc.strerror}", orig=exc) from exc
        self.out_dir = out_dir
        self.columns = columns
        self.font = load_font(font_path)
        self.next_number = max(existing, default=0) + 1
        self.written: list[Path] = []

    def write(self, ticket: Ticket) -> Path:
        """Write the ticket's PNG then its text; return the text file's path."""
        number = self.next_number
        self.next_number += 1
        txt = self.out_dir / f"ticket-{number:04d}.txt"
        png = txt.with_suffix(".png")
        png_tmp, txt_tmp = png.with_name(f".{png.name}.tmp"), txt.with_name(f".{txt.name}.tmp")
        render(ticket, self.columns, self.font).save(png_tmp, format="PNG")
        os.replace(png_tmp, png)
        txt_tmp.write_text(ticket.text(), encoding="utf-8")
        os.replace(txt_tmp, txt)
        self.written.append(txt)
        return txt


def render(ticket: Ticket, columns: int, font: Font) -> Image.Image:
    """The ticket as printed: black on white paper."""
    width = columns * DOTS_PER_COLUMN
    heights = [LINE_DOTS if isinstance(line, str) else line.height for line in ticket.lines]
    image = Image.new("L", (width + 2 * MARGIN, sum(heights) + 2 * MARGIN), 255)
    draw = ImageDraw.Draw(image)
    y = MARGIN
    for line, height in zip(ticket.lines, heights, strict=True):
        if isinstance(line, str):
            _draw_text(draw, line, MARGIN, y, font)
        elif line.width and line.height:
            image.paste(_raster_image(line), (MARGIN, y))
        y += height
    return image


def _draw_text(draw: ImageDraw.ImageDraw, line: str, x: int, y: int, font: Font) -> None:
    for ch in line:
        wide = not ch.isascii() and unicodedata.east_asian_width(ch) in ("W", "F", "A")
        cell = (2 if wide else 1) * DOTS_PER_COLUMN
        if ch != " ":
            draw.text((x + cell / 2, y + LINE_DOTS / 2), ch, font=font, fill=0, anchor="mm")
        x += cell


def _raster_image(raster: Raster) -> Image.Image:
    # ESC/POS: bit 1 = a black dot; Pillow's 1-bit mode: bit 1 = white.
    inverted = bytes(~b & 0xFF for b in raster.data)
    return Image.frombytes("1", (raster.width, raster.height), inverted).convert("L")
