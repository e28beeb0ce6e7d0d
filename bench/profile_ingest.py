"""Profile the ledger's batch ingest as ``ledger serve`` runs it (a helper for finding hot spots, not a benchmark
with a target): ``ingest_batch`` over a till's stream of sealed batches, with the semantic checks, the funding
lines, the anomaly detectors and the authorization observer (settling holds) all on.

The load (``--load day``) is ``bench_semantics``' (90% sales, a third from stored value, 6% top-ups, 4% partial
refunds of an earlier sale; 500 members, one terminal, batches of 2,000 entries), or ``bench_sync``'s sales
(``--load drain``); either with a share of stored-value sales that went through online authorization (they carry
the ``auth`` field, so the observer settles their holds).

Usage::

    python -m bench.profile_ingest [--ops N] [--load day|drain] [--per-batch N] [--top N]
                                   [--sort cumulative|tottime] [--no-profile] [--out FILE]

It prints the ingest rate (wall and CPU) and, unless ``--no-profile``, the top functions of a cProfile of the
ingests alone (set-up and sealing are outside the profile). ``--out`` keeps the raw profile for ``pstats``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

AUTHORIZED_SHARE = 0.3
"""Share of stored-value sales that were authorized online before they were journaled (issue 14)."""


def _authorized(ops: list[tuple[str, dict[str, Any], str]], rng: random.Random) -> list[tuple[str, dict[str, Any],
                                                                                                str]]:
    """Mark a share of the stored-value sales as authorized online (the ``auth`` field the terminal records)."""
    try:
        from cardkit.authorization import AUTH_FIELD
    except ImportError:  # before issue 14
        return ops
    out = []
    for kind, payload, entry_uuid in ops:
        if kind == "sale" and payload.get("sv") and rng.random() < AUTHORIZED_SHARE:
            payload = {**payload, AUTH_FIELD: f"{rng.getrandbits(64):016x}"}
        out.append((kind, payload, entry_uuid))
    return out


def _drain_sales(rng: random.Random, members: list[tuple[str, str]], n_ops: int) -> list[tuple[str, dict[str, Any],
                                                                                                 str]]:
    """``bench_sync``'s load: sales only, a third from stored value, with time-ordered (v7) uuids as a terminal's
    journal makes them (random ones would spread every batch over the uuid indexes)."""
    from bench.bench_sync import _sale
    from terminal.offline.store import time_ordered_uuid

    start_ms = time.time_ns() // 1_000_000 - 3_600_000
    return [("sale", _sale(rng, members), time_ordered_uuid(start_ms + i * 20, rng.randbytes)) for i in range(n_ops)]


def prepare(root: Path, n_ops: int, load: str = "day", per_batch: int = 2_000) -> tuple[Path, list[bytes]]:
    """A ledger with members, cards and one enrolled terminal, and the sealed batches of ``n_ops`` entries:
    ``load`` "day" is ``bench_semantics``' till day, "drain" ``bench_sync``'s sales."""
    from bench import bench_semantics
    from bench.bench_semantics import _ledger, _payloads, _seal

    ledger_dir, members, terminal_id, key, hpke_public = _ledger(root)
    rng = random.Random(13)
    ops = _payloads(rng, members, n_ops) if load == "day" else _drain_sales(rng, members, n_ops)
    bench_semantics.PER_BATCH = per_batch
    return ledger_dir, _seal(terminal_id, key, hpke_public, _authorized(ops, rng))


def ingest_all(ledger_dir: Path, envelopes: list[bytes], profiler: cProfile.Profile | None) -> tuple[float, float,
                                                                                                      int]:
    """Ingest every envelope with the observers ``ledger serve`` installs: (wall s, CPU s, entries applied)."""
    from ledger import alerts
    from ledger.home import open_ledger
    from ledger.ingest import ingest_batch

    ledger = open_ledger(ledger_dir)
    try:
        from ledger import authorize
    except ImportError:  # a checkout from before issue 14 (profiled as the baseline of a regression)
        pass
    else:
        authorize.open_holds()
        authorize.install()
    alerts.install(ledger_dir, start_worker=False)
    logging.disable(logging.WARNING)  # the detectors log every alert they raise on this synthetic load
    applied = 0
    wall = cpu = 0.0
    try:
        for envelope in envelopes:
            started, started_cpu = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            applied += ingest_batch(envelope, now_ms=time.time_ns() // 1_000_000, ledger=ledger).applied
            if profiler is not None:
                profiler.disable()
            wall += time.perf_counter() - started
            cpu += time.process_time() - started_cpu
    finally:
        logging.disable(logging.NOTSET)
        alerts.uninstall()
        ledger.database.close()
    return wall, cpu, applied


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--load", default="day", choices=["day", "drain"])
    parser.add_argument("--per-batch", type=int, default=2_000)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="cumulative", choices=["cumulative", "tottime"])
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="cardpos-profile-ingest-"))
    try:
        ledger_dir, envelopes = prepare(root, args.ops, args.load, args.per_batch)
        # CPU time, not wall: the machine is shared, and a profile in wall time charges others' load to whatever
        # function happened to be running.
        profiler = None if args.no_profile else cProfile.Profile(time.process_time)
        wall, cpu, applied = ingest_all(ledger_dir, envelopes, profiler)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{applied:,} applied of {args.ops:,} in {len(envelopes)} batches: {applied / wall:,.0f} ops/s wall, "
          f"{applied / cpu:,.0f} ops/CPU-s{' (under cProfile)' if profiler else ''}")
    if profiler is not None:
        if args.out:
            profiler.dump_stats(str(args.out))
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(args.sort).print_stats(args.top)
        print(text.getvalue())


if __name__ == "__main__":
    main()
