"""Shift close: the Z-report since the shift opened, then sign-out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from terminal.ui.messages import ShiftReportLoaded
from terminal.ui.screens.base import CashierScreen
from terminal.ui.widgets import Plain


class ShiftScreen(CashierScreen):
    TITLE_KEY = "shift.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "close_shift", "Close shift"),
        Binding("escape", "back", "Back"),
    ]

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
        self.query_one("#z-report", Static).update(message.report.to_text())

    def action_close_shift(self) -> None:
        from terminal.ui.screens.dialogs import ConfirmScreen

        def answer(yes: bool | None) -> None:
            if yes:
                self.capp.close_shift()

        self.capp.push_screen(ConfirmScreen(self.tr("shift.confirm_close")), answer)

    def action_back(self) -> None:
        self.dismiss(None)
