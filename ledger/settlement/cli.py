"""``cardpos ledger settlement run|show|liability``: wiring only."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cardkit.cliutil import Subparsers, emit
from cardkit.locations import write_private
from ledger.errors import LedgerError


def _write(path: Path | None, data: bytes) -> None:
    if path is None:
        return
    try:
        write_private(path, data)
    except OSError as exc:
        raise LedgerError(f"cannot write {path}: {exc.strerror}", orig=exc) from exc


def _exports(args: argparse.Namespace, document: dict[str, Any]) -> None:
    from ledger.settlement import export

    _write(args.csv, export.to_csv(document).encode("utf-8"))
    _write(args.json_out, json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n")


def _run(args: argparse.Namespace) -> int:
    from ledger.cli import _open
    from ledger.settlement import books, export, periods

    period = periods.check_period(args.period)
    _open(args)
    row, now = books.close(period, actor=args.actor, early=args.early)
    document = books.model_document(row)
    _exports(args, document)
    note = (f"period {period} closed; statement sha256 {row.sha256} written to the audit log" if now
            else f"period {period} was already closed; this is its signed statement")
    emit(document, args.json, export.to_text(document) + "\n" + note)
    return 0


def _show(args: argparse.Namespace) -> int:
    from ledger.cli import _open
    from ledger.settlement import books, export, periods

    period = periods.check_period(args.period)
    _open(args)
    document = books.draft(period)
    _exports(args, document)
    emit(document, args.json, export.to_text(document))
    return 0


def _liability(args: argparse.Namespace) -> int:
    from ledger.cli import _open
    from ledger.settlement import books, export

    _open(args)
    report = books.reserve_report(args.day)
    emit(report, args.json, export.reserve_text(report))
    return 0


def _export_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--period", required=True, help="the month, YYYY-MM (UTC)")
    parser.add_argument("--csv", type=Path, default=None, help="also write the statement as CSV to this file")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the statement as JSON to this file")


def register(subparsers: Subparsers) -> None:
    from ledger.cli import _command, _group

    settlement = _group(subparsers, "settlement", "settlement between merchants: run, show, liability")
    p = _command(settlement, "run", "close a period: its signed statement per merchant and who pays whom", _run)
    _export_flags(p)
    p.add_argument("--early", action="store_true",
                   help="close before the month is over (entries dated in it that arrive later are adjustments)")
    p = _command(settlement, "show", "a period's statement: the closed one, or a draft of an open one", _show)
    _export_flags(p)
    p = _command(settlement, "liability", "outstanding stored value by issuing merchant and the reserve it needs",
                 _liability)
    p.add_argument("--day", default=None, help="YYYY-MM-DD (default: today, UTC)")
