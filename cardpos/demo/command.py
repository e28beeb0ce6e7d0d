"""``cardpos demo``: a local ledger, the reader simulator on a pty and the cashier app wired to both.

Everything is real: the ledger runs as its own process on 127.0.0.1, the simulator plays a serial reader on a
pseudo-terminal, the terminal enrolls with the ledger and syncs to it, and the app's "tap card" panel (F2) asks the
simulator to tap a wallet card, which then travels the real serial path. The sign-in screen shows the demo's
cashier, supervisor and technician ids and PINs. Quitting (Ctrl+Q), SIGINT (Ctrl+C while it sets up), SIGTERM,
closing the terminal or killing the demo stops every child process. One demo runs on a folder at a time; a second
one refuses to start.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from cardkit.cliutil import Subparsers, add_common, settings_from_args
from cardkit.errors import ConfigError
from cardpos.demo.lock import LOCK_NAME, DemoLock

DEMO_MARKER = ".cardpos-demo"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run a ledger, the reader simulator and the cashier app together on demo data",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    add_common(parser)
    parser.add_argument("--dir", type=Path, default=None,
                        help="demo directory (default: <data dir>/demo); emptied on every run, one demo at a time")
    parser.add_argument("--lang", choices=("en", "zh"), default=None, help="screen language")
    parser.add_argument("--ledger-port", type=_port, default=None, help="ledger port (default: a free port)")
    parser.set_defaults(handler=_demo)


def _port(text: str) -> int:
    """argparse type: a TCP port, refused here rather than by the ledger child (whose error the demo hides)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port number is 1 to 65535, not {text}")
    return value


def prepare_dir(root: Path) -> DemoLock:
    """Lock ``root`` for this demo and empty it, refusing a directory that is not a previous demo's, and one that
    another demo is running on (whose files are left alone). The caller releases the lock when the demo ends."""
    if root.exists() and not (root / DEMO_MARKER).exists() and any(p.name != LOCK_NAME for p in root.iterdir()):
        raise ConfigError(f"{root} exists and is not a cardpos demo directory; choose another with --dir")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the demo directory {root}: {exc.strerror}", orig=exc) from exc
    lock = DemoLock.acquire(root)
    try:
        for entry in root.iterdir():
            if entry.name == LOCK_NAME:
                continue  # held by us: deleting it would let a third demo lock a new file of the same name
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        (root / DEMO_MARKER).write_text("created by cardpos demo; emptied and refilled on every run\n")
    except OSError as exc:
        lock.release()
        raise ConfigError(f"cannot empty the demo directory {root}: {exc.strerror}", orig=exc) from exc
    return lock


def _demo(args: argparse.Namespace) -> int:
    from cardpos.demo.ending import DemoEnded, Ending
    from cardpos.demo.runner import DemoRunner

    settings = settings_from_args(args)
    root = args.dir or settings.data_dir / "demo"
    lock = prepare_dir(root)
    runner = DemoRunner(root, ledger_port=args.ledger_port)
    ending = Ending(runner.stop, lambda: runner.app)
    try:
        with ending:
            try:
                print("cardpos demo: setting up a ledger, demo members and cards ...", file=sys.stderr, flush=True)
                runner.start()
                print(runner.banner(), file=sys.stderr, flush=True)
                runner.run_app(lang=args.lang or settings.terminal.lang)
            finally:
                ending.quiet()
                runner.stop()
    except DemoEnded:
        pass  # the children are stopped; the exit code says which signal ended the demo
    finally:
        lock.release()
    return ending.exit_code
