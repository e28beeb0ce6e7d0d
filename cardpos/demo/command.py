"""``cardpos demo``: a local ledger, the reader simulator on a pty and the cashier app wired to both.

Everything is real: the ledger runs as its own process on 127.0.0.1, the simulator plays a serial reader on a
pseudo-terminal, the terminal enrolls with the ledger and syncs to it, and the app's "tap card" panel (F2) asks the
simulator to tap a wallet card, which then travels the real serial path. Quitting (Ctrl+Q) or Ctrl+C stops every
child process.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from cardkit.cliutil import Subparsers, add_common, settings_from_args
from cardkit.errors import ConfigError

DEMO_MARKER = ".cardpos-demo"



def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run a ledger, the reader simulator and the cashier app together on demo data",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    add_common(parser)
    parser.add_argument("--dir", type=Path, default=None,
                        help="demo directory (default: <data dir>/demo); recreated on every run")
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


def prepare_dir(root: Path) -> None:
    """Recreate ``root``, refusing to delete a directory that is not a previous demo's."""
    if root.exists():
        if not (root / DEMO_MARKER).exists() and any(root.iterdir()):
            raise ConfigError(f"{root} exists and is not a cardpos demo directory; choose another with --dir")
        shutil.rmtree(root)
    try:
        root.mkdir(parents=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the demo directory {root}: {exc.strerror}", orig=exc) from exc
    (root / DEMO_MARKER).write_text("created by cardpos demo; deleted and recreated on every run\n")


def _demo(args: argparse.Namespace) -> int:
    from cardpos.demo.runner import DemoRunner

    settings = settings_from_args(args)
    root = args.dir or settings.data_dir / "demo"
    prepare_dir(root)
    print("cardpos demo: setting up a ledger, demo members and cards ...", file=sys.stderr, flush=True)
    runner = DemoRunner(root, ledger_port=args.ledger_port)
    try:
        runner.start()
        print(runner.banner(), file=sys.stderr, flush=True)
        runner.run_app(lang=args.lang or settings.terminal.lang)
    finally:
        runner.stop()
    return 0
