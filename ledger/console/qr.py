"""QR codes as inline SVG (the ``qrcode`` package computes the modules; we draw them), for enrollment codes
and card tokens shown once on a page."""

from __future__ import annotations

from html import escape

import qrcode
import qrcode.constants


def qr_svg(data: str, title: str, *, border: int = 2) -> str:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=border)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()
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
