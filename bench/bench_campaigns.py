"""A promotion to 1,000,000 members planned and queued, on SQLite and then on PostgreSQL: one message row per
member (or a holdout row) inserted under its idempotency key into the campaign outbox by ``INSERT ... SELECT``
from the member table, 20,000 members per transaction, the holdout drawn by the database.

Figures, per database:
- planning time for the whole segment (target: under 60 s), and as ratios to two baselines measured in the same
  run on a scratch table with the same indexes: the same number of rows of the same shape inserted with a bare
  ``executemany`` 20,000 per transaction (what planning used to be), and one bare ``INSERT ... SELECT`` of the
  rows from the member table with no holdout draw and no chunking (the floor of set-based planning);
- the process's CPU time while planning (the machine may be shared: wall time includes waiting for a core);
- memory: growth of the process's peak resident set while planning (target: under 150 MB, i.e. bounded, not
  proportional to the segment: a million rows held in memory would take well over 1 GB).

Members are generated with bulk inserts first (not timed). ``quick``: 100,000 members.

Run: ``.venv/bin/python -c "import bench.bench_campaigns as b; print(b.run())"``
"""

from __future__ import annotations

import logging
import os
import resource
import time
from pathlib import Path
from typing import Any

from bench import on_sqlite_and_postgres

FULL_MEMBERS = 1_000_000
QUICK_MEMBERS = 100_000
TARGET_S = 60.0
TARGET_GROWTH_MB = 150.0
GENERATE_CHUNK = 5_000
BARE_CHUNK = 20_000


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _many(sql: str, rows: list[tuple[Any, ...]]) -> None:
    """``executemany`` on SQLite; on PostgreSQL one multi-row statement per 1,000 rows (psycopg2's
    ``executemany`` is a round trip per row)."""
    from ledger import store

    cursor = store.db.cursor()
    if not store.is_postgres():
        cursor.executemany(sql, rows)
        return
    from psycopg2.extras import execute_values

    head, _, tail = sql.partition(" VALUES ")
    execute_values(cursor, head + " VALUES %s" + tail[tail.index(")") + 1:], rows, page_size=1000)


def _generate_members(count: int) -> None:
    from ledger import store

    fields = ["member_id", "name_enc", "phone_enc", "email_enc", "notes_enc", "prefs_enc", "store_id", "opening_tier",
              "currency", "opening_balance", "opening_points", "created_ms", "version"]
    p = store.db.param
    sql = (f'INSERT INTO "member" ({", ".join(chr(34) + f + chr(34) for f in fields)}) '
           f'VALUES ({", ".join(p for _ in fields)})')
    for start in range(0, count, GENERATE_CHUNK):
        rows = [(f"m{i:07d}", b"", b"", b"", b"", b"", "store-1", "standard", "CNY", 0, 0, 1_700_000_000_000, 1)
                for i in range(start, min(count, start + GENERATE_CHUNK))]
        with store.db.atomic():
            _many(sql, rows)


SCRATCH_INDEXES = (("UNIQUE", ("campaign_id", "member_id", "occasion", "channel")), ("", ("member_id",)),
                   ("", ("status", "next_attempt_ms")), ("", ("campaign_id", "status")), ("UNIQUE", ("reference",)))
"""The indexes of ``campaign_message`` (``ledger.campaigns.tables``)."""


def _scratch(name: str) -> None:
    from ledger import store

    store.db.execute_sql(f'CREATE TABLE "{name}" AS SELECT * FROM "campaign_message" WHERE 1 = 0')
    for n, (unique, columns) in enumerate(SCRATCH_INDEXES):
        store.db.execute_sql(f'CREATE {unique} INDEX "{name}_{n}" ON "{name}" '
                             f'({", ".join(chr(34) + c + chr(34) for c in columns)})')


