"""QR codes as inline SVG for the console's pages: the kernel draws them (``cardkit.qr``, shared with the
terminal's text QR codes)."""

from __future__ import annotations

from cardkit.qr import qr_svg

__all__ = ["qr_svg"]
