"""The receipt printer on a URL: ask its status, print a receipt, say in one sentence why not.

A print job opens the printer, checks its real-time status, writes the whole ESC/POS program, checks the status
again and closes the printer. Opening per job keeps nothing stale between receipts (a printer switched off and on,
a simulator restarted behind its ``--link`` path) and leaves a network printer free for other terminals between
jobs.

Nothing is lost: ``print_lines``/``print_program`` only read the receipt they are given. When one raises
``PrinterError`` the caller still has the receipt, shows the sentence, and calls it again once the cashier has
fixed the printer:

* before sending: paper out, cover open, printer offline or not answering → nothing was sent, nothing printed;
* after sending: the same causes (paper ran out in the middle, cover opened) → the receipt may be incomplete and
  the sentence says to reprint it. A printer answers real-time status as soon as the request arrives, possibly
  before it has printed what came before it, so this second check is best effort on real hardware (exact on the
  simulator, which handles bytes in order).

Blocking I/O: call it from a worker thread, never the UI thread. One job at a time per ``ReceiptPrinter``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from terminal.printer.errors import PrinterError
from terminal.printer.program import DEFAULT_COLUMNS, CutMode, ZhMode, receipt_program
from terminal.printer.status import OFFLINE, STATUS_ANSWER_SIZE, STATUS_REQUEST, PrinterStatus, parse_status
from terminal.printer.text import Line, check_columns
from terminal.printer.transport import LinkLost, PrinterAddress, Transport, open_transport, parse_printer_url

log = logging.getLogger("cardpos.printer")

_DURING = {
    "The printer cover is open.": "The printer cover was opened while printing; close it and reprint the receipt.",
    "The printer is out of paper.": "The printer ran out of paper while printing; load a new roll and reprint "
                                    "the receipt.",
    "The printer is offline.": "The printer went offline while printing; check it and reprint the receipt.",
}


class ReceiptPrinter:
    """An ESC/POS receipt printer named by a URL (see ``terminal.printer.transport``)."""

    def __init__(
        self,
        url: str,
        *,
        columns: int = DEFAULT_COLUMNS,
        zh_mode: ZhMode = "codepage",
        font_path: Path | None = None,
        cut: CutMode = "full",
        status_timeout_s: float = 1.0,
        connect_timeout_s: float = 3.0,
        write_timeout_s: float = 10.0,
    ) -> None:
        self.address: PrinterAddress = parse_printer_url(url)
        check_columns(columns)
        if zh_mode not in ("codepage", "raster"):
            raise PrinterError(f"Chinese text is printed in 'codepage' or 'raster' mode, not {zh_mode!r}.")
        self.url = url
        self.columns = columns
        self.zh_mode: ZhMode = zh_mode
        self.font_path = font_path
        self.cut: CutMode = cut
        self.status_timeout_s = status_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.write_timeout_s = write_timeout_s
        self.last_error = ""
        """Why the last status or print failed ("" after a success): for diagnostics screens and logs."""
        self._lock = threading.Lock()

    # ---- public API ----------------------------------------------------------------------------------------

    def status(self) -> PrinterStatus:
        """The printer's status now. A printer that cannot be opened or does not answer is ``OFFLINE`` (with
        the reason in ``last_error``); only an answer that is not ESC/POS raises ``PrinterError``."""
        with self._lock:
            try:
                transport = self._open()
            except PrinterError as exc:
                self.last_error = str(exc)
                return OFFLINE
            try:
                status = self._query(transport, self.status_timeout_s)
            except LinkLost as exc:
                self.last_error = str(exc)
                return OFFLINE
            finally:
                transport.close()
            if status is None:
                self.last_error = f"The printer at {self.url} did not answer a status request."
                return OFFLINE
            self.last_error = ""
            return status

    def print_lines(self, lines: Iterable[Line]) -> PrinterStatus:
        """Lay out ``lines``, print them and cut; see ``print_program``."""
        return self.print_program(self.program(lines))

    def program(self, lines: Iterable[Line]) -> bytes:
        """The ESC/POS bytes this printer is sent for ``lines`` (its columns, Chinese mode and cut)."""
        rasterize = None
        if self.zh_mode == "raster":
            from terminal.printer.raster import TextRasterizer  # Pillow and a font: only when rasterising

            rasterize = TextRasterizer(self.font_path)
        return receipt_program(lines, columns=self.columns, zh_mode=self.zh_mode, rasterize=rasterize, cut=self.cut)

    def print_program(self, program: bytes) -> PrinterStatus:
        """Send one ESC/POS program, checking the printer before and after. Returns the status after printing
        (``paper_low`` is worth a warning). Raises ``PrinterError`` with one sentence when it is not printed, or
        may be incomplete; the caller keeps the receipt and reprints it."""
        with self._lock:
            try:
                status = self._print(program)
            except PrinterError as exc:
                self.last_error = str(exc)
                log.info("receipt not printed: %s", exc)
                raise
            self.last_error = ""
            return status

    # ---- one job -------------------------------------------------------------------------------------------

    def _open(self) -> Transport:
        return open_transport(self.address, connect_timeout_s=self.connect_timeout_s,
                              write_timeout_s=self.write_timeout_s)

    def _print(self, program: bytes) -> PrinterStatus:
        transport = self._open()
        try:
            try:
                before = self._query(transport, self.status_timeout_s)
            except LinkLost as exc:
                raise PrinterError(f"The printer is offline: {exc}", status=OFFLINE, orig=exc) from exc
            if before is None:
                raise PrinterError("The printer is offline: it did not answer a status request.", status=OFFLINE)
            if before.problem is not None:
                raise PrinterError(before.problem, status=before)
            try:
                transport.write(program)
                after = self._query(transport, self.status_timeout_s + transport.seconds_for(len(program)))
            except LinkLost as exc:
                raise PrinterError("The connection to the printer was lost while printing; check the printer and "
                                   "reprint the receipt.", status=OFFLINE, orig=exc) from exc
            if after is None:
                raise PrinterError("The printer stopped answering while printing; check it and reprint the receipt.",
                                   status=OFFLINE)
            if after.problem is not None:
                raise PrinterError(_DURING[after.problem], status=after)
            return after
        finally:
            transport.close()

    def _query(self, transport: Transport, timeout: float) -> PrinterStatus | None:
        """Ask the three real-time statuses; None when the answer does not come within ``timeout``."""
        transport.discard_input()
        transport.write(STATUS_REQUEST)
        answer = transport.read(STATUS_ANSWER_SIZE, timeout)
        if len(answer) < STATUS_ANSWER_SIZE:
            return None
        return parse_status(answer)
