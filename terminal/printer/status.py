"""Real-time status of an ESC/POS printer (pure): the request bytes and the meaning of the answers.

``DLE EOT n`` (``10 04 n``) is answered at once, even while the printer is offline or busy, with one byte whose
bits 0 and 7 are 0 and bits 1 and 4 are 1 (so ``byte & 0x93 == 0x12``)::

    n = 1  printer        bit 3 (0x08) offline
    n = 2  offline cause  bit 2 (0x04) cover open, bit 5 (0x20) stopped by paper end, bit 6 (0x40) error
    n = 4  paper sensor   bits 2-3 (0x0C) paper near its end, bits 5-6 (0x60) paper out

``STATUS_REQUEST`` asks all three at once, and the printer answers three bytes in that order. No answer within
the caller's timeout means the printer is offline (off, unplugged, or not a printer at all).
"""

from __future__ import annotations

from dataclasses import dataclass

from terminal.printer.errors import PrinterError

DLE_EOT = b"\x10\x04"
STATUS_REQUEST = DLE_EOT + b"\x01" + DLE_EOT + b"\x02" + DLE_EOT + b"\x04"
STATUS_ANSWER_SIZE = 3

FIXED_MASK, FIXED_BITS = 0x93, 0x12
OFFLINE_BIT = 0x08  # n=1
COVER_OPEN_BIT, PAPER_END_STOP_BIT, ERROR_BIT = 0x04, 0x20, 0x40  # n=2
PAPER_NEAR_END_BITS, PAPER_END_BITS = 0x0C, 0x60  # n=4


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    online: bool
    paper_out: bool
    paper_low: bool
    """The roll is near its end: printing still works; tell the cashier to have a new roll ready."""
    cover_open: bool

    @property
    def ready(self) -> bool:
        return self.online and not self.paper_out and not self.cover_open

    @property
    def problem(self) -> str | None:
        """Why nothing can be printed now, as one sentence; None when the printer is ready."""
        if self.cover_open:
            return "The printer cover is open."
        if self.paper_out:
            return "The printer is out of paper."
        if not self.online:
            return "The printer is offline."
        return None


OFFLINE = PrinterStatus(online=False, paper_out=False, paper_low=False, cover_open=False)
"""What a printer that does not answer is taken to be."""


def parse_status(answer: bytes) -> PrinterStatus:
    """The three answer bytes to ``STATUS_REQUEST`` → ``PrinterStatus``. Raises ``PrinterError`` for bytes that
    are no ESC/POS status (often a wrong baud rate)."""
    if len(answer) != STATUS_ANSWER_SIZE or any(b & FIXED_MASK != FIXED_BITS for b in answer):
        raise PrinterError(f"The printer's status answer {answer.hex(' ') or '(empty)'} is not ESC/POS; "
                           f"check the printer's baud rate and that it is an ESC/POS printer.")
    printer, cause, paper = answer
    paper_out = paper & PAPER_END_BITS == PAPER_END_BITS or bool(cause & PAPER_END_STOP_BIT)
    return PrinterStatus(
        online=not printer & OFFLINE_BIT and not cause & ERROR_BIT,
        paper_out=paper_out,
        paper_low=paper_out or paper & PAPER_NEAR_END_BITS == PAPER_NEAR_END_BITS,
        cover_open=bool(cause & COVER_OPEN_BIT),
    )
