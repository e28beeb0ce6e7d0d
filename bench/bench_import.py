"""``cardpos ledger import`` of 100,000 members (balances, points, tiers, card numbers, consents) from CSV.

Figures, on SQLite and on PostgreSQL (baseline measured in the same run, on the same rows, in the same database):
- the import of the members file by its path, as ``cardpos ledger import --members FILE`` does (streamed; parse and
  check every row, encrypt and index personal data, stage consents and card numbers, one transaction,
  reconciliation) as a ratio to a bare bulk insert of the same file's rows' clear fields into a plain table
  (``csv.reader`` over the file, one transaction, ``executemany`` on SQLite and multi-row VALUES on PostgreSQL,
  the import's own bulk methods: what loading the CSV without any of that costs), by wall clock (``ratio``) and
  by this process's CPU time (``cpu_ratio``: steadier on a shared machine; PostgreSQL's own CPU is in neither);
- the second run of the same file (every row recognised, nothing written) against the same baseline;
- whether the import reconciled to the cent.
Run: .venv/bin/python -m bench --only bench_import   (or ``python -m bench.bench_import [--quick] [--sqlite]``)
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import on_sqlite_and_postgres

MEMBERS = 100_000
WALL_MS = 1_793_800_000_000
MERCHANTS = "merchant_id,name\nspa,Hotel Spa\nshop,Hotel Shop\nbar,Hotel Bar\n"
STORES = "store_id,merchant_id,name\nspa-1,spa,Spa\nshop-1,shop,Shop\nbar-1,bar,Bar\n"
HEADER = ["member_id", "name", "store_id", "phone", "email", "tier", "balance", "points", "card_number",
          "consent_sms", "consent_email"]


def members_csv(count: int, seed: int = 11) -> tuple[bytes, int, int]:
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    balance = points = 0
    for n in range(count):
        minor, pts = rng.randrange(0, 1_000_000), rng.randrange(0, 50_000)
        balance += minor
        points += pts
        writer.writerow([f"M{n:07d}", f"Member {n} Wang", ("spa-1", "shop-1", "bar-1")[n % 3], f"139{n:08d}",
                         f"m{n}@example.com", ("standard", "preferred", "gold", "platinum")[n % 4],
                         f"{minor // 100}.{minor % 100:02d}", pts, f"OLD-{n:09d}", "yes" if n % 2 else "no",
                         "" if n % 7 else "yes"])
    return out.getvalue().encode(), balance, points


def _bare_insert(path: Path) -> tuple[float, float]:
    """The same rows' fields, parsed by csv and inserted as they are into a plain table, one transaction:
    (wall seconds, CPU seconds)."""
    from ledger import store

    database = store.db.obj
    database.execute_sql('CREATE TABLE IF NOT EXISTS "bench_bare" (member_id TEXT PRIMARY KEY, name TEXT, '
                         'store_id TEXT, phone TEXT, email TEXT, tier TEXT, balance TEXT, points TEXT, '
                         'card_number TEXT, consent_sms TEXT, consent_email TEXT)')
    database.execute_sql('DELETE FROM "bench_bare"')
    started, cpu = time.perf_counter(), time.process_time()
    with path.open(encoding="utf-8", newline="") as stream:
        reader = csv.reader(stream)
        next(reader)
        marks = ", ".join([store.db.param] * len(HEADER))
        with store.atomic_write():
            cursor = database.cursor()
            if store.is_postgres():  # the import's own bulk method there (executemany is a round trip per row)
                from psycopg2.extras import execute_values

                execute_values(cursor, 'INSERT INTO "bench_bare" VALUES %s', list(reader), page_size=1000)
            else:
                cursor.executemany(f'INSERT INTO "bench_bare" VALUES ({marks})', list(reader))
    return time.perf_counter() - started, time.process_time() - cpu


def _measure(label: str, db_url: str | None, root: Path, count: int) -> list[dict[str, Any]]:
    from ledger.home import init_ledger
    from ledger.importer.run import import_program

    data, balance, points = members_csv(count)
    path = root / f"{label}-members.csv"
    path.write_bytes(data)
    del data
    home = init_ledger(root / label, db_url, clock=lambda: WALL_MS)
    try:
        bare, bare_cpu = _bare_insert(path)
        started, cpu = time.perf_counter(), time.process_time()
        report = import_program(merchants_csv=("merchants.csv", MERCHANTS.encode()),
                                stores_csv=("stores.csv", STORES.encode()), members_csv=("members.csv", path))
        first, first_cpu = time.perf_counter() - started, time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        again = import_program(members_csv=("members.csv", path))
        second, second_cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        home.database.close()
    ok = (report.reconciled and report.imported_balance == balance and report.imported_points == points
          and report.members.imported == count and again.members.unchanged == count and again.reconciled)
    return [
        {"figure": f"{label}: import {count:,} members from CSV", "value": first, "unit": "s", "baseline": bare,
         "baseline_label": "bare bulk insert of the same rows", "ratio": first / bare, "target": "reconciled",
         "passed": ok, "cpu_s": first_cpu, "baseline_cpu_s": bare_cpu, "cpu_ratio": first_cpu / bare_cpu,
         "load": os.getloadavg()[0]},
        {"figure": f"{label}: re-run of the same file (no-op)", "value": second, "unit": "s", "baseline": bare,
         "baseline_label": "bare bulk insert of the same rows", "ratio": second / bare, "target": "no change",
         "passed": again.members.imported == 0, "cpu_s": second_cpu, "baseline_cpu_s": bare_cpu,
         "cpu_ratio": second_cpu / bare_cpu, "load": os.getloadavg()[0]},
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    count = 10_000 if quick else MEMBERS
    return on_sqlite_and_postgres(_measure, count, "cardpos-bench-import-")


def main() -> None:
    parser = argparse.ArgumentParser(description="ledger import against a bare bulk insert")
    parser.add_argument("--quick", action="store_true", help=f"10,000 members instead of {MEMBERS:,}")
    parser.add_argument("--sqlite", action="store_true", help="SQLite only (no PostgreSQL server started)")
    args = parser.parse_args()
    count = 10_000 if args.quick else MEMBERS
    if args.sqlite:
        root = Path(tempfile.mkdtemp(prefix="cardpos-bench-import-"))
        try:
            found = _measure("SQLite", None, root, count)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    else:
        found = run(quick=args.quick)
    for row in found:
        print(f"{row['figure']}: {row['value']:.2f} s wall, {row['cpu_s']:.2f} s CPU; bare insert "
              f"{row['baseline']:.2f} s wall, {row['baseline_cpu_s']:.2f} s CPU; ratio {row['ratio']:.2f}x wall, "
              f"{row['cpu_ratio']:.2f}x CPU; passed {row['passed']}; load {row['load']:.1f}")


if __name__ == "__main__":
    main()