def _bare_executemany(count: int) -> float:
    """Baseline 1: rows of the same shape into a scratch table with the same indexes, 20,000 per transaction."""
    from ledger import store

    _scratch("scratch_many")
    p = store.db.param
    sql = ('INSERT INTO "scratch_many" ("id", "campaign_id", "member_id", "channel", "occasion", "status", '
           f'"attempts", "next_attempt_ms", "created_ms", "last_error") VALUES ({", ".join([p] * 10)})')
    started = time.perf_counter()
    for start in range(0, count, BARE_CHUNK):
        rows = [(i + 1, "cmp-x", f"m{i:07d}", "sms", "", "pending", 0, 0, 0, "")
                for i in range(start, min(count, start + BARE_CHUNK))]
        with store.db.atomic():
            _many(sql, rows)
    return time.perf_counter() - started


def _bare_insert_select() -> float:
    """Baseline 2: one ``INSERT ... SELECT`` of every member's row, constant status, one transaction."""
    from ledger import store

    _scratch("scratch_select")
    started = time.perf_counter()
    with store.db.atomic():
        store.db.execute_sql(
            'INSERT INTO "scratch_select" ("id", "campaign_id", "member_id", "channel", "occasion", "status", '
            '"attempts", "next_attempt_ms", "created_ms", "last_error") '
            "SELECT ROW_NUMBER() OVER (ORDER BY \"member_id\"), 'cmp-x', \"member_id\", 'sms', '', 'pending', 0, 0, 0, "
            "'' FROM \"member\"")
    return time.perf_counter() - started


def _measure(label: str, db_url: str | None, root: Path, count: int) -> list[dict[str, Any]]:
    from ledger import store
    from ledger.campaigns import plan, tables
    from ledger.campaigns.model import Kind
    from ledger.campaigns.segments import DefaultSegments
    from ledger.campaigns.tables import CampaignMessage
    from ledger.home import init_ledger

    ledger = init_ledger(root / label.lower(), db_url)
    try:
        tables.create_tables()
        _generate_members(count)
        campaign_id = plan.create_campaign(plan.CampaignSpec(
            name="bench", kind=Kind.PROMOTION, channel="sms", segment="all", text_zh="{name}：双倍积分",
            text_en="{name}: double points", holdout_bp=500, seed="bench"), actor="bench", now_ms=ledger.now_ms())
        rss_before = _rss_mb()
        cpu_before = time.process_time()
        started = time.perf_counter()
        report = plan.plan_promotion(campaign_id, DefaultSegments(), now_ms=ledger.now_ms())
        seconds = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_before
        growth = _rss_mb() - rss_before
        load = os.getloadavg()[0]
        queued = CampaignMessage.select().count()
        assert queued == count == report.planned + report.holdout, (queued, report)
        many_s = _bare_executemany(count)
        select_s = _bare_insert_select()
    finally:
        if not store.db.is_closed():
            store.db.close()
    scale = f"{count:,} members, {label}"
    return [
        {"figure": f"promotion planned and queued, {scale}", "value": round(seconds, 2), "unit": "s",
         "baseline": round(many_s, 2), "baseline_label": "bare executemany of the same rows",
         "ratio": round(seconds / many_s, 2) if many_s else None, "target": f"< {TARGET_S:.0f} s",
         "passed": seconds < TARGET_S, "cpu_s": round(cpu_s, 2), "load_1min": round(load, 1),
         "holdout": report.holdout, "rate_per_s": round(count / seconds),
         "bare_insert_select_s": round(select_s, 2),
         "ratio_to_insert_select": round(seconds / select_s, 2) if select_s else None},
        {"figure": f"peak memory growth while planning, {scale}", "value": round(growth, 1), "unit": "MB",
         "baseline": round(rss_before, 1), "baseline_label": "peak RSS before planning",
         "ratio": round(growth / rss_before, 2) if rss_before else None, "target": f"< {TARGET_GROWTH_MB:.0f} MB",
         "passed": growth < TARGET_GROWTH_MB},
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    logging.getLogger("cardpos").setLevel(logging.WARNING)
    return on_sqlite_and_postgres(_measure, QUICK_MEMBERS if quick else FULL_MEMBERS, "cardpos-bench-campaigns-")
