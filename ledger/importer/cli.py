"""``cardpos ledger import``: wiring only (read the files, open, call ``ledger.importer.run``, print the
reconciliation report)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cardkit.cliutil import Subparsers, emit
from cardkit.core.money import Money
from ledger.errors import LedgerError

MAX_FILE_BYTES = 1 << 30


def _read(path: Path | None) -> tuple[str, bytes] | None:
    if path is None:
        return None
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise LedgerError(f"{path} is larger than 1 GiB; split it")
        return path.name, path.read_bytes()
    except OSError as exc:
        raise LedgerError(f"cannot read {path}: {exc.strerror}", orig=exc) from exc


def _members_file(path: Path | None) -> tuple[str, Path] | None:
    """The members file by path: the import streams it (it can hold millions of rows)."""
    if path is None:
        return None
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise LedgerError(f"{path} is larger than 1 GiB; split it")
    except OSError as exc:
        raise LedgerError(f"cannot read {path}: {exc.strerror}", orig=exc) from exc
    return path.name, path


def report_text(report: dict[str, Any], shown: int = 50) -> str:
    currency = report["currency"]
    lines = []
    for name, count in report["files"].items():
        if count["read"]:
            lines.append(f"{name:<10} {count['read']:>8} rows: {count['imported']} imported, "
                         f"{count['unchanged']} already there, {count['refused']} refused")
    totals = report["totals"]

    def money(minor: int) -> str:
        return str(Money(minor, currency))

    lines.append(f"balances   file {money(totals['file']['balance'])}  imported {money(totals['imported']['balance'])}"
                 f"  ledger before {money(totals['before']['balance'])}  after {money(totals['after']['balance'])}")
    lines.append(f"points     file {totals['file']['points']}  imported {totals['imported']['points']}"
                 f"  ledger before {totals['before']['points']}  after {totals['after']['points']}")
    lines.append(f"liability  {money(totals['liability_after'])} outstanding stored value "
                 f"({'equals' if totals['liability_after'] == totals['after']['balance'] else 'DIFFERS FROM'} "
                 "the sum of member balances)")
    lines.append("reconciled" if report["reconciled"] else "NOT RECONCILED: the totals above do not tie out")
    for refusal in report["refused"][:shown]:
        lines.append(f"refused    {refusal['file']} line {refusal['line']}: {refusal['reason']}")
    if len(report["refused"]) > shown:
        lines.append(f"refused    ... and {len(report['refused']) - shown} more (--json lists them all)")
    return "\n".join(lines)


def _import(args: argparse.Namespace) -> int:
    from ledger.cli import _open
    from ledger.importer.run import import_program

    if args.merchants is None and args.stores is None and args.members is None:
        raise LedgerError("nothing to import: give --merchants, --stores and/or --members FILE.csv")
    files = [_read(args.merchants), _read(args.stores)]
    members = _members_file(args.members)
    _open(args)
    report = import_program(merchants_csv=files[0], stores_csv=files[1], members_csv=members,
                            actor=args.actor).as_dict()
    emit(report, args.json, report_text(report))
    return 0 if report["reconciled"] and not report["refused"] else 1


def register(subparsers: Subparsers) -> None:
    from ledger.cli import _command

    p = _command(subparsers, "import", "import merchants, stores and members (balances, points, tiers, card numbers, "
                 "consents) from CSV; idempotent; bad rows are listed with their line and reason", _import)
    p.add_argument("--merchants", type=Path, metavar="FILE.csv", help="columns merchant_id, name")
    p.add_argument("--stores", type=Path, metavar="FILE.csv", help="columns store_id, merchant_id[, name]")
    p.add_argument("--members", type=Path, metavar="FILE.csv",
                   help="columns member_id, name, store_id[, phone, email, notes, tier, balance, points, "
                        "card_number, consent_<purpose>]")
