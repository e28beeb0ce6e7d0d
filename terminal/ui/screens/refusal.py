"""A refused card: full-width red, the reason in words, and nothing about the member."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widget import Widget

from cardkit.cards.verdict import RejectReason
from terminal.ui.screens.base import CashierScreen
from terminal.ui.widgets import Plain


class RefusalScreen(CashierScreen):
    TITLE_KEY = "refusal.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "back", "Done"),
        Binding("escape", "back", "Done", show=False),
        Binding("m", "manual", "Manual entry"),
    ]

    def __init__(self, reason: RejectReason, *, manual: bool = False) -> None:
        super().__init__()
        self.reason = reason
        self.manual = manual

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        with Vertical(id="refusal"):
            yield Plain(tr("refusal.headline"), id="refusal-headline")
            yield Plain(tr(f"reason.{self.reason.value}"), id="refusal-reason", classes="prose")
            yield Plain(tr("refusal.code", code=self.reason.value), id="refusal-code")
            yield Plain(tr(f"refusal.advice.{self.reason.value}"), id="refusal-advice", classes="prose")
        yield Plain(tr("refusal.keys"), classes="hint")

    def action_back(self) -> None:
        self.capp.return_to_idle()

    def action_manual(self) -> None:
        from terminal.ui.screens.manual import ManualEntryScreen

        self.capp.return_to_idle()
        self.capp.push_screen(ManualEntryScreen())
