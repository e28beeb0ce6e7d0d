"""The new card of a tier upgrade at the counter: the upgrade is journaled; this screen asks the ledger for the
new card (online), asks the cashier for a blank card and writes it through the app's own reader connection
(``terminal.service.newcard.card_for_upgrade``, the steps ``op upgrade`` takes). A failed write keeps the issued
card: F8, or putting a blank card on the reader, writes the very same card again. Offline the card is queued and
the screen says so. Without a reader that writes, the card number is shown as a QR code (and printed)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget

from terminal.ui.screens.card_code import CardCodeScreen
from terminal.ui.widgets import Plain
from terminal.ui.widgets.qrcode import QrCodeBox

if TYPE_CHECKING:
    from terminal.service.newcard import NewCardState
    from terminal.service.receipt import Receipt
    from terminal.ui.messages import UpgradeCardDone


class NewCardScreen(CardCodeScreen):
    qr_hint_id = "newcard-qr-hint"

    TITLE_KEY = "newcard.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f8", "write_again", "Write card"),
        Binding("f7", "toggle_qr_blocks", "Code size"),
        Binding("enter", "done", "Done"), Binding("escape", "done", "Done", show=False),
    ]

    def __init__(self, receipt: Receipt) -> None:
        super().__init__()
        self.receipt = receipt
        self.state: NewCardState | None = None
        self.asking = False

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        p = self.receipt.payload
        yield Plain(tr("newcard.upgraded", tier=tr(f"tier.{p['to']}"), card=str(p["card"])), id="newcard-head")
        with Horizontal(id="newcard-row"):
            with Vertical(id="newcard-text"):
                yield Plain("", id="newcard-result")
                yield Plain("", id="newcard-keys", classes="hint")
                yield Plain("", id="newcard-qr-hint", classes="hint prose")
            yield QrCodeBox(id="newcard-qr-box", code_id="newcard-qr")

    def on_mount(self) -> None:
        super().on_mount()
        self._hide_qr()
        self.ask()

    @property
    def waits_for_blank(self) -> bool:
        """Issued, not written, with a reader: a blank card put on the reader is written at once."""
        return (not self.asking and self.ops.has_reader and self.state is not None
                and self.state.stage.value == "issued")

    def ask(self) -> None:
        self.asking = True
        line = self.tr("newcard.asking") + ("\n" + self.tr("newcard.present_blank") if self.ops.has_reader else "")
        self.query_one("#newcard-result", Plain).update(line)
        self.refresh_bindings()
        self.load(self.ops.upgrade_card(self.receipt))

    def on_upgrade_card_done(self, message: UpgradeCardDone) -> None:
        from cardkit.cards.textform import token_to_text

        self.asking = False
        state = self.state = message.state
        tr = self.tr
        self._hide_qr()
        if state.stage.value == "written" and state.card is not None:
            line = tr("newcard.written", card=state.card.card_id, old=state.old_card)
            keys = tr("newcard.keys_done")
        elif state.stage.value == "issued" and state.card is not None:
            text = token_to_text(state.card.token)
            if self.ops.has_reader:
                line = tr("newcard.not_written", card=state.card.card_id, reason=state.last_error)
            else:
                line = tr("newcard.no_reader", card=state.card.card_id)
            self._show_qr(text, self.capp.qr_blocks)
            if not self.ops.has_reader:  # no reader will ever write it here: the printer gives it on paper
                self.capp.print_card_qr(state.card.card_id, text)
            keys = tr("newcard.keys_retry") if self.ops.has_reader else tr("newcard.keys_done")
        else:
            line = tr("newcard.queued", reason=state.last_error) if state.last_error else tr("newcard.queued_quiet")
            keys = tr("newcard.keys_retry")
        self.query_one("#newcard-result", Plain).update(line)
        self.query_one("#newcard-keys", Plain).update(keys)
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "write_again":
            return (not self.asking and self.state is not None and self.state.stage.value != "written"
                    and (self.ops.has_reader or self.state.stage.value == "queued"))
        if action == "toggle_qr_blocks":
            return self._qr_action_enabled()
        return True

    def blank_card_presented(self) -> None:
        """The app saw a blank card put on the reader: write the waiting card to it."""
        if self.waits_for_blank:
            self.ask()

    def action_write_again(self) -> None:
        if not self.asking:
            self.ask()

    def action_done(self) -> None:
        # The old card is revoked: the member is served again by tapping the new card.
        self.capp.return_to_idle()
