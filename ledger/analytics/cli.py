"""cardpos ledger report members|sales|segments|cohorts|ltv: the analytics reports as text, CSV or JSON."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path

from cardkit.cliutil import Subparsers, add_common
from ledger.analytics import calendar, lifetime, models, projection, reports
from ledger.analytics.scope import Scope, period_from
from ledger.cli import db_arg, open_checked, storage_guarded

HELP = {
    "members": "members, buyers, net sales, visit frequency, spend per tier, top-quarter share, lifetime value",
    "sales": "net sales and visits per day and store, and the members' part of them",
    "segments": "RFM segment sizes (new, active, champions, at risk, lapsed) as of --to",
    "cohorts": "retention by join month: the share of each month's new members who bought in each later month",
    "ltv": "lifetime value to date and projected over a horizon, per tier, segment, store and merchant "
           "(or per member)",
}


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("report", help="analytics reports: members, sales, segments, cohorts, ltv",
                                   description="Analytics reports over any period (docs/analytics.md).")
    sub = parser.add_subparsers(dest="report_command", metavar="REPORT", parser_class=type(parser))

    def show_help(_: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(handler=show_help)
    for kind in reports.KINDS:
        p = sub.add_parser(kind, help=HELP[kind], description=HELP[kind] + ".")
        add_common(p)
        p.add_argument("--ledger-dir", type=Path, default=None, help="ledger directory (default: <data dir>/ledger)")
        p.add_argument("--db", type=db_arg, default=None,
                       help="database: postgresql://user@host/db or a SQLite file (default: as chosen at init)")
        if kind == "ltv":
            p.set_defaults(first=None)
            p.add_argument("--to", dest="last", metavar="YYYY-MM-DD", default=None,
                           help="the day the value is measured and projected from, UTC (default: today)")
        else:
            p.add_argument("--from", dest="first", metavar="YYYY-MM-DD", default=None,
                           help=f"first day, UTC (default: {reports.DEFAULT_DAYS[kind]} days up to --to)")
            p.add_argument("--to", dest="last", metavar="YYYY-MM-DD", default=None,
                           help="last day, UTC (default: today)")
        if kind in ("members", "ltv"):
            p.add_argument("--horizon-months", type=int, default=projection.DEFAULT_MONTHS, metavar="N",
                           help=f"project the lifetime value over the next N months, 1 to {projection.MAX_MONTHS} "
                                f"(default {projection.DEFAULT_MONTHS})")
            p.add_argument("--discount-bp", type=int, default=0, metavar="BP",
                           help="discount future spend at BP basis points a year (default 0: not discounted)")
        if kind == "ltv":
            p.add_argument("--per-member", action="store_true",
                           help="one row per member (the model's inputs and answer) instead of the totals")
        where = p.add_mutually_exclusive_group()
        where.add_argument("--store", default=None, help="only this store (default: the whole programme)")
        where.add_argument("--merchant", default=None, help="only this merchant's stores")
        p.add_argument("--format", choices=("text", "csv", "json"), default="text", help="output (default text)")
        p.add_argument("--json", action="store_true", help="the same as --format json")
        p.set_defaults(handler=storage_guarded(_handler(kind)))


def _handler(kind: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from cardkit import locations
        from cardkit.cliutil import settings_from_args

        ledger_dir = args.ledger_dir or locations.ledger_dir(settings_from_args(args).data_dir)
        scope = Scope.of(store_id=args.store, merchant=args.merchant)
        ledger = open_checked(Path(ledger_dir), args.db)
        period = period_from(args.first, args.last, today=calendar.day_of_ms(ledger.now_ms()),
                             default_days=reports.DEFAULT_DAYS[kind])
        models.create_tables()
        horizon = projection.Horizon(getattr(args, "horizon_months", projection.DEFAULT_MONTHS),
                                     getattr(args, "discount_bp", 0))
        report: reports.AnyReport
        if kind == "ltv":
            report = lifetime.lifetime_report(period.last_day, scope, horizon, per_member=args.per_member)
        else:
            report = reports.build(kind, period, scope, horizon)
        output = "json" if args.json else args.format
        if output == "json":
            json.dump(report.to_json(), sys.stdout, ensure_ascii=False, sort_keys=True)
            sys.stdout.write("\n")
        elif output == "csv":
            header, rows = report.rows() if isinstance(report, lifetime.LifetimeReport) else report.table()
            writer = csv.writer(sys.stdout, lineterminator="\n")  # streamed: a row per member can be a million
            writer.writerow(header)
            writer.writerows(rows)
        else:
            print("\n".join(report.lines()))
        return 0

    return run
