"""cardpos sim: the card reader simulator.

First stdout line: ``cardpos-sim: pty /dev/pts/N`` (or ``cardpos-sim: listening socket://127.0.0.1:PORT`` with
``--tcp``), then ``cardpos-sim: link PATH`` with ``--link``. After that, one reply line per command read from
stdin (a terminal or a pipe) or from ``--script``, each starting with ``ok`` or ``error``.

Without a console (stdin is /dev/null, closed, or reaches its end) the simulator keeps playing the reader until
SIGTERM, SIGINT or SIGHUP (or a scripted ``quit``), so ``cardpos sim < /dev/null &`` runs in the background.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from cardkit.cliutil import Subparsers
from cardkit.wallet import Wallet
from hwsim import smsgateway
from hwsim.console import HELP, Console
from hwsim.errors import SimulatorError
from hwsim.printer_cli import register as register_printer
from hwsim.reader import SimReader
from hwsim.script import Step, load_script
from hwsim.session import ReplyLines, answer, line_for, open_announced, run_console, stopping_on


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "sim", help="run the card reader simulator on a pty or TCP port",
        description="A serial card reader simulator: a wallet of cards, a console on stdin "
                    f"({HELP}) and fault injection. See docs/reader-protocol.md.")
    parser.add_argument("--wallet", type=Path, default=None, help="wallet JSON file (default: an empty wallet)")
    parser.add_argument("--tcp", type=int, default=None, metavar="PORT",
                        help="listen on 127.0.0.1:PORT for socket:// instead of opening a pty (0 = any free port)")
    parser.add_argument("--link", type=Path, default=None, metavar="PATH",
                        help="keep a symlink at PATH to the current pty, so the port path survives unplug/replug")
    parser.add_argument("--baud", type=int, default=115200, help="line speed to pace bytes at (default 115200)")
    parser.add_argument("--script", type=Path, default=None, metavar="FILE",
                        help="run the timed commands in FILE, then exit (unless --stay)")
    parser.add_argument("--stay", action="store_true", help="keep running after --script ends")
    parser.add_argument("--hex-log", type=Path, default=None, metavar="FILE",
                        help="append raw traffic in both directions as hex lines to FILE")
    parser.add_argument("--heartbeat", type=float, default=1.0, metavar="S",
                        help="seconds between STATUS heartbeats (0 = none; default 1)")
    parser.add_argument("--dwell", type=float, default=0.5, metavar="S",
                        help="seconds a tapped card stays on the reader (default 0.5)")
    parser.add_argument("--seed", type=int, default=None, help="seed for noise and bit flips (reproducible runs)")
    parser.set_defaults(handler=run)
    register_printer(subparsers)  # cardpos sim-printer
    register_sim_sms(subparsers)


def run(args: argparse.Namespace) -> int:
    if args.baud < 50:
        raise SimulatorError("the baud rate must be at least 50")
    if args.heartbeat < 0 or args.dwell < 0:
        raise SimulatorError("--heartbeat and --dwell must not be negative")
    line = line_for(args.tcp, args.link)
    wallet = Wallet.load(args.wallet) if args.wallet is not None else Wallet()
    try:
        steps = load_script(args.script) if args.script is not None else None
    except UnicodeDecodeError as exc:
        raise SimulatorError(f"script {args.script} is not UTF-8 text", orig=exc) from exc
    for step in steps or []:
        # A typo in a script is found now, not as an "error" reply halfway through a run that then exits 0.
        name = step.command.split()[0].lower()
        if not hasattr(Console, f"_cmd_{name}"):
            raise SimulatorError(f"{args.script} line {step.line_no}: unknown command {name!r} ({HELP})")
    hex_log: TextIO | None = None
    if args.hex_log is not None:
        try:
            # Raw traffic includes card tokens: owner-only, like the wallet.
            fd = os.open(args.hex_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            hex_log = os.fdopen(fd, "a", encoding="ascii")
        except OSError as exc:
            raise SimulatorError(f"cannot open the hex log {args.hex_log}: {exc.strerror}", orig=exc) from exc
    stop = threading.Event()
    with stopping_on(stop, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        out = ReplyLines(sys.stdout)
        open_announced(line, out)
        reader = SimReader(line, baud=args.baud, heartbeat_s=args.heartbeat, dwell_s=args.dwell, hex_log=hex_log,
                           rng=random.Random(args.seed))
        console = Console(reader, wallet, args.wallet)
        commands_lock = threading.Lock()

        def execute(command: str) -> None:
            with commands_lock:
                answer(console.execute, command, out, stop)

        reader.start()
        if steps is not None:
            threading.Thread(target=_run_script, args=(steps, execute, reader, stop, args.stay, out),
                             name="hwsim script", daemon=True).start()
        try:
            run_console(execute, stop, poll_s=0.2)
        finally:
            reader.stop()
            if hex_log is not None:
                hex_log.close()
    return 0


def _run_script(steps: list[Step], execute: Callable[[str], None], reader: SimReader, stop: threading.Event, stay: bool,
                out: ReplyLines) -> None:
    import time

    started = time.monotonic()
    for step in steps:
        if stop.wait(max(0.0, started + step.at - time.monotonic())):
            return
        execute(step.command)
        if stop.is_set():
            return
    reader.drain(timeout=30.0)
    time.sleep(0.3)  # let the terminal read the last bytes before the line closes
    out.line("cardpos-sim: script done")
    if not stay:
        stop.set()


# -- cardpos sim-sms ------------------------------------------------------------------------------------------

def register_sim_sms(subparsers: Subparsers) -> None:
    """``cardpos sim-sms``: the SMS gateway simulator (hwsim.smsgateway, docs/sms-gateway.md). First stdout line:
    ``cardpos-sim-sms: listening http://127.0.0.1:PORT``; it then runs without a console until SIGTERM/SIGINT."""
    parser = subparsers.add_parser(
        "sim-sms", help="run the SMS gateway simulator on 127.0.0.1",
        description="An HTTP SMS gateway simulator: POST /messages, GET /messages, POST /inject/inbound, "
                    "GET|POST /control; signed delivery receipts and inbound replies to --callback; fault modes. "
                    "See docs/sms-gateway.md.")
    parser.add_argument("--port", type=int, default=0, help="listen on 127.0.0.1:PORT (default 0: any free port)")
    parser.add_argument("--token", default="", help="bearer token clients must send")
    parser.add_argument("--basic", default="", metavar="USER:PASS", help="basic-auth credentials clients may send")
    parser.add_argument("--callback", default="", metavar="URL",
                        help="http(s) URL that delivery receipts and inbound replies are POSTed to")
    parser.add_argument("--callback-secret", action="append", default=[], metavar="SECRET",
                        help="HMAC-SHA256 key signing callbacks (repeat while rotating: one v1= per secret)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="append every message sent and received to FILE as JSON lines")
    parser.add_argument("--mode", choices=smsgateway.MODES, default="ok",
                        help="fault mode at start: ok, fail (500), throttle (429), slow (late answer)")
    parser.add_argument("--retry-after", type=int, default=1, metavar="S",
                        help="Retry-After seconds of a throttle answer (default 1)")
    parser.add_argument("--delay", type=float, default=2.0, metavar="S",
                        help="seconds a slow answer takes (default 2)")
    parser.add_argument("--fault-count", type=int, default=None, metavar="N",
                        help="apply --mode to the first N sends only, then answer ok")
    parser.add_argument("--receipt-delay", type=float, default=0.5, metavar="S",
                        help="seconds from accepting a message to its delivery receipt (default 0.5)")
    parser.add_argument("--receipt-status", choices=smsgateway.RECEIPT_STATUSES, default="delivered",
                        help="status that delivery receipts report (default delivered)")
    parser.add_argument("--keep", type=int, default=10_000, metavar="N",
                        help="messages kept in memory for GET /messages (default 10000)")
    parser.set_defaults(handler=run_sim_sms)


def run_sim_sms(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise SimulatorError(f"--port: a port number is 0 to 65535, not {args.port}")
    if not args.token and not args.basic:
        raise SimulatorError("the gateway needs credentials: --token TOKEN and/or --basic USER:PASS")
    token = smsgateway.checked_text(args.token, "--token") if args.token else ""
    basic = smsgateway.parse_basic(args.basic) if args.basic else None
    callback = smsgateway.checked_callback_url(args.callback) if args.callback else ""
    if bool(args.callback) != bool(args.callback_secret):
        raise SimulatorError("--callback and --callback-secret go together: callbacks are always signed")
    secrets = tuple(smsgateway.checked_text(s, "--callback-secret") for s in args.callback_secret)
    if not 0 <= args.retry_after <= 86_400:
        raise SimulatorError("--retry-after must be 0 to 86400 seconds")
    if not 0 <= args.delay <= 300 or not 0 <= args.receipt_delay <= 3600:
        raise SimulatorError("--delay must be 0 to 300 seconds and --receipt-delay 0 to 3600")
    if args.fault_count is not None and args.fault_count < 1:
        raise SimulatorError("--fault-count must be at least 1")
    if args.keep < 1:
        raise SimulatorError("--keep must be at least 1")
    settings = smsgateway.GatewaySettings(token=token, basic=basic, callback_url=callback,
                                          callback_secrets=secrets, receipt_delay_s=args.receipt_delay,
                                          keep=args.keep)
    fault = smsgateway.FaultState(mode=args.mode, retry_after_s=args.retry_after, delay_s=args.delay,
                                  count=args.fault_count if args.mode != "ok" else None,
                                  receipt=args.receipt_status)
    record = smsgateway.open_record(args.out) if args.out is not None else None
    stop = threading.Event()
    out = ReplyLines(sys.stdout)  # the gateway runs without a console too
    server: smsgateway.GatewayServer | None = None
    with stopping_on(stop, signal.SIGTERM, signal.SIGINT):
        try:
            server = smsgateway.GatewayServer(smsgateway.Gateway(settings, fault, record), args.port)
            server.start()
            out.line(f"cardpos-sim-sms: listening {server.url}")
            while not stop.wait(0.5):
                pass
        finally:
            if server is not None:
                server.stop()
            if record is not None:
                record.close()
    out.line("cardpos-sim-sms: stopped")
    return 0
