"""What every cashier screen shares: the top bar, the status bar, the footer, and the two workers that run
counter operations and read-only queries off the UI thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widget import Widget

from cardkit.errors import CardposError, DomainError
from terminal.ui.i18n import translate_bindings
from terminal.ui.messages import DataLoaded, OperationDeclined, OperationDone, OperationFailed
from terminal.ui.widgets.footer import CashierFooter
from terminal.ui.widgets.status import StatusBar, TopBar

if TYPE_CHECKING:
    from terminal.ui.app import CashierApp
    from terminal.ui.i18n import Translator


class CashierScreen(Screen[Any]):
    TITLE_KEY = "app.name"
    busy: bool = False

    @property
    def capp(self) -> CashierApp:
        return cast("CashierApp", self.app)

    @property
    def tr(self) -> Translator:
        return self.capp.tr

    def compose(self) -> ComposeResult:
        yield TopBar(self.tr(self.TITLE_KEY))
        with Vertical(id="body"):
            yield from self.compose_body()
        yield StatusBar()
        yield CashierFooter()

    def compose_body(self) -> Iterable[Widget]:
        return ()

    def on_mount(self) -> None:
        translate_bindings(self, self.tr)
        self.refresh_bindings()

    def on_screen_resume(self) -> None:
        self.capp.refresh_status()

    # -- workers --------------------------------------------------------------------------------------------
    def start_operation(self, kind: str, op: Callable[[], Any]) -> bool:
        """Run a journaling counter operation once; a second press while it runs is ignored (no double sale)."""
        if self.busy:
            return False
        self.busy = True
        self._operation(kind, op)
        return True

    @work(thread=True, exclusive=True, group="counter")
    def _operation(self, kind: str, op: Callable[[], Any]) -> None:
        try:
            receipt = op()
        except DomainError as exc:
            self.post_message(OperationDeclined(kind, exc.message, exc.code))
            return
        except CardposError as exc:
            self.post_message(OperationFailed(kind, str(exc)))
            return
        path = self.capp.save_receipt(kind, receipt) if kind != "member_update" else None
        self.post_message(OperationDone(kind, receipt, path))
        sync = self.capp.services.sync
        if sync is not None:
            sync.kick()  # push the new entry now rather than at the next interval

    @work(thread=True, group="query")
    def load(self, what: str, query: Callable[[], Any]) -> None:
        """Run a read-only query in a thread and post ``DataLoaded(what, value)`` (or OperationFailed)."""
        try:
            value = query()
        except DomainError as exc:
            self.post_message(OperationDeclined(what, exc.message, exc.code))
            return
        except CardposError as exc:
            self.post_message(OperationFailed(what, str(exc)))
            return
        self.post_message(DataLoaded(what, value))

    def on_operation_declined(self, message: OperationDeclined) -> None:
        from terminal.ui.screens.dialogs import DeclineScreen

        self.busy = False
        self.capp.push_screen(DeclineScreen(message.text, message.code))

    def on_operation_failed(self, message: OperationFailed) -> None:
        from terminal.ui.screens.dialogs import DeclineScreen

        self.busy = False
        self.capp.push_screen(DeclineScreen(message.text, "failed"))
