"""How sync drain and ledger ingest time grow with the number of operations (issue 9, "Scaling").

Two measurements, each size in its own fresh process so one size's heap cannot flatter or burden the next:

- **sync drain end to end**: N sales appended through the real journal API (``TerminalStore.journal.append``,
  ``synchronous=OFF`` while filling, since filling is set-up) and then pushed by the real ``SyncService`` and
  ``LedgerClient`` to a real ``cardpos ledger serve`` process on 127.0.0.1 (anomaly observers installed, as it
  always runs). Timed from "N queued" to "all acked and marked synced". Sizes: 10,000 and 100,000.
- **ledger ingest alone**: ``ledger.ingest.ingest_batch`` in-process, no HTTP and no anomaly observers, on
  pre-sealed batches of 5,000 entries (about what ``SyncService`` puts in a 256 KiB batch) applied to a fresh
  copy of an enrolled SQLite ledger. Sizes: 10,000, 100,000 and 1,000,000.

Why 1,000,000 only for ingest: the drain runs at roughly 7,500 ops/s on the 2-core bench machine, so 1M end to
end would take over two minutes plus about a minute to fill the journal, which does not fit the 10-minute budget
of ``make bench`` alongside the other benchmarks. The ingest figure covers the ledger side of that size.

How the 1M batches are made: entries are built in memory with ``cardkit.journal.make_entry`` (the same
canonical-CBOR hash chain the journal writes; the ledger re-derives the chain from the batch and refuses any
mismatch with ``broken_chain``, so a wrong row could not be counted) and sealed with the real ``seal_batch`` under
the enrolled terminal's identity key and the ledger's HPKE key. They are written to one file; each size uses its
prefix (the chain starts at seq 1 in every case) and reads it batch by batch during the run, so the resident
memory measured is the ingest's own and not the input's.

Figures: per size the rate (ops/s; its wall-clock and CPU seconds are in the figure's name -- for the drain,
CPU of the terminal and the server process together) against the smallest size of the same run; the growth
ratios ``time(100k)/time(10k)`` and ``time(1M)/time(100k)`` against 10.0 (linear), target 0.7-1.4x of linear,
with the CPU-time growth in the name (other engineers' load on the shared 2 cores moves wall time, CPU time
much less); the rate over the last tenth of the largest run against its first tenth (marks at every batch
boundary; for the drain taken from ``SyncService``'s ``on_status`` after each ack), which separates a per-op
cost that grows with the data from fixed start-up costs; and the peak resident set (``VmHWM``, reset through
``/proc/<pid>/clear_refs`` just before the measured phase) at the largest size against the smallest: bounded
means it does not grow with the number of operations (target: under 2x while the work grows 10-100x). For the
drain both sides are reported: the terminal process and the ledger server process.

Entry ids are time-ordered (version 7) UUIDs, as terminals make them (``terminal.offline.store.time_ordered_uuid``),
and the ledger runs with a 64 MiB page cache; both came from the finding below.

What grew before (measured 2026-11-23 with a scratch run outside this module, 1M ops, CPU rate per 100k): ingest
CPU falls from ~25,600 ops/s over the first 100k to ~17,000 over the last, but stays flat at ~28,000-32,000
with the ``applied_entry.uuid`` index dropped. The likely reason: random (version 4) UUIDs land all over that
B-tree, so once it outgrows SQLite's default page cache (2,000 KiB; the ledger sets no ``cache_size``) inserts
touch cold pages and each batch commit writes more distinct pages to the WAL. Time-ordered (version 7) entry
UUIDs, a larger ``cache_size`` or a 16-byte blob key should keep it linear; the ledger's schema is not this
module's to change. In the full run of the same day, wall time grew 10.9x from 100k to 1M (CPU 13.1x) and the
drain 9.2x from 10k to 100k; peak RSS stayed flat (ingest 64 -> 65 MB at 10k -> 1M; drain terminal 76 -> 91 MB,
server 95 -> 105 MB at 10k -> 100k). The whole full run takes about 2.5 minutes.

``run(quick=True)`` uses 1,000 and 10,000 operations for both measurements (ingest batches of 500). It is a
smoke run: at 1,000 operations the drain is dominated by fixed costs (the first small batch, the pull of
documents), so its 10k/1k growth reads well under linear.
Run alone: ``python -m bench.bench_scaling [--quick]``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from bench.bench_sync import REPO, _cli, _env, _sale, seed_ledger
from cardpos.demo.runner import free_port

BATCH_ENTRIES = 5_000  # entries per pre-sealed ingest batch
CHILD_TIMEOUT_S = 600.0
LINEAR_LOW, LINEAR_HIGH = 0.7, 1.4
MEMORY_BOUND = 2.0  # peak RSS at the largest size over the smallest
WALL_START_MS = time.time_ns() // 1_000_000 - 3_600_000
"""Sealed sales start an hour before the run (50 ms apart): the ledger quarantines entries stamped before their
terminal's enrollment or a day ahead of its clock, so the bench journals at the time it runs."""


