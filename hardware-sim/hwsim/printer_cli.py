"""cardpos sim-printer: the ESC/POS receipt printer simulator.

First stdout line: ``cardpos-sim: pty /dev/pts/N`` (or ``cardpos-sim: listening socket://127.0.0.1:PORT`` with
``--tcp``), then ``cardpos-sim: link PATH`` with ``--link``, then ``cardpos-sim: tickets DIR``. Each finished
ticket adds ``cardpos-sim: ticket N ticket-NNNN.txt (L lines)``. Console commands on stdin get one reply line each
(``ok ...``/``error ...``); commands from the control file are answered as ``cardpos-sim: control REPLY``.

It keeps running when stdin is closed or is not a console (``</dev/null``, a service): SIGTERM or SIGINT, or
``quit`` on stdin or in the control file, stops it cleanly (the ``--link`` symlink is removed).
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TextIO

from cardkit.cliutil import Subparsers
from hwsim.console import Quit
from hwsim.errors import SimulatorError
from hwsim.line import Line, PtyLine, TcpLine
from hwsim.printer import PrinterMechanism, SimPrinter, Ticket
from hwsim.printer_console import HELP, PrinterConsole

CONTROL_POLL_S = 0.1
CONTROL_SETTLE_S = 0.5  # a control file without a final newline is taken once it has not changed for this long


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "sim-printer", help="run the ESC/POS receipt printer simulator on a pty or TCP port",
        description="An ESC/POS receipt printer simulator: renders each cut ticket to DIR as text and PNG, answers "
                    f"DLE EOT status; a console on stdin and an optional control file ({HELP}). "
                    "See docs/printer.md.")
    parser.add_argument("--out", type=Path, default=Path("tickets"), metavar="DIR",
                        help="directory the tickets are appended to as ticket-NNNN.txt/.png (default ./tickets)")
    parser.add_argument("--tcp", type=int, default=None, metavar="PORT",
                        help="listen on 127.0.0.1:PORT (a network printer: tcp:// or socket://) instead of opening "
                             "a pty (0 = any free port)")
    parser.add_argument("--link", type=Path, default=None, metavar="PATH",
                        help="keep a symlink at PATH to the pty, a stable port path for the printer URL")
    parser.add_argument("--control", type=Path, default=None, metavar="FILE",
                        help="poll FILE for commands (one a line); it is deleted once they have run")
    parser.add_argument("--columns", type=int, default=48,
                        help="characters a line before the printer wraps (48: 80 mm paper; 32: 58 mm)")
    parser.add_argument("--font", type=Path, default=None, metavar="FILE",
                        help="font for the PNG tickets (default: an installed Noto Sans CJK or WenQuanYi font)")
    parser.set_defaults(handler=run)


class _Out:
    """Reply and notice lines from several threads, never interleaved, flushed at once."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            self._stream.write(text + "\n")
            self._stream.flush()


def run(args: argparse.Namespace) -> int:
    if args.tcp is not None and not 0 <= args.tcp <= 65535:
        raise SimulatorError(f"--tcp: a port number is 0 to 65535, not {args.tcp}")
    if args.tcp is not None and args.link is not None:
        raise SimulatorError("--link names a pty; a simulator with --tcp has none")
    if not 8 <= args.columns <= 255:
        raise SimulatorError(f"--columns: a printer line is 8 to 255 characters, not {args.columns}")
    from hwsim.ticket import TicketWriter  # Pillow: loaded by this command only, not by every cardpos command

    out = _Out(sys.stdout)
    writer = TicketWriter(args.out, columns=args.columns, font_path=args.font)

    def on_ticket(ticket: Ticket) -> None:
        try:
            path = writer.write(ticket)
        except OSError as exc:
            out.line(f"cardpos-sim: error cannot write a ticket to {args.out}: {exc.strerror or exc}")
            return
        out.line(f"cardpos-sim: ticket {writer.next_number - 1} {path.name} ({len(ticket.lines)} lines)")

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Before announcing the port: whoever reads the announcement may signal us at once.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    line: Line = TcpLine(args.tcp) if args.tcp is not None else PtyLine(args.link)
    try:
        line.open()
        out.line(f"cardpos-sim: {line.describe()}")
        if args.link is not None:
            out.line(f"cardpos-sim: link {args.link}")
        out.line(f"cardpos-sim: tickets {args.out}")
        printer = SimPrinter(line, PrinterMechanism(args.columns), on_ticket)
        console = PrinterConsole(printer, str(args.out))
        printer.start()
        try:
            _serve(console, stop, out, args.control)
        finally:
            printer.stop()
    finally:
        line.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _serve(console: PrinterConsole, stop: threading.Event, out: _Out, control: Path | None) -> None:
    """Run console and control-file commands until stopped."""
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_stdin, args=(sys.stdin, lines), name="hwsim printer stdin", daemon=True).start()
    stdin_open = True
    while not stop.is_set():
        if control is not None:
            for written in _take_control(control):
                try:
                    out.line(f"cardpos-sim: control {console.execute(written)}")
                except Quit:
                    out.line("cardpos-sim: control ok bye")
                    stop.set()
        if not stdin_open:
            stop.wait(CONTROL_POLL_S)
            continue
        try:
            command = lines.get(timeout=CONTROL_POLL_S)
        except queue.Empty:
            continue
        if command is None:  # EOF: no console any more; keep printing until a signal or a control-file quit
            stdin_open = False
            continue
        if command.strip():
            try:
                out.line(console.execute(command))
            except Quit:
                out.line("ok bye")
                stop.set()


def _take_control(path: Path) -> list[str]:
    """The commands in the control file, which is then deleted; none while it is being written."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        settled = time.time() - path.stat().st_mtime > CONTROL_SETTLE_S
    except OSError:
        return []
    if not text.endswith("\n") and not settled:
        return []
    with contextlib.suppress(OSError):
        path.unlink()
    return [command for command in text.splitlines() if command.strip()]


def _read_stdin(stream: TextIO | None, lines: queue.Queue[str | None]) -> None:
    if stream is not None:  # None: started with stdin closed
        with contextlib.suppress(OSError, ValueError):
            for text in stream:
                lines.put(text)
    lines.put(None)
