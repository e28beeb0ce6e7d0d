"""Points for a gift item, outside a sale."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual import events, on
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import Input

from terminal.ui.messages import OperationDone
from terminal.ui.screens.base import CashierScreen
from terminal.ui.view import Tapped
from terminal.ui.widgets import Plain
from terminal.ui.widgets.amount import NumberEntry


class RedeemScreen(CashierScreen):
    TITLE_KEY = "redeem.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "confirm", "Confirm"),
        Binding("tab", "app.focus_next", "Next field"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, card: Tapped) -> None:
        super().__init__()
        self.card = card

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        yield Plain(tr("redeem.for", name=self.card.name, points=f"{self.card.view.points:,}"), classes="section")
        yield Plain(tr("redeem.item"))
        yield Input(placeholder=tr("redeem.item_placeholder"), id="redeem-item")
        yield Plain(tr("redeem.points"))
        yield NumberEntry(suffix=tr("sale.points_unit"), id="redeem-points")
        yield Plain(tr("redeem.keys"), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#redeem-item", Input).focus()

    @on(Input.Submitted, "#redeem-item")
    def _next(self) -> None:
        self.query_one("#redeem-points", NumberEntry).focus()

    def on_key(self, event: events.Key) -> None:
        # Enter in the points field confirms (the item field's Enter moves to the points).
        if event.key == "enter" and isinstance(self.focused, NumberEntry):
            event.stop()
            self.action_confirm()

    def action_confirm(self) -> None:
        item = self.query_one("#redeem-item", Input).value.strip()
        points = self.query_one("#redeem-points", NumberEntry).integer
        if not item or points <= 0:
            self.notify(self.tr("redeem.missing"), severity="warning")
            return
        self.start_operation(self.ops.redeem(self.card, points, item, cashier=self.capp.cashier))

    def on_operation_done(self, message: OperationDone) -> None:
        from terminal.ui.screens.receipt import ReceiptScreen

        self.busy = False
        self.capp.switch_screen(ReceiptScreen(message.kind, message.receipt, message.path))

    def action_cancel(self) -> None:
        self.dismiss(None)
