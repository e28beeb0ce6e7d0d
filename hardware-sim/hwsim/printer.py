"""The simulated receipt printer: a paper mechanism (pure) and the thread that feeds it from a Line.

``PrinterMechanism`` takes parsed ESC/POS events and keeps what a printer keeps: the line being filled (wrapping
at ``columns`` like a real printer, wide characters taking two), the printed part of the current ticket, and its
state — paper ok/low/out, cover open/closed, offline. Each cut ends a ``Ticket``. Status requests are answered from
the state at the moment they arrive in the byte stream, so a status asked right after a program answers for the
whole program.

While the printer cannot print (paper out, cover open, offline) print data is dropped and counted, and the ticket
being printed when it stopped is discarded: the simulator never hands out half a receipt as a ticket. (A real
printer would leave a half-printed stub on the paper; the driver's status check after sending tells the cashier
to reprint.)

``SimPrinter`` runs the receive thread: bytes from the Line → ``EscposStream`` → mechanism; status answers go
back on the Line, finished tickets to a sink (``hwsim.ticket.TicketWriter``) before any later answer is sent.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hwsim.escpos_stream import (
    Cut,
    EscposStream,
    Event,
    FeedDots,
    FeedLines,
    Init,
    NewLine,
    Note,
    Raster,
    StatusRequest,
    Text,
)
from hwsim.line import Line

PAPER_STATES = ("ok", "low", "out")
TAB_STOP = 8
FIXED_BITS = 0x12


@dataclass
class Ticket:
    """What one cut produced: text lines and raster images, in print order."""

    lines: list[str | Raster] = field(default_factory=list)

    def text(self) -> str:
        """The ticket as UTF-8 text: one line per printed line, images as ``[raster image WxH]``."""
        out = [line if isinstance(line, str) else f"[raster image {line.width}x{line.height}]"
               for line in self.lines]
        return "".join(f"{line}\n" for line in out)


class PrinterMechanism:
    def __init__(self, columns: int = 48) -> None:
        self.columns = columns
        self.paper = "ok"
        self.cover_open = False
        self.offline = False
        self.tickets = 0
        self.discarded = 0  # partial tickets thrown away when the printer stopped
        self.dropped = 0  # print events that arrived while it could not print
        self.status_requests = 0
        self.notes: collections.Counter[str] = collections.Counter()
        self.lines_left: int | None = None  # a roll near its end: lines it still holds (None: plenty)
        self._page: list[str | Raster] = []
        self._line: list[str] = []
        self._line_columns = 0

    @property
    def ready(self) -> bool:
        return self.paper != "out" and not self.cover_open and not self.offline

    # ---- state changes (console, control file) --------------------------------------------------------------

    def set_paper(self, state: str) -> int:
        """``ok``, ``low`` or ``out``; returns how many printed lines of an unfinished ticket were discarded."""
        if state not in PAPER_STATES:
            raise ValueError(f"paper is one of {', '.join(PAPER_STATES)}")
        self.paper = state
        self.lines_left = None
        return self._stop_if_not_ready()

    def set_roll(self, lines: int) -> None:
        """A roll near its end that holds ``lines`` more lines: the next line after those runs it out, in the
        middle of a ticket if one is printing."""
        if lines < 0:
            raise ValueError("lines left must not be negative")
        self.paper = "low"
        self.lines_left = lines

    def set_cover(self, is_open: bool) -> int:
        self.cover_open = is_open
        return self._stop_if_not_ready()

    def set_offline(self, offline: bool) -> int:
        self.offline = offline
        return self._stop_if_not_ready()

    def _stop_if_not_ready(self) -> int:
        if self.ready:
            return 0
        lines = len(self._page) + (1 if self._line else 0)
        if lines:
            self.discarded += 1
        self._page, self._line, self._line_columns = [], [], 0
        return lines

    def status_byte(self, n: int) -> int | None:
        """The answer to DLE EOT n (see terminal/printer/status.py for the bits), None for an unknown n."""
        if n == 1:
            return FIXED_BITS | (0 if self.ready else 0x08)
        if n == 2:
            return (FIXED_BITS | (0x04 if self.cover_open else 0) | (0x20 if self.paper == "out" else 0)
                    | (0x40 if self.offline else 0))
        if n == 3:
            return FIXED_BITS
        if n == 4:
            return FIXED_BITS | (0x0C if self.paper != "ok" else 0) | (0x60 if self.paper == "out" else 0)
        return None

    def summary(self) -> str:
        notes = ",".join(f"{name.replace(' ', '_')}:{count}" for name, count in sorted(self.notes.items()))
        left = f" lines_left={self.lines_left}" if self.lines_left is not None else ""
        return (f"ready={'yes' if self.ready else 'no'} paper={self.paper}{left} "
                f"cover={'open' if self.cover_open else 'closed'} offline={'yes' if self.offline else 'no'} "
                f"tickets={self.tickets} discarded={self.discarded} dropped={self.dropped} "
                f"status_requests={self.status_requests} notes={notes or '-'}")

    # ---- the byte stream --------------------------------------------------------------------------------------

    def handle(self, events: Iterable[Event]) -> tuple[bytes, list[Ticket]]:
        """Apply ``events``; return the status answers to send and the tickets finished, in order."""
        answers = bytearray()
        tickets: list[Ticket] = []
        for event in events:
            if isinstance(event, StatusRequest):
                self.status_requests += 1
                byte = self.status_byte(event.n)
                if byte is None:
                    self.notes[f"status request {event.n}"] += 1
                else:
                    answers.append(byte)
            elif isinstance(event, Note):
                self.notes[event.what] += 1
            elif isinstance(event, Init):
                self._line, self._line_columns = [], 0  # ESC @ clears the buffer; printed lines stay printed
            elif not self.ready:
                self.dropped += 1
            elif isinstance(event, Cut):
                self._end_line(only_if_filled=True)
                if self._page and self.ready:
                    tickets.append(Ticket(self._page))
                    self.tickets += 1
                elif self.ready:
                    self.notes["cut with nothing printed"] += 1
                self._page = []
            elif isinstance(event, Text):
                self._text(event)
            elif isinstance(event, NewLine):
                self._end_line()
            elif isinstance(event, FeedLines):
                if event.count == 0:
                    self._end_line(only_if_filled=True)
                for _ in range(event.count):
                    self._end_line()
            elif isinstance(event, FeedDots):
                self._end_line(only_if_filled=True)
            elif isinstance(event, Raster):
                self._end_line(only_if_filled=True)
                self._print(event)
        return bytes(answers), tickets

    def _text(self, event: Text) -> None:
        width = 2 if event.wide else 1
        for ch in event.text:
            if ch == "\t":
                stop = min(self.columns, (self._line_columns // TAB_STOP + 1) * TAB_STOP)
                self._line.append(" " * (stop - self._line_columns))
                self._line_columns = stop
                continue
            if self._line_columns + width > self.columns:
                self._end_line()  # the printer wraps a full line by itself
            self._line.append(ch)
            self._line_columns += width

    def _end_line(self, *, only_if_filled: bool = False) -> None:
        if only_if_filled and not self._line:
            return
        text = "".join(self._line).rstrip(" ")
        self._line, self._line_columns = [], 0
        self._print(text)

    def _print(self, line: str | Raster) -> None:
        """One line onto the paper, unless the roll runs out first."""
        if not self.ready:
            self.dropped += 1
            return
        if self.lines_left is not None:
            if self.lines_left == 0:
                self.paper = "out"
                self.lines_left = None
                self._stop_if_not_ready()
                self.dropped += 1
                return
            self.lines_left -= 1
        self._page.append(line)


class SimPrinter:
    """The receive thread: Line → parser → mechanism → answers on the Line, tickets to ``sink``."""

    def __init__(self, line: Line, mechanism: PrinterMechanism, sink: Callable[[Ticket], None]) -> None:
        self.line = line
        self.mechanism = mechanism
        self.stream = EscposStream()
        self.lock = threading.RLock()  # the mechanism is shared with the console and the control file
        self._sink = sink
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._rx_loop, name="hwsim printer rx", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.line.close()

    def _rx_loop(self) -> None:
        while not self._stop.is_set():
            data = self.line.read(0.05)
            if not data:
                continue
            with self.lock:
                answers, tickets = self.mechanism.handle(self.stream.feed(data))
                for ticket in tickets:
                    self._sink(ticket)  # on disk before the answer to a status request that follows the cut
            if answers:
                self.line.write(answers)
