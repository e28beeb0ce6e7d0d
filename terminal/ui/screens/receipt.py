"""The receipt of a journaled operation, as printed, plus where its text file was written."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widget import Widget

from terminal.ui.screens.base import CashierScreen
from terminal.ui.widgets import Plain

if TYPE_CHECKING:
    from cardkit.journal import EntryKind
    from terminal.service.receipt import Receipt


class ReceiptScreen(CashierScreen):
    TITLE_KEY = "receipt.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "done", "Done"), Binding("escape", "done", "Done", show=False),
    ]

    def __init__(self, kind: EntryKind, receipt: Receipt, path: Path | None) -> None:
        super().__init__()
        self.kind = kind
        self.receipt = receipt
        self.path = path

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        yield Plain(tr("receipt.approved", kind=tr(f"kind.{self.kind}")), id="receipt-approved")
        with VerticalScroll(id="receipt-scroll"):
            yield Plain(self.receipt.to_text(), id="receipt-text")
        saved = tr("receipt.saved", path=self.path.name) if self.path else tr("receipt.not_saved")
        yield Plain(saved, id="receipt-file", classes="hint")

    def action_done(self) -> None:
        # Back to the member with their new figures (the operation screen was replaced by this one).
        self.dismiss(None)
