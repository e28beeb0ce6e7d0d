"""The ledger under many terminals at once (real ``cardpos ledger serve`` processes, HTTP on 127.0.0.1).

- 50 terminals push concurrently to a SQLite ledger: p50/p99 batch latency, operations/s, errors. Baseline: one
  terminal pushing the same batches alone in the same run (its p50 latency and ops/s).
- PostgreSQL with 1, 2 and 4 ledger workers under the same 50 terminals: ops/s, as a ratio to 1 worker.

Batches are sealed before the clock starts, so the figures are the ledger's (verify, decrypt, chain check, apply
exactly once) plus HTTP, not the client's crypto. After each run every terminal's last sequence must be acked.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from ledger import admin
from ledger.home import open_ledger
from tests.fixtures.ledger import LedgerServer, LedgerTerminal, make_ledger, sale, topup

TERMINALS = 50
BATCH = 100


def _setup(root: Path, *, db_url: str | None, workers: int, terminals: int) -> tuple[LedgerServer, list[str],
                                                                                           list[str]]:
    server = make_ledger(root, db_url=db_url, workers=workers)
    ledger = open_ledger(server.ledger_dir, db_url)
    try:
        members = [admin.add_member(f"Member {i}", balance=1_000_000) for i in range(terminals)]
        codes = [admin.add_terminal(f"counter {i}", "store-1")[1] for i in range(terminals)]
    finally:
        ledger.database.close()
    server.start()
    return server, codes, members


def _prepare(server: LedgerServer, codes: list[str], members: list[str], batches: int) -> list[tuple[LedgerTerminal,
                                                                                                    list[bytes]]]:
    prepared = []
    for code, member in zip(codes, members, strict=True):
        terminal = LedgerTerminal.enroll(server.url, code)
        terminal.append("topup", topup(member, 500_000))
        for n in range(batches * BATCH - 1):
            terminal.append("sale", sale(member, 100 + n % 900))
        envelopes = [terminal.seal(i * BATCH + 1, (i + 1) * BATCH, batch_id=uuid.uuid4().hex)
                     for i in range(batches)]
        prepared.append((terminal, envelopes))
    return prepared


def _push_all(prepared: list[tuple[LedgerTerminal, list[bytes]]]) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(terminal: LedgerTerminal, envelopes: list[bytes]) -> None:
        session = requests.Session()
        for envelope in envelopes:
            t0 = time.perf_counter()
            try:
                resp = session.post(f"{terminal.url}/v1/batches", data=envelope,
                                    headers={"Content-Type": "application/cbor"}, timeout=120)
                ok = resp.status_code == 200
                detail = resp.text[:200]
            except requests.RequestException as exc:
                ok, detail = False, str(exc)
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                if not ok:
                    errors.append(detail)

    threads = [threading.Thread(target=worker, args=item) for item in prepared]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    ops = sum(len(envelopes) for _, envelopes in prepared) * BATCH
    latencies.sort()
    return {"ops_s": ops / wall, "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            "errors": len(errors), "first_error": errors[0] if errors else ""}


def _run_case(base: Path, name: str, *, db_url: str | None, workers: int, terminals: int,
              batches: int) -> dict[str, Any]:
    server, codes, members = _setup(base / name, db_url=db_url, workers=workers, terminals=terminals)
    try:
        prepared = _prepare(server, codes, members, batches)
        return _push_all(prepared)
    finally:
        server.stop()


def run(quick: bool = False) -> list[dict[str, Any]]:
    batches = 3 if quick else 6
    base = Path(tempfile.mkdtemp(prefix="cardpos-bench-load-"))
    rows: list[dict[str, Any]] = []
    try:
        alone = _run_case(base, "alone", db_url=None, workers=1, terminals=1, batches=batches)
        many = _run_case(base, "many", db_url=None, workers=1, terminals=TERMINALS, batches=batches)
        rows += [
            {"figure": f"{TERMINALS} terminals, SQLite: p50 batch latency ({BATCH} ops)", "value": many["p50_ms"],
             "unit": "ms", "baseline": alone["p50_ms"], "baseline_label": "1 terminal alone",
             "ratio": many["p50_ms"] / alone["p50_ms"], "target": "informational", "passed": True},
            {"figure": f"{TERMINALS} terminals, SQLite: p99 batch latency", "value": many["p99_ms"], "unit": "ms",
             "baseline": alone["p50_ms"], "baseline_label": "1 terminal p50",
             "ratio": many["p99_ms"] / alone["p50_ms"], "target": "informational", "passed": True},
            {"figure": f"{TERMINALS} terminals, SQLite: throughput", "value": many["ops_s"], "unit": "ops/s",
             "baseline": alone["ops_s"], "baseline_label": "1 terminal alone",
             "ratio": many["ops_s"] / alone["ops_s"], "target": "0 errors",
             "passed": many["errors"] == 0 and alone["errors"] == 0},
        ]
        rows += _postgres_rows(base, batches)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return rows


def _postgres_rows(base: Path, batches: int) -> list[dict[str, Any]]:
    from tests.fixtures.postgres import start_postgres, stop_postgres

    server = start_postgres()
    try:
        results = {}
        for workers in (1, 2, 4):
            db_url = server.url(server.create_database())
            results[workers] = _run_case(base, f"pg-{workers}", db_url=db_url, workers=workers,
                                         terminals=TERMINALS, batches=batches)
    finally:
        stop_postgres(server)
    one = results[1]["ops_s"]
    return [
        {"figure": f"PostgreSQL, {w} worker(s), {TERMINALS} terminals: throughput", "value": r["ops_s"],
         "unit": "ops/s", "baseline": one, "baseline_label": "1 worker", "ratio": r["ops_s"] / one,
         "target": "0 errors", "passed": r["errors"] == 0}
        for w, r in results.items()
    ]
