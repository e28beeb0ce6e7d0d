"""A promotion to 1,000,000 members planned and queued: every member of the segment read in pages, the holdout
drawn, one message row per member inserted under its idempotency key (the campaign outbox), on SQLite.

Figures:
- planning time for the whole segment (target: under 60 s), and as a ratio to the bare baseline in the same
  run: the same number of rows of the same shape inserted with ``executemany`` into a scratch table, with no
  segment read, no holdout draw and no key computation;
- the process's CPU time while planning (the machine may be shared: wall time includes waiting for a core);
- memory: growth of the process's peak resident set while planning (target: under 150 MB, i.e. bounded, not
  proportional to the segment: a million rows held in memory would take well over 1 GB).

Members are generated with bulk inserts first (not timed). ``quick``: 100,000 members.

Run: ``.venv/bin/python -c "import bench.bench_campaigns as b; print(b.run())"``
"""

from __future__ import annotations

import logging
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

FULL_MEMBERS = 1_000_000
QUICK_MEMBERS = 100_000
TARGET_S = 60.0
TARGET_GROWTH_MB = 150.0
GENERATE_CHUNK = 5_000


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _generate_members(count: int) -> None:
    from ledger import store

    fields = ["member_id", "name_enc", "phone_enc", "email_enc", "notes_enc", "prefs_enc", "store_id", "opening_tier",
              "currency", "opening_balance", "opening_points", "created_ms", "version"]
    sql = (f'INSERT INTO "member" ({", ".join(chr(34) + f + chr(34) for f in fields)}) '
           f'VALUES ({", ".join("?" for _ in fields)})')
    conn = store.db.connection()
    for start in range(0, count, GENERATE_CHUNK):
        rows = [(f"m{i:07d}", b"", b"", b"", b"", b"", "store-1", "standard", "CNY", 0, 0, 1_700_000_000_000, 1)
                for i in range(start, min(count, start + GENERATE_CHUNK))]
        with store.db.atomic():
            conn.executemany(sql, rows)


def _bare_insert(count: int) -> float:
    """The baseline: rows of the same shape (references in a scattered order, as hashes are), straight into a
    scratch table with the same indexes, 20,000 per transaction."""
    from ledger import store

    store.db.execute_sql('CREATE TABLE "scratch_message" AS SELECT * FROM "campaign_message" WHERE 0')
    store.db.execute_sql('CREATE UNIQUE INDEX "scratch_reference" ON "scratch_message" ("reference")')
    store.db.execute_sql('CREATE INDEX "scratch_member" ON "scratch_message" ("member_id")')
    store.db.execute_sql('CREATE INDEX "scratch_status" ON "scratch_message" ("status", "next_attempt_ms")')
    store.db.execute_sql('CREATE INDEX "scratch_campaign" ON "scratch_message" ("campaign_id", "status")')
    sql = ('INSERT INTO "scratch_message" ("id", "campaign_id", "member_id", "channel", "occasion", "status", '
           '"attempts", "next_attempt_ms", "created_ms", "reference", "last_error") '
           'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
    conn = store.db.connection()
    started = time.perf_counter()
    for start in range(0, count, 20_000):
        rows = [(i + 1, "cmp-x", f"m{i:07d}", "sms", "", "pending", 0, 0, 0,
                 f"cp-{(i * 2654435761) % 2**64:024x}", "") for i in range(start, min(count, start + 20_000))]
        with store.db.atomic():
            conn.executemany(sql, rows)
    return time.perf_counter() - started


def run(quick: bool = False) -> list[dict[str, Any]]:
    from ledger import store
    from ledger.campaigns import plan
    from ledger.campaigns.model import Kind
    from ledger.campaigns.segments import DefaultSegments
    from ledger.campaigns.tables import CampaignMessage
    from ledger.home import init_ledger

    logging.getLogger("cardpos").setLevel(logging.WARNING)
    count = QUICK_MEMBERS if quick else FULL_MEMBERS
    with tempfile.TemporaryDirectory() as tmp:
        ledger = init_ledger(Path(tmp) / "ledger")
        try:
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
            queued = CampaignMessage.select().count()
            assert queued == count == report.planned + report.holdout, (queued, report)
            baseline = _bare_insert(count)
        finally:
            if not store.db.is_closed():
                store.db.close()
    label = f"{count:,} members"
    return [
        {"figure": f"promotion planned and queued, {label}", "value": round(seconds, 2), "unit": "s",
         "baseline": round(baseline, 2), "baseline_label": "bare executemany of the same rows",
         "ratio": round(seconds / baseline, 2) if baseline else None, "target": f"< {TARGET_S:.0f} s",
         "passed": seconds < TARGET_S,
         "holdout": report.holdout, "rate_per_s": round(count / seconds), "cpu_s": round(cpu_s, 2)},
        {"figure": f"peak memory growth while planning, {label}", "value": round(growth, 1), "unit": "MB",
         "baseline": round(rss_before, 1), "baseline_label": "peak RSS before planning",
         "ratio": round(growth / rss_before, 2) if rss_before else None, "target": f"< {TARGET_GROWTH_MB:.0f} MB",
         "passed": growth < TARGET_GROWTH_MB},
    ]
