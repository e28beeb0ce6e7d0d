"""The printer's error: one sentence for people, the status that caused it for code."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cardkit.errors import CardposError

if TYPE_CHECKING:
    from terminal.printer.status import PrinterStatus


class PrinterError(CardposError):
    """A receipt could not be printed (or may be incomplete). The caller still holds the receipt and can reprint
    it once the cause (paper, cover, power, cable) is fixed; ``status`` is the printer's answer, when it gave one."""

    title = "Printer error"

    def __init__(self, message: str, *, status: PrinterStatus | None = None, orig: BaseException | None = None
                 ) -> None:
        super().__init__(message, orig=orig)
        self.status = status
