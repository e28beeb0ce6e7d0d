"""Manual entry: the card token's text form, typed or sent by a keyboard-wedge scanner (which types + Enter)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import Input, Static

from cardkit.cards.textform import token_from_text
from cardkit.errors import CardposError
from terminal.ui.screens.base import CashierScreen
from terminal.ui.widgets import Plain


class ManualEntryScreen(CashierScreen):
    TITLE_KEY = "manual.title"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back")]

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        yield Plain(tr("manual.prompt"), classes="prompt")
        yield Input(placeholder=tr("manual.placeholder"), id="token-text")
        yield Plain("", id="manual-error", classes="error prose")
        yield Plain(tr("manual.keys"), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#token-text", Input).focus()

    @on(Input.Changed, "#token-text")
    def _typing(self, event: Input.Changed) -> None:
        if event.value:
            self.query_one("#manual-error", Static).update("")

    @on(Input.Submitted, "#token-text")
    def _submit(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.query_one("#manual-error", Static).update(self.tr("manual.empty"))
            return
        event.input.value = ""
        try:
            token = token_from_text(text)
        except CardposError:
            # Not card text at all: the counter still sees it, refuses it as unreadable and journals the refusal.
            token = text.encode("utf-8", errors="replace")
        self.capp.check_card(token, manual=True)

    def action_back(self) -> None:
        self.capp.return_to_idle()
