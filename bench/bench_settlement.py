"""Settlement of a period: 1,000,000 entries across 10 merchants, on SQLite and on PostgreSQL.

Figures (baselines measured in the same run, on the same rows):
- time to compute the period's statement (``ledger.settlement.books.compute``: the sums by flow, merchant, issuer
  and adjustment, the liability by issuer with its opening, the positions and the netting) as a ratio to a bare
  ``SELECT merchant_id, SUM(amount) ... GROUP BY merchant_id`` over the same period (target <= 3x);
- Python memory at its peak while computing (tracemalloc): bounded by the number of (flow, merchant, issuer)
  groups, not by the number of entries (target < 5 MiB).

The entries are funding lines as ``ledger.apply`` writes them (a top-up: sv_in + bonus; a sale: sv_out by issuing
merchant + points issued, some with points redeemed or a coupon; refunds), inserted in bulk; ingest itself is
measured by bench_ledger_load.
Run: .venv/bin/python -m bench --only bench_settlement
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee

from bench import on_sqlite_and_postgres

ENTRIES = 1_000_000
MERCHANTS = [f"m{i:02d}" for i in range(10)]
PERIOD = "2026-11"
WALL_MS = 1_793_800_000_000  # in November 2026
CHUNK = 20_000
REPEATS = 3


def _lines(entries: int, seed: int = 17) -> Iterator[tuple[Any, ...]]:
    """Funding-line rows (``ledger.settlement.hook.LINE_COLUMNS``) of ``entries`` entries."""
    rng = random.Random(seed)
    for n in range(entries):
        merchant = MERCHANTS[n % len(MERCHANTS)]
        terminal = f"t-{merchant}"
        member = f"m{rng.randrange(100_000)}"
        uuid = f"{n:032x}"
        head = (terminal, n, uuid, None, member)
        roll = rng.random()
        if roll < 0.25:
            amount = rng.randrange(10_000, 200_000)
            yield (*head, "topup", "sv_in", merchant, merchant, amount, 0, "CNY", PERIOD, None, WALL_MS + n)
            yield (*head, "topup", "bonus", merchant, merchant, amount // 10, 0, "CNY", PERIOD, None, WALL_MS + n)
        elif roll < 0.95:
            amount = rng.randrange(100, 50_000)
            issuer = MERCHANTS[rng.randrange(len(MERCHANTS))]
            yield (*head, "sale", "sv_out", merchant, issuer, amount, 0, "CNY", PERIOD, None, WALL_MS + n)
            yield (*head, "sale", "pts_issued", merchant, "", 0, amount // 100, "CNY", PERIOD, None, WALL_MS + n)
            if roll < 0.35:
                yield (*head, "sale", "pts_redeemed", merchant, "", 0, 100, "CNY", PERIOD, None, WALL_MS + n)
            elif roll < 0.40:
                funder = MERCHANTS[rng.randrange(len(MERCHANTS))]
                yield (*head, "sale", "coupon", merchant, funder, 500, 0, "CNY", PERIOD, None, WALL_MS + n)
        else:
            amount = rng.randrange(100, 5_000)
            yield (*head, "refund", "sv_out", merchant, merchant, -amount, 0, "CNY", PERIOD, None, WALL_MS + n)
            yield (*head, "refund", "pts_issued", merchant, "", 0, -(amount // 100), "CNY", PERIOD, None, WALL_MS + n)


def _fill(entries: int) -> int:
    from ledger import store
    from ledger.settlement.hook import _insert

    batch: list[tuple[Any, ...]] = []
    count = 0
    with store.db.atomic():
        for row in _lines(entries):
            batch.append(row)
            if len(batch) == CHUNK:
                _insert(batch)
                count += len(batch)
                batch = []
        _insert(batch)
        count += len(batch)
    if store.is_postgres():
        store.db.execute_sql("VACUUM ANALYZE funding_line")  # what autovacuum does after a bulk load
    else:
        store.db.execute_sql("ANALYZE")
    return count


def _bare_group_by() -> list[tuple[Any, ...]]:
    from ledger.settlement.records import FundingLine as F

    return list(F.select(F.merchant_id, peewee.fn.SUM(F.amount)).where(F.period == PERIOD)
                .group_by(F.merchant_id).tuples())


def _best(fn: Any) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        gc.collect()
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _measure(label: str, db_url: str | None, root: Path, entries: int) -> list[dict[str, Any]]:
    from ledger.home import init_ledger
    from ledger.merchants import admin as merchants
    from ledger.settlement import books

    home = init_ledger(root / label, db_url, clock=lambda: WALL_MS)
    try:
        for merchant in MERCHANTS:
            merchants.add_merchant(f"Merchant {merchant}", merchant_id=merchant)
        started = time.perf_counter()
        lines = _fill(entries)
        fill_s = time.perf_counter() - started
        setup = books.setup_now(PERIOD)
        bare = _best(_bare_group_by)
        settle = _best(lambda: books.compute(PERIOD, setup, None))
        gc.collect()
        tracemalloc.start()
        document = books.compute(PERIOD, setup, None)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert sum(p["net"] for p in document["positions"]) == 0
    finally:
        home.database.close()
    size = f"{entries:,} entries ({lines:,} funding lines, loaded in {fill_s:.0f} s)"
    return [
        {"figure": f"{label}: settle a period of {size}", "value": settle, "unit": "s", "baseline": bare,
         "baseline_label": "bare GROUP BY merchant of the same rows", "ratio": settle / bare, "target": "<= 3x",
         "passed": settle / bare <= 3.0},
        {"figure": f"{label}: Python memory at peak while settling", "value": peak / 2**20, "unit": "MiB",
         "baseline": 5.0, "baseline_label": "bound", "ratio": peak / 2**20 / 5.0, "target": "< 5 MiB",
         "passed": peak < 5 * 2**20},
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    entries = 100_000 if quick else ENTRIES
    return on_sqlite_and_postgres(_measure, entries, "cardpos-bench-settlement-")


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