# ----------------------------------------------------------------------------------------------- memory probes
def _status_kb(field: str, pid: int | str = "self") -> int:
    """A ``VmXXX`` field of /proc/<pid>/status in KiB (0 where /proc is not available)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) another process has used so far, from /proc/<pid>/stat; 0 without /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reset_peak(pid: int | str = "self") -> None:
    """Reset the process's peak resident set (VmHWM) to its current size, so the peak covers what follows."""
    # Without /proc the peak covers the whole process life, which only overstates it.
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


# ----------------------------------------------------------------------------------------------------- set-up
def _serve(root: Path, ledger_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``cardpos ledger serve`` as bench_sync starts it, but with its stderr kept in ``root/serve.log`` so a
    server that does not come up says why (the ledger code changes under concurrent work)."""
    port = free_port()
    log_path = root / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cardpos", "ledger", "serve", "--ledger-dir",
                                 str(ledger_dir), "--port", str(port)], env=_env(root), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(url + "/v1/health", timeout=1).ok:
                return proc, url
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    proc.wait(30)
    tail = log_path.read_text(errors="replace").strip()[-1500:]
    raise RuntimeError(f"the ledger did not start (exit {proc.returncode}): {tail}")


def _setup(root: Path) -> dict[str, Any]:
    """An enrolled terminal and its ledger, both with nothing journaled yet: ``root/ledger`` and
    ``root/terminal`` are copied afresh for every measured size."""
    from cardkit.config import SyncSettings
    from terminal import documents
    from terminal.offline.store import TerminalStore
    from terminal.sync.service import SyncService, load_identity_key

    ledger_dir, members, terminal_id, code = seed_ledger(root)
    server, url = _serve(root, ledger_dir)
    try:
        data_dir = root / "terminal"
        _cli(root, "terminal", "enroll", "--ledger", url, "--code", code, "--data-dir", str(data_dir))
        enrollment = documents.require_enrollment(data_dir)
        with TerminalStore.open(data_dir, terminal_id) as store:
            SyncService(store, enrollment, load_identity_key(data_dir),
                        settings=SyncSettings(ledger_url=url, timeout_s=60)).sync_once()
            if store.journal.last_seq != 0:
                raise RuntimeError("the freshly enrolled terminal already has journal entries")
    finally:
        server.terminate()
        server.wait(30)
    setup = {"terminal_id": terminal_id, "members": members}
    (root / "setup.json").write_text(json.dumps(setup))
    return setup


def _seal_all(root: Path, setup: dict[str, Any], n_ops: int, per_batch: int) -> Path:
    """Write ``n_ops`` sales, chained from seq 1 and sealed in batches of ``per_batch``, to one file (each
    envelope preceded by its 4-byte length)."""
    from cardkit.envelope import load_hpke_public_key, seal_batch
    from cardkit.journal import GENESIS_HASH, JournalEntry, make_entry
    from terminal import documents
    from terminal.offline.store import time_ordered_uuid
    from terminal.sync.service import load_identity_key

    data_dir = root / "terminal"
    enrollment = documents.require_enrollment(data_dir)
    key = load_identity_key(data_dir)
    ledger_key = load_hpke_public_key(enrollment.hpke_suite, bytes.fromhex(enrollment.ledger_hpke_public_key))
    terminal_id = str(setup["terminal_id"])
    members = [tuple(m) for m in setup["members"]]
    rng = random.Random(11)
    path = root / "envelopes.bin"
    prev = GENESIS_HASH
    with path.open("wb") as out:
        for first in range(1, n_ops + 1, per_batch):
            batch: list[JournalEntry] = []
            for seq in range(first, min(first + per_batch, n_ops + 1)):
                entry = make_entry(terminal_id=terminal_id, seq=seq, prev_hash=prev, wall_ms=WALL_START_MS + seq * 50,
                                   mono_ns=seq * 50_000_000, cashier_id="c1", kind="sale",
                                   payload=_sale(rng, members),
                                   entry_uuid=time_ordered_uuid(WALL_START_MS + seq * 50, rng.randbytes))
                batch.append(entry)
                prev = entry.hash
            envelope = seal_batch(batch, terminal_id=terminal_id, batch_id=str(uuid.UUID(int=rng.getrandbits(128),
                                                                                          version=4)),
                                  terminal_key=key, ledger_public_key=ledger_key, suite=enrollment.hpke_suite)
            out.write(struct.pack(">I", len(envelope)))
            out.write(envelope)
    return path


def _tenths(marks: list[tuple[int, float]], n_ops: int) -> tuple[float, float]:
    """Rates (ops/s) over the first and the last tenth of a run from (ops done, seconds) marks taken at batch
    boundaries: whether the rate itself falls as the data grows, independent of any fixed cost."""
    points = [(0, 0.0), *marks]
    tenth = n_ops / 10
    first = next(p for p in points if p[0] >= tenth)
    last_start = max((p for p in points if p[0] <= n_ops - tenth), key=lambda p: p[0])
    end = points[-1]
    return first[0] / first[1], (end[0] - last_start[0]) / (end[1] - last_start[1])


def _envelopes(path: Path) -> Iterator[bytes]:
    with path.open("rb") as src:
        while head := src.read(4):
            yield src.read(struct.unpack(">I", head)[0])


# ----------------------------------------------------------------------------------------- measured children
def _child_ingest(root: Path, n_ops: int) -> dict[str, Any]:
    from ledger.home import open_ledger
    from ledger.ingest import ingest_batch

    work = Path(tempfile.mkdtemp(prefix="ingest-", dir=root))
    shutil.copytree(root / "ledger", work / "ledger")
    open_ledger(work / "ledger")
    base_kb = _status_kb("VmRSS")
    _reset_peak()
    applied = 0
    marks: list[tuple[int, float]] = []
    cpu_started = time.process_time()
    started = time.perf_counter()
    for envelope in _envelopes(root / "envelopes.bin"):
        if applied >= n_ops:
            break
        applied += ingest_batch(envelope, now_ms=time.time_ns() // 1_000_000).applied
        marks.append((applied, time.perf_counter() - started))
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    if applied != n_ops:
        raise RuntimeError(f"ingest applied {applied} of {n_ops}")
    peak_kb = _status_kb("VmHWM")
    shutil.rmtree(work, ignore_errors=True)
    first_rate, last_rate = _tenths(marks, n_ops)
    return {"seconds": seconds, "cpu_s": cpu, "base_kb": base_kb, "peak_kb": peak_kb, "first_rate": first_rate,
            "last_rate": last_rate}


def _child_drain(root: Path, n_ops: int) -> dict[str, Any]:
    from cardkit.config import SyncSettings
    from terminal import documents
    from terminal.offline.store import TerminalStore
    from terminal.sync.service import SyncService, SyncStatus, load_identity_key

    setup = json.loads((root / "setup.json").read_text())
    members = [tuple(m) for m in setup["members"]]
    work = Path(tempfile.mkdtemp(prefix="drain-", dir=root))
    shutil.copytree(root / "ledger", work / "ledger")
    shutil.copytree(root / "terminal", work / "terminal")
    server, url = _serve(work, work / "ledger")
    try:
        data_dir = work / "terminal"
        enrollment = documents.require_enrollment(data_dir)
        rng = random.Random(7)
        with TerminalStore.open(data_dir, setup["terminal_id"]) as store:
            store.db.execute_sql("PRAGMA synchronous=OFF")  # filling the queue is set-up, not measured
            for _ in range(n_ops):
                store.journal.append("sale", _sale(rng, members), "c1")
            store.db.execute_sql("PRAGMA synchronous=FULL")
            marks: list[tuple[int, float]] = []
            started = time.perf_counter()

            def on_status(status: SyncStatus) -> None:
                # Called after each acked batch, and once more after the pull; only the first mark per count is
                # kept so the last tenth measures pushing, not the pull.
                done = n_ops - status.queue_depth
                if not marks or marks[-1][0] != done:
                    marks.append((done, time.perf_counter() - started))

            service = SyncService(store, enrollment, load_identity_key(data_dir),
                                  settings=SyncSettings(ledger_url=url, timeout_s=120), on_status=on_status)
            base_kb = _status_kb("VmRSS")
            server_base_kb = _status_kb("VmRSS", server.pid)
            _reset_peak()
            _reset_peak(server.pid)
            marks.clear()
            cpu_started = time.process_time() + _cpu_s(server.pid)
            started = time.perf_counter()
            report = service.sync_once()
            seconds = time.perf_counter() - started
            cpu = time.process_time() + _cpu_s(server.pid) - cpu_started
            peak_kb = _status_kb("VmHWM")
            server_peak_kb = _status_kb("VmHWM", server.pid)
            if store.journal.queue_depth != 0 or report.acked_seq != n_ops:
                raise RuntimeError(f"drain incomplete: {report}")
    finally:
        server.terminate()
        server.wait(30)
    shutil.rmtree(work, ignore_errors=True)
    first_rate, last_rate = _tenths([m for m in marks if m[0] > 0], n_ops)
    return {"seconds": seconds, "cpu_s": cpu, "base_kb": base_kb, "peak_kb": peak_kb, "server_base_kb": server_base_kb,
            "server_peak_kb": server_peak_kb, "batches": report.batches, "first_rate": first_rate,
            "last_rate": last_rate}


def _measure(kind: str, root: Path, n_ops: int) -> dict[str, Any]:
    """Run one size in a fresh interpreter; its last output line is the JSON result."""
    done = subprocess.run([sys.executable, "-m", "bench.bench_scaling", "--child", kind, str(n_ops), str(root)],
                          cwd=REPO, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} at {n_ops} operations failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------------------------------------------ rows
def _row(figure: str, value: float, unit: str, baseline: float, baseline_label: str, ratio: float, target: str,
         passed: bool) -> dict[str, Any]:
    return {"figure": figure, "value": round(value, 3 if value < 100 else 1), "unit": unit,
            "baseline": round(baseline, 3 if baseline < 100 else 1), "baseline_label": baseline_label,
            "ratio": round(ratio, 3), "target": target, "passed": passed}


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else \
        f"{n // 1_000}k" if n % 1_000 == 0 else str(n)


def _rows(label: str, results: dict[int, dict[str, Any]], memory: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Rate per size, growth per step, peak memory at the largest size; ``memory`` lists (name, base key, peak key)."""
    sizes = sorted(results)
    small, large = sizes[0], sizes[-1]
    small_rate = small / results[small]["seconds"]
    rows = []
    for n in sizes:
        secs, cpu = results[n]["seconds"], results[n]["cpu_s"]
        rate = n / secs
        rows.append(_row(f"{label}, {n:,} ops in {secs:.2f} s (CPU {cpu:.2f} s)", rate, "ops/s", small_rate,
                         f"same at {small:,} ops", rate / small_rate, "reported", True))
    for a, b in itertools.pairwise(sizes):
        growth = results[b]["seconds"] / results[a]["seconds"]
        cpu_growth = results[b]["cpu_s"] / results[a]["cpu_s"] if results[a]["cpu_s"] else 0.0
        linear = b / a
        ratio = growth / linear
        figure = f"{label}: time({_size(b)})/time({_size(a)}) (CPU time: {cpu_growth:.1f}x)"
        rows.append(_row(figure, growth, "x", linear, f"linear ({linear:g}x the operations)", ratio,
                         f"{LINEAR_LOW}–{LINEAR_HIGH} (linear)", LINEAR_LOW <= ratio <= LINEAR_HIGH))
    first, last = results[large]["first_rate"], results[large]["last_rate"]
    rows.append(_row(f"{label}: rate over the last tenth of the {large:,}-op run", last, "ops/s", first,
                     "rate over its first tenth", last / first, "reported (< 1: slows as the data grows)", True))
    for name, base_key, peak_key in memory:
        peak_large = results[large][peak_key] / 1024
        peak_small = results[small][peak_key] / 1024
        base_large = results[large][base_key] / 1024
        ratio = peak_large / peak_small if peak_small else 0.0
        rows.append(_row(f"{label}: peak RSS of the {name} at {large:,} ops (at start {base_large:.0f} MB)",
                         peak_large, "MB", peak_small, f"same at {small:,} ops", ratio,
                         f"< {MEMORY_BOUND:g}x (bounded; work grows {large // small}x)", 0 < ratio < MEMORY_BOUND))
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    drain_sizes = [1_000, 10_000] if quick else [10_000, 100_000]
    ingest_sizes = [1_000, 10_000] if quick else [10_000, 100_000, 1_000_000]
    per_batch = min(BATCH_ENTRIES, ingest_sizes[0] // 2)  # every size a whole number of batches
    root = Path(tempfile.mkdtemp(prefix="cardpos-bench-scaling-"))
    try:
        setup = _setup(root)
        drain = {n: _measure("drain", root, n) for n in drain_sizes}
        _seal_all(root, setup, max(ingest_sizes), per_batch)
        ingest = {n: _measure("ingest", root, n) for n in ingest_sizes}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return (_rows("sync drain end-to-end (SQLite ledger process)", drain,
                  [("terminal", "base_kb", "peak_kb"), ("ledger server", "server_base_kb", "server_peak_kb")])
            + _rows(f"ledger ingest_batch alone (SQLite, {per_batch:,}/batch)", ingest,
                    [("ledger", "base_kb", "peak_kb")]))


def _main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        kind, n_ops, root = argv[1], int(argv[2]), Path(argv[3])
        child = _child_drain if kind == "drain" else _child_ingest
        print(json.dumps(child(root, n_ops)))
        return
    for row in run(quick="--quick" in argv):
        print(row)


if __name__ == "__main__":
    _main(sys.argv[1:])
