"""A card's QR code on a cashier screen: drawn as text, dark on light, in the blocks the terminal's font can show
(``cardkit.qr.qr_text``), scrolled when taller than its room (the half-block form is, at 80x24)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import VerticalScroll

from terminal.ui.widgets import Plain

if TYPE_CHECKING:
    from cardkit.qr import QrBlocks


class QrCodeBox(VerticalScroll):
    def __init__(self, *, id: str, code_id: str) -> None:
        super().__init__(id=id)
        self.code_id = code_id
        self.data: str | None = None
        """What the code holds (None: nothing shown)."""

    def compose(self) -> ComposeResult:
        yield Plain("", id=self.code_id, classes="qr")

    def show(self, data: str, blocks: QrBlocks) -> None:
        from cardkit.qr import qr_text  # loads the qrcode package only once a code is shown

        self.data = data
        self.query_one(f"#{self.code_id}", Plain).update(qr_text(data, blocks=blocks))
        self.scroll_home(animate=False)
        self.display = True

    def hide(self) -> None:
        self.data = None
        self.display = False
