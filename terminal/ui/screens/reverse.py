"""Refund part of a past sale, or void a whole sale or top-up. Both need a supervisor's PIN, asked right then."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import DataTable, Static

from terminal.ui import ops
from terminal.ui.messages import DataLoaded, OperationDone
from terminal.ui.screens.base import CashierScreen
from terminal.ui.view import HistoryLine, history_line, member_facts
from terminal.ui.widgets.amount import AmountEntry

REVERSIBLE = {"sale", "topup"}
HISTORY_ROWS = 10


class ReverseScreen(CashierScreen):
    TITLE_KEY = "reverse.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refund", "Refund amount"),
        Binding("v", "void", "Void whole"),
        Binding("tab", "app.focus_next", "Next field"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, view: Any) -> None:
        super().__init__()
        self.facts = member_facts(view)
        self.lines: list[HistoryLine] = []

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        yield Static(tr("reverse.pick", name=self.facts.name), classes="section")
        yield DataTable(id="reverse-table", cursor_type="row")
        yield Static(tr("reverse.amount"))
        yield AmountEntry(self.facts.balance.currency, id="reverse-amount")
        yield Static(tr("reverse.keys"), classes="hint")

    def on_mount(self) -> None:
        tr = self.tr
        table = self.query_one("#reverse-table", DataTable)
        table.add_columns(tr("history.when"), tr("history.kind"), tr("history.amount"), tr("history.tender"),
                          tr("history.ref"))
        table.focus()
        self.load("history", ops.history(self.capp.services.counter, self.facts.card_id, HISTORY_ROWS))

    def on_data_loaded(self, message: DataLoaded) -> None:
        if message.what != "history":
            return
        tz = self.capp.services.tz
        self.lines = [line for line in (history_line(i, tz) for i in message.value) if line.kind in REVERSIBLE]
        table = self.query_one("#reverse-table", DataTable)
        table.clear()
        for line in self.lines:
            table.add_row(line.when, self.tr(f"kind.{line.kind}"), line.amount,
                          self.tr(f"tender.{line.tender}") if line.tender else "", line.uuid[:8], key=line.uuid)
        if not self.lines:
            self.notify(self.tr("reverse.nothing"), severity="warning")

    def selected(self) -> HistoryLine | None:
        table = self.query_one("#reverse-table", DataTable)
        if not self.lines or table.cursor_row < 0 or table.cursor_row >= len(self.lines):
            return None
        return self.lines[table.cursor_row]

    def action_refund(self) -> None:
        line = self.selected()
        amount = self.query_one("#reverse-amount", AmountEntry).amount
        if line is None:
            self.notify(self.tr("reverse.pick_first"), severity="warning")
            return
        if amount is None:
            self.query_one("#reverse-amount", AmountEntry).focus()
            self.notify(self.tr("reverse.type_amount"), severity="warning")
            return
        purpose = self.tr("reverse.refund_purpose", amount=str(amount), ref=line.uuid[:8])
        self._with_supervisor(purpose, lambda sup: ops.refund(
            self.capp.services.counter, line.uuid, amount, supervisor=sup, cashier=self.capp.cashier), "refund")

    def action_void(self) -> None:
        line = self.selected()
        if line is None:
            self.notify(self.tr("reverse.pick_first"), severity="warning")
            return
        purpose = self.tr("reverse.void_purpose", kind=self.tr(f"kind.{line.kind}"), amount=line.amount,
                          ref=line.uuid[:8])
        self._with_supervisor(purpose, lambda sup: ops.void(
            self.capp.services.counter, line.uuid, supervisor=sup, cashier=self.capp.cashier), "void")

    def _with_supervisor(self, purpose: str, build: Any, kind: str) -> None:
        from terminal.ui.screens.dialogs import SupervisorScreen

        def approved(supervisor_id: str | None) -> None:
            if supervisor_id:
                self.start_operation(kind, build(supervisor_id))

        self.capp.push_screen(SupervisorScreen(purpose), approved)

    def on_operation_done(self, message: OperationDone) -> None:
        from terminal.ui.screens.receipt import ReceiptScreen

        self.busy = False
        self.capp.switch_screen(ReceiptScreen(message.kind, message.receipt, message.path))

    def action_cancel(self) -> None:
        self.dismiss(None)
