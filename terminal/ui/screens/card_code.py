"""What a screen showing a card's QR code shares (sign-up, new card): the code box with its hint line under the
keys, and F7 switching the drawing between sextant and half blocks for a font without sextants."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from terminal.ui.screens.base import CashierScreen
from terminal.ui.widgets import Plain
from terminal.ui.widgets.qrcode import QrCodeBox

if TYPE_CHECKING:
    from cardkit.qr import QrBlocks


class CardCodeScreen(CashierScreen):
    qr_hint_id: ClassVar[str]
    """The id of the screen's hint line that says what F7 does now."""

    def action_toggle_qr_blocks(self) -> None:
        box = self.query_one(QrCodeBox)
        if box.data is not None:
            self._show_qr(box.data, self.capp.toggle_qr_blocks())

    def _show_qr(self, data: str, blocks: QrBlocks) -> None:
        box = self.query_one(QrCodeBox)
        box.show(data, blocks)
        hint = self.query_one(f"#{self.qr_hint_id}", Plain)
        hint.update(self.tr(f"qr.hint_{blocks}"))
        hint.display = True
        if blocks == "half":  # taller than the screen: the arrow keys scroll it
            box.focus()

    def _hide_qr(self) -> None:
        self.query_one(QrCodeBox).hide()
        self.query_one(f"#{self.qr_hint_id}").display = False

    def _qr_action_enabled(self) -> bool:
        return self.query_one(QrCodeBox).data is not None
