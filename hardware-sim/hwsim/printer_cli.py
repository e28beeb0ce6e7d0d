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
import signal
import sys
import threading
import time
from pathlib import Path

from cardkit.cliutil import Subparsers
from hwsim.errors import SimulatorError
from hwsim.printer import PrinterMechanism, SimPrinter, Ticket
from hwsim.printer_console import HELP, PrinterConsole
from hwsim.session import ReplyLines, answer, line_for, open_announced, run_console, stopping_on

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


def run(args: argparse.Namespace) -> int:
    if args.tcp is not None and args.link is not None:
        raise SimulatorError("--link names a pty; a simulator with --tcp has none")
    line = line_for(args.tcp, args.link)
    if not 8 <= args.columns <= 255:
        raise SimulatorError(f"--columns: a printer line is 8 to 255 characters, not {args.columns}")
    from hwsim.ticket import TicketWriter  # Pillow: loaded by this command only, not by every cardpos command

    out = ReplyLines(sys.stdout)
    writer = TicketWriter(args.out, columns=args.columns, font_path=args.font)

    def on_ticket(ticket: Ticket) -> None:
        try:
            path = writer.write(ticket)
        except OSError as exc:
            out.line(f"cardpos-sim: error cannot write a ticket to {args.out}: {exc.strerror or exc}")
            return
        out.line(f"cardpos-sim: ticket {writer.next_number - 1} {path.name} ({len(ticket.lines)} lines)")

    stop = threading.Event()
    with stopping_on(stop, signal.SIGTERM, signal.SIGINT):
        try:
            open_announced(line, out)
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
    return 0


def _serve(console: PrinterConsole, stop: threading.Event, out: ReplyLines, control: Path | None) -> None:
    """Run console and control-file commands until stopped."""

    def take_control_file() -> None:
        if control is not None:
            for written in _take_control(control):
                answer(console.execute, written, out, stop, prefix="cardpos-sim: control ")

    run_console(lambda command: answer(console.execute, command, out, stop), stop, poll_s=CONTROL_POLL_S,
                each_poll=take_control_file)


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

