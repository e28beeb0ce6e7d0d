"""A line of text drawn as an ESC/POS raster image (``GS v 0``), for printers without a Chinese font.

Each character is drawn centred in its own cells of the printer's column grid (12 dots a column, 24 dots tall, as
font A), so a rasterised line lines up with text lines and its width is exactly ``columns`` x 12 dots.
python-escpos turns the Pillow image into the ``GS v 0`` command (``Dummy`` collects the bytes instead of sending
them); its ``TM-T20II`` profile stands for the usual 80 mm printer: 576 dots, so at most 48 columns.

Not pure: it reads a font file. A CJK font is looked for in the usual places (``CJK_FONTS``) unless one is given;
without one Pillow's built-in font is used, which has no Chinese glyphs (they print as boxes).
"""

from __future__ import annotations

import functools
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from terminal.printer.errors import PrinterError
from terminal.printer.text import is_wide

DOTS_PER_COLUMN = 12
LINE_DOTS = 24
FONT_SIZE = 22
ESCPOS_PROFILE = "TM-T20II"  # 80 mm, 576 dots: python-escpos checks the image width against it
MAX_DOTS = 576
CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def find_cjk_font() -> Path | None:
    for candidate in CJK_FONTS:
        path = Path(candidate)
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=8)
def load_font(path: str | None, size: int = FONT_SIZE) -> Font:
    """The font at ``path`` (a CJK font found on the system when None), else Pillow's built-in one."""
    chosen = path or (str(found) if (found := find_cjk_font()) else None)
    if chosen is not None:
        try:
            return ImageFont.truetype(chosen, size)
        except OSError as exc:
            if path is not None:
                raise PrinterError(f"Cannot load the printer font {path}: {exc}.", orig=exc) from exc
    return ImageFont.load_default(size)


def draw_line(line: str, columns: int, font: Font) -> Image.Image:
    """``line`` on a white 1-bit image ``columns`` x 12 dots wide and 24 tall, one character per cell."""
    image = Image.new("1", (columns * DOTS_PER_COLUMN, LINE_DOTS), 1)
    draw = ImageDraw.Draw(image)
    x = 0
    for ch in line:
        cell = (2 if is_wide(ch) else 1) * DOTS_PER_COLUMN
        if x + cell > image.width:
            break
        if ch != " ":
            draw.text((x + cell / 2, LINE_DOTS / 2), ch, font=font, fill=0, anchor="mm")
        x += cell
    return image


class TextRasterizer:
    """``Rasterize`` for ``program.receipt_program``: (line, columns) → ``GS v 0`` bytes."""

    def __init__(self, font_path: Path | None = None) -> None:
        self.font = load_font(str(font_path) if font_path is not None else None)

    def __call__(self, line: str, columns: int) -> bytes:
        if columns * DOTS_PER_COLUMN > MAX_DOTS:
            raise PrinterError(f"Raster lines are at most {MAX_DOTS // DOTS_PER_COLUMN} columns wide "
                               f"({MAX_DOTS} dots), not {columns}.")
        from escpos.printer import Dummy  # imported here: python-escpos loads its printer profiles on import

        printer = Dummy(profile=ESCPOS_PROFILE)
        printer.image(draw_line(line, columns, self.font), impl="bitImageRaster")
        return bytes(printer.output)
