"""Points for a gift, chosen from this store's catalogue (the rules the ledger sent): nothing is typed, so the
item and its points are always the catalogue's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import DataTable

from terminal.ui.messages import OperationDone
from terminal.ui.screens.base import CashierScreen
from terminal.ui.view import Tapped
from terminal.ui.widgets import Plain

if TYPE_CHECKING:
    from cardkit.core.rules import Gift


class RedeemScreen(CashierScreen):
    TITLE_KEY = "redeem.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "confirm", "Confirm", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, card: Tapped) -> None:
        super().__init__()
        self.card = card
        self.gifts: tuple[Gift, ...] = ()

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        yield Plain(tr("redeem.for", name=self.card.name, points=f"{self.card.view.points:,}"), classes="section")
        yield DataTable(id="gift-table", cursor_type="row", zebra_stripes=False)
        yield Plain(id="gift-choice")
        yield Plain(tr("redeem.keys"), classes="hint")

    def on_mount(self) -> None:
        tr = self.tr
        self.gifts = self.ops.gifts()
        table = self.query_one("#gift-table", DataTable)
        table.add_column(tr("redeem.col_gift"), width=26)
        table.add_column(tr("redeem.col_points"), width=9)
        table.add_column(tr("redeem.col_id"), width=12)
        table.add_column(tr("redeem.col_can"))
        have = self.card.view.points
        for gift in self.gifts:
            can = tr("redeem.can") if gift.points <= have else tr("redeem.cannot", short=f"{gift.points - have:,}")
            table.add_row(gift.name(tr.lang), f"{gift.points:,}", gift.item_id, can, key=gift.item_id)
        table.focus()
        self.show_choice()
        if not self.gifts:
            self.notify(tr("redeem.empty"), severity="warning")

    def selected(self) -> Gift | None:
        table = self.query_one("#gift-table", DataTable)
        if not self.gifts or not 0 <= table.cursor_row < len(self.gifts):
            return None
        return self.gifts[table.cursor_row]

    @on(DataTable.RowHighlighted)
    def show_choice(self) -> None:
        gift = self.selected()
        text = "" if gift is None else self.tr("redeem.choice", gift=gift.name(self.tr.lang),
                                               points=f"{gift.points:,}")
        self.query_one("#gift-choice", Plain).update(text)

    def action_confirm(self) -> None:
        gift = self.selected()
        if gift is None:
            self.notify(self.tr("redeem.empty"), severity="warning")
            return
        self.start_operation(self.ops.redeem_gift(self.card, gift.item_id, cashier=self.capp.cashier))

    def on_operation_done(self, message: OperationDone) -> None:
        from terminal.ui.screens.receipt import ReceiptScreen

        self.busy = False
        self.capp.switch_screen(ReceiptScreen(message.kind, message.receipt, message.path))

    def action_cancel(self) -> None:
        self.dismiss(None)
