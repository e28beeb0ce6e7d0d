"""Top-up: the amount on the keypad, an external tender, and the bonus the rules add."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import Static

from cardkit.core.loyalty import EXTERNAL_TENDERS
from terminal.ui.messages import OperationDone, QueryDeclined, QueryName, TopUpQuoted
from terminal.ui.screens.base import CashierScreen
from terminal.ui.view import Tapped
from terminal.ui.widgets import Plain
from terminal.ui.widgets.amount import AmountEntry, NumberEntry

if TYPE_CHECKING:
    from cardkit.core.loyalty import TopupQuote


class TopUpScreen(CashierScreen):
    TITLE_KEY = "topup.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "confirm", "Confirm"),
        Binding("t", "tender", "Tender"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, card: Tapped) -> None:
        super().__init__()
        self.card = card
        self.tender = EXTERNAL_TENDERS[0]
        self.quote: TopupQuote | None = None
        self.problem: str | None = None

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        balance = self.card.view.balance
        yield Plain(tr("topup.for", name=self.card.name, balance=str(balance)), id="topup-member")
        yield Plain(tr("topup.amount"))
        yield AmountEntry(balance.currency, id="topup-amount")
        yield Plain(id="topup-tender")
        yield Plain(id="topup-quote", classes="prose")
        yield Plain(tr("topup.keys"), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#topup-amount", AmountEntry).focus()
        self.show()

    def action_tender(self) -> None:
        self.tender = EXTERNAL_TENDERS[(EXTERNAL_TENDERS.index(self.tender) + 1) % len(EXTERNAL_TENDERS)]
        self.on_number_entry_changed(None)

    def on_number_entry_changed(self, _: NumberEntry.Changed | None) -> None:
        self.quote = None
        self.problem = None
        amount = self.query_one("#topup-amount", AmountEntry).amount
        if amount is not None:
            self.load(self.ops.preview_topup(self.card, amount, tender=self.tender))
        self.show()

    def on_top_up_quoted(self, message: TopUpQuoted) -> None:
        self.quote = message.quote
        self.show()

    def on_query_declined(self, message: QueryDeclined) -> None:
        if message.what == QueryName.TOPUP_QUOTE:
            self.problem = message.text
            self.show()
            message.prevent_default()

    def show(self) -> None:
        tr = self.tr
        self.query_one("#topup-tender", Static).update(tr("topup.tender", tender=tr(f"tender.{self.tender}")))
        widget = self.query_one("#topup-quote", Static)
        if self.problem:
            widget.update(tr("sale.would_decline", text=self.problem))
        elif self.quote is not None:
            q = self.quote
            widget.update(tr("topup.quote", amount=str(q.amount), bonus=str(q.bonus),
                             total=str(q.amount + q.bonus)))
        else:
            widget.update(tr("sale.enter_amount"))

    def action_confirm(self) -> None:
        amount = self.query_one("#topup-amount", AmountEntry).amount
        if amount is None:
            self.notify(self.tr("sale.enter_amount"), severity="warning")
            return
        self.start_operation(self.ops.topup(self.card, amount, tender=self.tender, cashier=self.capp.cashier))

    def on_operation_done(self, message: OperationDone) -> None:
        from terminal.ui.screens.receipt import ReceiptScreen

        self.busy = False
        self.capp.switch_screen(ReceiptScreen(message.kind, message.receipt, message.path))

    def action_cancel(self) -> None:
        self.dismiss(None)
