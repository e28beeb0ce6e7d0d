"""The idle screen: waiting for a card tap. Every other flow starts here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widget import Widget

from terminal.ui.screens.base import CashierScreen
from terminal.ui.widgets import Plain


class IdleScreen(CashierScreen):
    TITLE_KEY = "idle.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "manual", "Manual entry"),
        Binding("n", "signup", "Join"),
        Binding("f2", "demo", "Tap card"),
        Binding("z", "shift", "Shift/Z-report"),
        Binding("f9", "technician", "Technician"),
        Binding("l", "switch_language", "Language"),
        Binding("ctrl+l", "sign_out", "Sign out"),
        Binding("ctrl+q", "app.quit", "Quit"),
    ]

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        yield Plain(tr("idle.prompt"), id="tap-prompt")
        yield Plain(tr("idle.checking"), id="tap-busy", classes="hint")
        yield Plain(tr("idle.help"), id="idle-help", classes="hint")

    def on_mount(self) -> None:
        self.set_checking(False)

    def set_checking(self, checking: bool) -> None:
        self.query_one("#tap-busy").display = checking

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "demo":
            return self.capp.demo is not None
        return True

    def action_manual(self) -> None:
        from terminal.ui.screens.manual import ManualEntryScreen

        self.capp.push_screen(ManualEntryScreen())

    def action_signup(self) -> None:
        from terminal.ui.screens.signup import SignupScreen

        self.capp.push_screen(SignupScreen())

    def action_demo(self) -> None:
        from terminal.ui.screens.dialogs import DemoTapScreen

        self.capp.push_screen(DemoTapScreen())

    def action_shift(self) -> None:
        from terminal.ui.screens.shift import ShiftScreen

        self.capp.push_screen(ShiftScreen())

    def action_technician(self) -> None:
        self.capp.open_technician()

    def action_switch_language(self) -> None:
        self.capp.switch_language()

    def action_sign_out(self) -> None:
        self.capp.sign_out()
