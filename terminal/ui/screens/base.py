"""What every cashier screen shares: the top bar, the status bar, the footer, and the two workers that run
counter operations and read-only queries off the UI thread.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from textual import events, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

from cardkit.errors import CardposError, DomainError
from cardkit.journal import EntryKind
from terminal.ui.i18n import translate_bindings
from terminal.ui.messages import (
    OperationDeclined,
    OperationDone,
    OperationFailed,
    PrintDone,
    QueryDeclined,
    QueryFailed,
)
from terminal.ui.widgets.footer import CashierFooter
from terminal.ui.widgets.status import StatusBar, TopBar

if TYPE_CHECKING:
    from terminal.ui.app import CashierApp
    from terminal.ui.i18n import Translator
    from terminal.ui.ops import Operation, Query, TerminalOps


class CashierScreen(Screen[Any]):
    TITLE_KEY = "app.name"
    busy: bool = False

    @property
    def capp(self) -> CashierApp:
        return cast("CashierApp", self.app)

    @property
    def tr(self) -> Translator:
        return self.capp.tr

    @property
    def ops(self) -> TerminalOps:
        return self.capp.ops

    def compose(self) -> ComposeResult:
        yield TopBar(self.tr(self.TITLE_KEY))
        with Vertical(id="body"):
            yield from self.compose_body()
        yield StatusBar()
        yield CashierFooter()

    def compose_body(self) -> Iterable[Widget]:
        return ()

    def body_width(self) -> int:
        """Cells a line of the body has (the screen less the body's padding): what labels are laid out in."""
        return max(self.app.size.width - 2, 20)

    def on_mount(self) -> None:
        translate_bindings(self, self.tr)
        self.refresh_bindings()

    def on_screen_resume(self) -> None:
        self.capp.refresh_status()

    def on_key(self, event: events.Key) -> None:
        # Every key gives visible feedback: a letter this screen takes nothing for says so, rather than being
        # silently dropped (a newcomer would think the app froze). Fields and the keypad take their own keys.
        char = event.character or ""
        if len(char) != 1 or not char.isalpha() or isinstance(self.focused, Input):
            return
        if event.key in self.active_bindings:
            return
        self.notify(self.tr("keys.unbound", letter=char.upper()), severity="warning", timeout=3)

    # -- workers --------------------------------------------------------------------------------------------
    def start_operation(self, operation: Operation) -> bool:
        """Run a journaling counter operation once; a second press while it runs is ignored (no double sale)."""
        if self.busy:
            return False
        self.busy = True
        self._operation(operation)
        return True

    @work(thread=True, exclusive=True, group="counter")
    def _operation(self, operation: Operation) -> None:
        kind = operation.kind
        try:
            receipt = operation.run()
        except DomainError as exc:
            self.post_message(OperationDeclined(kind, self.tr.error(exc), exc.code))
            return
        except CardposError as exc:
            self.post_message(OperationFailed(kind, self.tr.error(exc)))
            return
        # Journaled: now the receipt. Printed (in its own worker, from on_operation_done) when there is a printer,
        # else saved as a text file.
        saved = kind != EntryKind.MEMBER_UPDATE and not self.ops.has_printer
        path = self.capp.save_receipt(receipt) if saved else None
        self.post_message(OperationDone(kind, receipt, path))
        self.ops.kick_sync()  # push the new entry now rather than at the next interval

    def on_operation_done(self, message: OperationDone) -> None:
        # Runs after the screen's own handler (Textual calls each class's handler up the MRO).
        self.capp.read_queue_depth()  # the status bar's queue counts the new entry now, not at the next tick
        if message.kind != EntryKind.MEMBER_UPDATE:
            self.capp.print_receipt(message.receipt)

    def print_done(self, message: PrintDone) -> None:
        """A print job ended (the app tells every screen on the stack; those that show a print say how)."""

    @work(thread=True, group="query")
    def load(self, query: Query) -> None:
        """Ask a read-only query in a thread and post its answer (or QueryDeclined / QueryFailed)."""
        try:
            answer = query.run()
        except DomainError as exc:
            self.post_message(QueryDeclined(query.what, self.tr.error(exc), exc.code))
            return
        except CardposError as exc:
            self.post_message(QueryFailed(query.what, self.tr.error(exc)))
            return
        self.post_message(answer)

    def _declined(self, text: str, code: str) -> None:
        from terminal.ui.screens.dialogs import DeclineScreen

        self.busy = False
        self.capp.push_screen(DeclineScreen(text, code))

    def on_operation_declined(self, message: OperationDeclined) -> None:
        self._declined(message.text, message.code)

    def on_operation_failed(self, message: OperationFailed) -> None:
        self._declined(message.text, "failed")

    def on_query_declined(self, message: QueryDeclined) -> None:
        self._declined(message.text, message.code)

    def on_query_failed(self, message: QueryFailed) -> None:
        self._declined(message.text, "failed")
