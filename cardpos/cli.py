"""The ``cardpos`` command: argument parsing and wiring only.

Each command group lives in its own module with a ``register(subparsers)`` function that adds its parsers
and sets ``handler`` (a callable taking the parsed namespace and returning an exit code).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from cardkit import __version__
from cardkit.cliutil import settings_from_args
from cardkit.errors import CardposError
from cardkit.jsonlog import log_event, setup_logging
from cardpos.parentdeath import follow_parent

# (group name, help, modules that register sub-commands into the group). A group with a single module of
# its own may register itself at top level (group name None).
COMMAND_GROUPS: list[tuple[str | None, str, list[str]]] = [
    (None, "", ["cardpos.demo.command"]),
    ("terminal", "run the cashier app, enroll with the ledger, sync, headless operations", [
        "terminal.commands.terminal_run",
        "terminal.commands.terminal_sync",
        "terminal.commands.terminal_ops",
    ]),
    ("card", "check card tokens", ["terminal.commands.card"]),
    ("reader", "card reader diagnostics", ["terminal.commands.reader"]),
    ("ledger", "the central ledger: serve, members, cards, terminals, rules, alerts", [
        "ledger.cli",
        "ledger.cli_alerts",
        "ledger.cli_holds",
        "ledger.campaigns.cli",
        "ledger.console.cli",
        "ledger.analytics.cli",
    ]),
    (None, "", ["hwsim.cli"]),
]


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="cardpos",
        description="cardpos: member-card point-of-sale terminal, central ledger and card reader simulator.",
    )
    parser.add_argument("--version", action="version", version=f"cardpos {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)
    for group, help_text, modules in COMMAND_GROUPS:
        if group is None:
            target = top
        else:
            group_parser = top.add_parser(group, help=help_text, description=help_text)
            target = group_parser.add_subparsers(dest=f"{group}_command", metavar="COMMAND",
                                                 parser_class=OneLineErrorParser)
            group_parser.set_defaults(handler=_group_help(group_parser))
        for module_name in modules:
            module = importlib.import_module(module_name)
            module.register(target)
    parser.set_defaults(handler=_group_help(parser))
    return parser


def _group_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def show(_: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return show


# Commands that create their data or ledger directory; every other command logs only into one that exists, so a
# mistyped --data-dir or --ledger-dir is reported without leaving a stray directory (with a logs/ in it) behind.
CREATING_COMMANDS = {("ledger", "init"), ("terminal", "enroll"), ("terminal", "run"), ("demo", None), ("sim", None)}


def _start_logging(args: argparse.Namespace) -> logging.Logger:
    """JSON-lines log in the data dir (a ledger command: in its ledger dir). Only the command's name is logged,
    never its arguments: they can hold card tokens, PINs or member details."""
    log = logging.getLogger("cardpos.cli")
    try:
        ledger_dir = getattr(args, "ledger_dir", None)
        if ledger_dir is not None:
            path = Path(ledger_dir) / "logs" / "cardpos.jsonl"
        else:
            path = settings_from_args(args).log_path
        group = getattr(args, "command", None)
        creates = (group, getattr(args, f"{group}_command", None)) in CREATING_COMMANDS
        if not creates and not path.parent.parent.is_dir():
            return log
        setup_logging(path)
    except (CardposError, OSError):
        return log  # the command itself reports a bad config or an unwritable dir in its own words
    return log


EXIT_OUTPUT_CLOSED = 141
"""Exit status when whoever read our output went away (``| head -1``): 128 + SIGPIPE, as for any Unix tool."""


def main(argv: Sequence[str] | None = None) -> int:
    follow_parent()  # a demo's child ends with the demo, however the demo ends
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # a closed pipe is found here, inside the guard, not at interpreter exit
    except BrokenPipeError:
        return _output_closed()


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    names = vars(args)
    command = " ".join(str(names[k]) for k in sorted(names, key=lambda k: (k != "command", k))
                       if k.endswith("command") and names[k])
    log = _start_logging(args)
    log_event(log, "command", command=command or "help")
    try:
        code = args.handler(args)
    except CardposError as exc:
        log_event(log, "command failed", command=command, error=type(exc).__name__, title=exc.title)
        print(f"cardpos: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cardpos: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        log_event(log, "command output closed", command=command)
        raise
    log_event(log, "command finished", command=command, exit=int(code or 0))
    return int(code or 0)


def _output_closed() -> int:
    """The reader of stdout (or stderr) closed it: stop quietly. Python would otherwise print a traceback, and
    again at exit when it flushes what is still buffered, so both streams are pointed at /dev/null first.
    (SIGPIPE stays ignored, as Python sets it: a server writing to a closed socket must get an error, not die.)"""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, stream.fileno())
    os.close(devnull)
    return EXIT_OUTPUT_CLOSED


if __name__ == "__main__":
    sys.exit(main())
