"""The receipt of a journaled operation, as printed, plus what became of it: printed (or why not), or the text
file it was saved as when there is no printer. P prints it again."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from terminal.ui.screens.base import CashierScreen
from terminal.ui.widgets import Plain

if TYPE_CHECKING:
    from cardkit.journal import EntryKind
    from terminal.service.receipt import Receipt
    from terminal.ui.messages import PrintDone


class ReceiptScreen(CashierScreen):
    TITLE_KEY = "receipt.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "done", "Done"), Binding("escape", "done", "Done", show=False),
        Binding("p", "reprint", "Print again"),
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
            yield Plain(self.receipt.to_text(tr), id="receipt-text")
        if self.ops.has_printer:
            fate = tr("receipt.printing")
        elif self.path:
            fate = tr("receipt.saved", path=self.path.name)
        else:
            fate = tr("receipt.not_saved")
        yield Plain(fate, id="receipt-file", classes="hint")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "reprint":
            return self.ops.has_printer  # without a printer the text file is the receipt
        return True

    def print_done(self, message: PrintDone) -> None:
        if message.ref != self.receipt.uuid:
            return
        fate = self.query_one("#receipt-file", Static)
        if message.problem is None:
            fate.update(self.tr("receipt.printed"))
            fate.set_class(False, "warn")
        else:
            fate.update(self.tr("receipt.not_printed", problem=message.problem))
            fate.set_class(True, "warn")

    def action_reprint(self) -> None:
        self.query_one("#receipt-file", Static).update(self.tr("receipt.printing"))
        self.capp.print_receipt(self.receipt)

    def action_done(self) -> None:
        # Back to the member with their new figures (the operation screen was replaced by this one).
        self.dismiss(None)
