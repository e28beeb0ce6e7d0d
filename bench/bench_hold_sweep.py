"""Held authorizations swept on a schedule (``ledger.holds``): what the audited sweep costs, on SQLite.

A ledger with N held authorizations (N/100 members, 100 holds each, made by ``authorize.authorize`` as the API
makes them) is copied file by file before each timed sweep, so every sweep starts from the same bytes. Timed in
alternating rounds, same run:

- ours: ``holds.sweep`` with every hold past its expiry: expire them and write one audit line per hold in the
  ledger's transaction;
- baseline: ``authorize.sweep`` on the same copy: the decision path's own sweep (expire, no audit);
- idle: ``holds.sweep`` when nothing is due (the cost every interval pays in the steady state: one indexed read
  of due holds, then settling what is applied).

Run: ``.venv/bin/python -m bench --only bench_hold_sweep --quick``.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

T0_MS = 1_790_000_000_000
TTL_MS = 60_000
PER_MEMBER = 100


def _build(root: Path, holds_count: int) -> Path:
    from cardkit.authorization import AuthorizationRequest, request_digest
    from ledger import admin, authorize
    from ledger.home import init_ledger

    home = init_ledger(root / "ledger", issuer="bench", clock=lambda: T0_MS)
    authorize.open_holds()
    members = [admin.add_member(f"M{i}", balance=10**9) for i in range(max(1, holds_count // PER_MEMBER))]
    for i in range(holds_count):
        req = AuthorizationRequest(entry_uuid=str(uuid.UUID(int=i + 1)), member_id=members[i % len(members)],
                                   card_id="card", currency="CNY", sv=100, points=0, coupons=(), nonce=b"n" * 16)
        authorize.authorize(req, request_digest(req.body()), terminal_id="t1", now_ms=T0_MS + i, ttl_ms=TTL_MS)
    authorize.holds_db.obj.close()
    home.database.close()
    return root / "ledger"


def _timed(template: Path, into: Path, which: str, now_ms: int) -> tuple[float, int]:
    from ledger import authorize, holds
    from ledger.home import open_ledger

    shutil.rmtree(into, ignore_errors=True)
    shutil.copytree(template, into)
    home = open_ledger(into)
    authorize.open_holds()
    try:
        started = time.perf_counter()
        if which == "ours":
            report = holds.sweep(now_ms)
            count = len(report.expired)
        else:
            count = authorize.sweep(now_ms)[authorize.EXPIRED]
        return (time.perf_counter() - started) * 1000, count
    finally:
        authorize.holds_db.obj.close()
        home.database.close()


def run(quick: bool = False) -> list[dict[str, Any]]:
    holds_count = 2_000 if quick else 10_000
    rounds = 3 if quick else 5
    root = Path(tempfile.mkdtemp(prefix="cardpos-bench-holds-"))
    try:
        template = _build(root / "template", holds_count)
        due_ms = T0_MS + holds_count + TTL_MS
        ours: list[float] = []
        base: list[float] = []
        idle: list[float] = []
        for _ in range(rounds):
            for which, into in (("ours", ours), ("baseline", base)):
                ms, count = _timed(template, root / "copy", which, due_ms)
                assert count == holds_count, (which, count)
                into.append(ms)
            ms, count = _timed(template, root / "copy", "ours", T0_MS)  # nothing due yet
            assert count == 0
            idle.append(ms)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    o, b, i = statistics.median(ours), statistics.median(base), statistics.median(idle)
    return [
        {"figure": f"sweep expiring {holds_count:,} holds, audited, median of {rounds}", "value": o, "unit": "ms",
         "baseline": b, "baseline_label": "authorize.sweep, no audit", "ratio": o / b, "target": "(reported)",
         "passed": True},
        {"figure": f"sweep with nothing due among {holds_count:,} held, median of {rounds}", "value": i,
         "unit": "ms", "baseline": o, "baseline_label": "the audited sweep above", "ratio": i / o,
         "target": "(reported)", "passed": True},
    ]
