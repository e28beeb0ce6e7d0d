"""Manual entry: the card token's text form, typed or sent by a keyboard-wedge scanner (which types + Enter)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import Input, Static

from terminal.ui.screens.base import CashierScreen


class ManualEntryScreen(CashierScreen):
    TITLE_KEY = "manual.title"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back")]

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        yield Static(tr("manual.prompt"), classes="prompt")
        yield Input(placeholder=tr("manual.placeholder"), id="token-text")
        yield Static("", id="manual-error", classes="error")
        yield Static(tr("manual.keys"), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#token-text", Input).focus()

    @on(Input.Submitted, "#token-text")
    def _submit(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.query_one("#manual-error", Static).update(self.tr("manual.empty"))
            return
        event.input.value = ""
        self.capp.check_card(text.encode("ascii", errors="replace"), manual=True)

    def action_back(self) -> None:
        self.capp.return_to_idle()
