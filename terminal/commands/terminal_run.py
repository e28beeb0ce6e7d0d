"""cardpos terminal run: the cashier app.

The command only reads its arguments: the services are built by the terminal's composition root
(``terminal.compose.build_services``), which ``cardpos demo`` uses too, and ``terminal.compose.run_app`` runs the
app and closes them after.
"""

from __future__ import annotations

import argparse

from cardkit.cliutil import Subparsers, add_common, settings_from_args


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run the cashier and technician app",
        description="Run the cashier and technician app (Textual, keyboard only, 80x24 or larger).",
    )
    add_common(parser)
    parser.add_argument("--lang", choices=("en", "zh"), default=None,
                        help="screen language (default: settings terminal.lang)")
    parser.add_argument("--port", default=None,
                        help="card reader pyserial URL, e.g. /dev/ttyUSB0 or /dev/pts/5 "
                             "(default: settings reader.port)")
    parser.add_argument("--no-sync", action="store_true", help="do not start background sync with the ledger")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    # Imported here: ``cardpos --help`` must not load the store, the reader driver or Textual.
    from terminal.compose import build_services, run_app

    settings = settings_from_args(args)
    if args.port is not None:
        settings.reader.port = args.port
    lang = args.lang or settings.terminal.lang
    services = build_services(settings, with_sync=not args.no_sync)
    run_app(services, lang=lang)
    return 0
