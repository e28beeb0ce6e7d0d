"""Durable journal appends vs a bare SQLite commit loop, measured side by side in the same run.

Baseline: plain ``sqlite3``, WAL, ``synchronous=FULL``, one ``BEGIN IMMEDIATE; INSERT one row; COMMIT`` per
iteration, with a row as big as a stored journal entry. That is the floor for "one durable commit per
operation" on this disk. Ours: ``Journal.append`` of a realistic sale (chain head read, canonical CBOR,
SHA-256, insert, fsynced commit). Blocks of both alternate so background load hits both alike. The target row is
total appends over total time; a second row gives the median ratio of adjacent block pairs, which is what the
comparison looks like without the stalls of a shared machine.

Run: ``.venv/bin/python -c "import bench.bench_journal as b; print(b.run(quick=True))"``.
"""

from __future__ import annotations

import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from terminal.offline.store import TerminalStore

TARGET_RATIO = 0.8


def _sale(i: int) -> dict[str, Any]:
    return {"card": f"card-{i % 97}", "member": f"m-{i % 89}", "cur": "CNY", "gross": 12_50 + i, "tier_disc": 125,
            "coupon_disc": 0, "pts_disc": 0, "net": 11_25 + i, "tender": "sv", "sv": 11_25 + i, "pts_earn": 11,
            "pts_redeem": 0, "coupons": [], "offline": True}


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class _Bare:
    def __init__(self, path: Path, row_bytes: int) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=wal")
        self.conn.execute("PRAGMA synchronous=2")
        self.conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
        self.row = b"x" * row_bytes

    def block(self, n: int, latencies: list[float]) -> float:
        conn, row = self.conn, self.row
        start = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (v) VALUES (?)", (row,))
            conn.execute("COMMIT")
            latencies.append(time.perf_counter() - t0)
        return time.perf_counter() - start


class _Ours:
    def __init__(self, data_dir: Path) -> None:
        self.store = TerminalStore.open(data_dir, "T-BENCH")
        self.payloads = [_sale(i) for i in range(1_000)]  # built up front: the baseline has no payload to build
        self.i = 0

    def block(self, n: int, latencies: list[float]) -> float:
        journal, payloads = self.store.journal, self.payloads
        start = time.perf_counter()
        for _ in range(n):
            self.i += 1
            payload = payloads[self.i % len(payloads)]
            t0 = time.perf_counter()
            journal.append("sale", payload, "cashier-1")
            latencies.append(time.perf_counter() - t0)
        return time.perf_counter() - start

    def stored_row_bytes(self) -> int:
        row = self.store.db.connection().execute(
            "SELECT length(payload) + length(hash) + length(prev_hash) + length(uuid) + length(terminal_id) "
            "FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
        return int(row[0]) if row else 300


def run(quick: bool = False) -> list[dict[str, Any]]:
    # Many short alternating blocks: the disk's fsync time drifts with other load, and both sides should see it.
    blocks, per_block = (8, 50) if quick else (30, 100)
    root = Path(tempfile.mkdtemp(prefix="cardpos-bench-journal-"))
    try:
        ours = _Ours(root / "ours")
        ours.block(20, [])  # warm-up; also gives the real stored row size for the baseline
        bare = _Bare(root / "bare.sqlite3", ours.stored_row_bytes())
        bare.block(20, [])
        ours_lat: list[float] = []
        bare_lat: list[float] = []
        ours_time = bare_time = 0.0
        pair_ratios: list[float] = []
        for _ in range(blocks):
            bare_block = bare.block(per_block, bare_lat)
            ours_block = ours.block(per_block, ours_lat)
            bare_time += bare_block
            ours_time += ours_block
            pair_ratios.append(bare_block / ours_block)
        if ours.store.journal.verify_chain() is not None:
            raise RuntimeError("the benchmark journal does not verify")
        ours.store.close()
        bare.conn.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    n = blocks * per_block
    ours_rate, bare_rate = n / ours_time, n / bare_time
    ratio = ours_rate / bare_rate
    # The same comparison block by block: the median of adjacent pairs is what a quiet moment looks like, because a
    # multi-millisecond stall from other load lands in one side's block and swings the totals either way.
    typical = statistics.median(pair_ratios)
    rows: list[dict[str, Any]] = [{
        "figure": "durable journal appends per second",
        "value": round(ours_rate, 1), "unit": "appends/s",
        "baseline": round(bare_rate, 1),
        "baseline_label": "bare sqlite3 WAL synchronous=FULL single-row INSERT+COMMIT loop",
        "ratio": round(ratio, 3), "target": f">= {TARGET_RATIO}x baseline",
        "passed": ratio >= TARGET_RATIO,
    }, {
        "figure": "journal/bare throughput ratio, median of adjacent block pairs",
        "value": round(typical, 3), "unit": "x",
        "baseline": 1.0, "baseline_label": "bare loop in the adjacent block",
        "ratio": round(typical, 3), "target": "informational (shows the quiet-disk ratio without stalls)",
        "passed": True,
    }]
    for name, q in (("p50", 0.50), ("p99", 0.99)):
        value_ms = _percentile(ours_lat, q) * 1000
        base_ms = _percentile(bare_lat, q) * 1000
        # Latency: lower is better, so the ratio is baseline/ours (1.0 = as fast as a bare commit). The issue's
        # target is the throughput ratio above; latencies are reported for the p99 budget of the counter.
        rows.append({
            "figure": f"journal append latency {name}",
            "value": round(value_ms, 3), "unit": "ms",
            "baseline": round(base_ms, 3),
            "baseline_label": f"bare sqlite3 WAL synchronous=FULL commit latency {name}",
            "ratio": round(base_ms / value_ms, 3), "target": "informational (the appends/s row is the target)",
            "passed": True,
        })
    return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
