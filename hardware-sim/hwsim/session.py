"""What every simulator command does around its device: status and reply lines on stdout, stopping on signals,
the serial line opened and announced, and console commands read from stdin until it ends.

The reader (``cardpos sim``), the printer (``cardpos sim-printer``) and the SMS gateway (``cardpos sim-sms``) run
their sessions with these, so each announces, answers and stops the same way.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TextIO

from hwsim.console import Quit
from hwsim.errors import SimulatorError
from hwsim.line import Line, PtyLine, TcpLine


class ReplyLines:
    """Lines on stdout from several threads, never interleaved, flushed at once."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream  # None: started without a stdout
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        if self._stream is None:
            return
        # Nobody reading our output any more (a closed pipe) must not stop the device the terminal talks to.
        with self._lock, contextlib.suppress(OSError, ValueError):
            self._stream.write(text + "\n")
            self._stream.flush()


@contextlib.contextmanager
def stopping_on(stop: threading.Event, *signals: signal.Signals) -> Iterator[None]:
    """Set ``stop`` on any of ``signals`` while inside; the previous handlers come back after. Enter it before
    announcing anything: whoever reads the announcement may signal at once."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def line_for(tcp: int | None, link: Path | None) -> Line:
    """A TCP listener on 127.0.0.1:``tcp`` when a port is given, else a pty (kept at the symlink ``link``)."""
    if tcp is None:
        return PtyLine(link)
    if not 0 <= tcp <= 65535:
        raise SimulatorError(f"--tcp: a port number is 0 to 65535, not {tcp}")
    return TcpLine(tcp)


def open_announced(line: Line, out: ReplyLines) -> None:
    """Open ``line`` and say where it is: ``cardpos-sim: pty /dev/pts/N`` (or ``listening socket://...``), then
    ``cardpos-sim: link PATH`` for a pty kept at a symlink."""
    line.open()
    out.line(f"cardpos-sim: {line.describe()}")
    link = line.link if isinstance(line, PtyLine) else None
    if link is not None:
        out.line(f"cardpos-sim: link {link}")


def answer(execute: Callable[[str], str], command: str, out: ReplyLines, stop: threading.Event, *,
           prefix: str = "") -> None:
    """Run one console command and write its reply line; ``quit`` answers ``ok bye`` and sets ``stop``."""
    try:
        out.line(prefix + execute(command))
    except Quit:
        out.line(prefix + "ok bye")
        stop.set()


def run_console(on_command: Callable[[str], None], stop: threading.Event, *, poll_s: float,
                each_poll: Callable[[], None] | None = None) -> None:
    """Hand each non-blank line read from stdin to ``on_command`` (and call ``each_poll`` every ``poll_s``)
    until ``stop``. When stdin ends or is closed there is no console any more: it goes on until ``stop``."""
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_stdin, args=(sys.stdin, lines), name="hwsim stdin", daemon=True).start()
    stdin_open = True
    while not stop.is_set():
        if each_poll is not None:
            each_poll()
        if not stdin_open:
            stop.wait(poll_s)
            continue
        try:
            command = lines.get(timeout=poll_s)
        except queue.Empty:
            continue
        if command is None:  # EOF: no console from here on; keep playing the device until stopped
            stdin_open = False
            continue
        if command.strip():
            on_command(command)


def _read_stdin(stream: TextIO | None, lines: queue.Queue[str | None]) -> None:
    if stream is not None:  # None: started with stdin closed
        with contextlib.suppress(OSError, ValueError):
            for text in stream:
                lines.put(text)
    lines.put(None)
