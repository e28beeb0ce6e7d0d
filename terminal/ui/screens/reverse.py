"""Refund part of a past sale, or void a whole sale or top-up. Both need a supervisor's PIN, asked right then."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import DataTable

from cardkit.journal import EntryKind
from terminal.ui.messages import HistoryLoaded, OperationDone
from terminal.ui.screens.base import CashierScreen
from terminal.ui.view import HistoryLine, Tapped, history_line, history_table
from terminal.ui.widgets import Plain
from terminal.ui.widgets.amount import AmountEntry

if TYPE_CHECKING:
    from terminal.ui.ops import Operation
    from terminal.ui.services import Cashier

REVERSIBLE = {EntryKind.SALE, EntryKind.TOPUP}
HISTORY_ROWS = 20


class ReverseScreen(CashierScreen):
    TITLE_KEY = "reverse.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refund", "Refund amount"),
        Binding("v", "void", "Void whole"),
        Binding("tab", "app.focus_next", "Next field"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, card: Tapped) -> None:
        super().__init__()
        self.card = card
        self.lines: list[HistoryLine] = []

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        yield Plain(tr("reverse.pick", name=self.card.name), classes="section")
        yield DataTable(id="reverse-table", cursor_type="row")
        yield Plain(tr("reverse.amount"))
        yield AmountEntry(self.card.view.balance.currency, id="reverse-amount")
        yield Plain(tr("reverse.keys"), classes="hint")

    def on_mount(self) -> None:
        table = self.query_one("#reverse-table", DataTable)
        history_table(table, [], self.tr, self.body_width())
        table.focus()
        self.load(self.ops.history(self.card.card_id, HISTORY_ROWS))

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        tz = self.capp.services.tz
        self.lines = [line for line in (history_line(op, tz, self.tr) for op in message.operations)
                      if line.kind in REVERSIBLE]
        history_table(self.query_one("#reverse-table", DataTable), self.lines, self.tr, self.body_width())
        if not self.lines:
            self.notify(self.tr("reverse.nothing"), severity="warning")

    def selected(self) -> HistoryLine | None:
        table = self.query_one("#reverse-table", DataTable)
        if not self.lines or not 0 <= table.cursor_row < len(self.lines):
            return None
        return self.lines[table.cursor_row]

    def action_refund(self) -> None:
        line = self.selected()
        entry = self.query_one("#reverse-amount", AmountEntry)
        amount = entry.amount
        if line is None:
            self.notify(self.tr("reverse.pick_first"), severity="warning")
            return
        if amount is None:
            entry.focus()
            self.notify(self.tr("reverse.type_amount"), severity="warning")
            return
        purpose = self.tr("reverse.refund_purpose", amount=str(amount), ref=f"#{line.seq}")
        self._with_supervisor(purpose, lambda sup: self.ops.refund(
            line.uuid, amount, supervisor=sup, cashier=self.capp.cashier))

    def action_void(self) -> None:
        line = self.selected()
        if line is None:
            self.notify(self.tr("reverse.pick_first"), severity="warning")
            return
        purpose = self.tr("reverse.void_purpose", summary=line.summary, ref=f"#{line.seq}")
        self._with_supervisor(purpose, lambda sup: self.ops.void(line.uuid, supervisor=sup, cashier=self.capp.cashier))

    def _with_supervisor(self, purpose: str, build: Callable[[Cashier], Operation]) -> None:
        from terminal.ui.screens.dialogs import SupervisorScreen

        def approved(supervisor: Cashier | None) -> None:
            if supervisor is not None:
                self.start_operation(build(supervisor))

        self.capp.push_screen(SupervisorScreen(purpose), approved)

    def on_operation_done(self, message: OperationDone) -> None:
        from terminal.ui.screens.receipt import ReceiptScreen

        self.busy = False
        self.capp.switch_screen(ReceiptScreen(message.kind, message.receipt, message.path))

    def action_cancel(self) -> None:
        self.dismiss(None)
