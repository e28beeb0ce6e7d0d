"""Shift close: the Z-report since the shift opened (P prints it), then sign-out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from terminal.ui.messages import ShiftReportLoaded
from terminal.ui.screens.base import CashierScreen
from terminal.ui.widgets import Plain

if TYPE_CHECKING:
    from terminal.service.zreport import ZReport


class ShiftScreen(CashierScreen):
    TITLE_KEY = "shift.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "close_shift", "Close shift"),
        Binding("p", "print_report", "Print"),
        Binding("escape", "back", "Back"),
    ]
    report: ZReport | None = None

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        yield Plain(id="shift-since", classes="section")
        with VerticalScroll(id="z-scroll"):
            yield Plain(tr("shift.loading"), id="z-report")
        yield Plain(tr("shift.keys"), classes="hint")

    def on_mount(self) -> None:
        since = self.capp.shift_opened_ms or 0
        from terminal.ui.widgets.status import clock_text

        self.query_one("#shift-since", Static).update(
            self.tr("shift.since", at=clock_text(self.capp, since, "%Y-%m-%d %H:%M")))
        self.load(self.ops.z_report(since))

    def on_shift_report_loaded(self, message: ShiftReportLoaded) -> None:
        self.report = message.report
        self.query_one("#z-report", Static).update(message.report.to_text(self.tr))
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "print_report":
            return self.ops.has_printer and self.report is not None
        return True

    def action_print_report(self) -> None:
        if self.report is not None:
            self.capp.print_z_report(self.report)

    def action_close_shift(self) -> None:
        from terminal.ui.screens.dialogs import ConfirmScreen

        def answer(yes: bool | None) -> None:
            if yes:
                self.capp.close_shift()

        self.capp.push_screen(ConfirmScreen(self.tr("shift.confirm_close")), answer)

    def action_back(self) -> None:
        self.dismiss(None)
