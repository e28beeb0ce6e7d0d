"""Members at every store (issue 14): what the online look-up adds to a tap, on loopback.

A real ``cardpos ledger serve`` process and a store-2 terminal enrolled with the real CLI, its counter built with
the look-up client the app attaches. Timed in alternating blocks, same run:

- ours: a tap of a store-1 member at the store-2 terminal: verify the card, the signed look-up (terminal
  signature, the ledger's snapshot read, seal to the terminal, audit entry, root signature), open and cache the
  answer, build the member view. While online a looked-up member is looked up again on every tap, so every tap
  here pays the whole round trip;
- baseline: a tap of a store-2 member the terminal pulled (verify, member view; no network).

Figures: the look-up tap's p50 and p99 in ms, and p99 minus the baseline's p99 (what a cashier waits for on top).

Run: ``.venv/bin/python -m bench --only bench_lookup --quick``.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_sync import _cli, _serve, seed_ledger

P99_TARGET_MS = 250.0


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(quick: bool = False) -> list[dict[str, Any]]:
    from ledger import admin
    from terminal import documents
    from terminal.offline.store import TerminalStore
    from terminal.service.counter import Counter
    from terminal.service.loader import load_rules, load_verifier
    from terminal.sync.lookup import LedgerLookup
    from terminal.sync.service import load_identity_key

    taps = 60 if quick else 300
    root = Path(tempfile.mkdtemp(prefix="cardpos-bench-lookup-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        ledger_dir, members, _, _ = seed_ledger(root)
        guest = admin.issue_card(members[0][0])  # a store-1 member
        local = admin.issue_card(admin.add_member("Local", store_id="store-2", balance=10_000))
        _, code = admin.add_terminal("bench away till", "store-2")
        server, url = _serve(root, ledger_dir)
        data_dir = root / "away"
        _cli(root, "terminal", "enroll", "--ledger", url, "--code", code, "--data-dir", str(data_dir))
        _cli(root, "terminal", "sync", "--once", "--data-dir", str(data_dir))
        enrollment = documents.require_enrollment(data_dir)
        lookups = LedgerLookup(data_dir, enrollment, load_identity_key(data_dir), ledger_url=url)
        store = TerminalStore.open(data_dir, enrollment.terminal_id)
        counter = Counter(store, load_verifier(data_dir, enrollment, clock_skew_s=300),
                          load_rules(data_dir, enrollment), terminal_id=enrollment.terminal_id,
                          online=lambda: True, lookups=lookups)
        try:
            assert counter.tap(local.token).member is not None  # warm both paths once
            first = counter.tap(guest.token).member
            assert first is not None and first.known and first.name == "Member 0"
            ours: list[float] = []
            base: list[float] = []
            for _ in range(taps // 10):
                for token, into in ((guest.token, ours), (local.token, base)):
                    for _ in range(10):
                        started = time.perf_counter()
                        counter.tap(token)
                        into.append((time.perf_counter() - started) * 1000)
        finally:
            lookups.close()
            counter.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        shutil.rmtree(root, ignore_errors=True)
    p99, base_p99 = _p(ours, 0.99), _p(base, 0.99)
    return [
        {"figure": f"tap with online member look-up, p50 of {len(ours)}", "value": statistics.median(ours),
         "unit": "ms", "baseline": statistics.median(base), "baseline_label": "tap of a pulled member, p50",
         "ratio": statistics.median(ours) / statistics.median(base), "target": "(reported)", "passed": True},
        {"figure": f"tap with online member look-up, p99 of {len(ours)}", "value": p99, "unit": "ms",
         "baseline": base_p99, "baseline_label": "tap of a pulled member, p99", "ratio": p99 / base_p99,
         "target": f"<= {P99_TARGET_MS:g} ms", "passed": p99 <= P99_TARGET_MS},
    ]
