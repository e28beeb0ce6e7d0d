"""cProfile over ``ledger import`` (issue 17): where the import's time goes, on SQLite, for N members; or, with
``--memory``, the import's peak Python memory (tracemalloc) for N members, to see that it does not grow with N.

Not a benchmark (no baseline, not run by ``make bench``); the harness the import's speed work was profiled with.
The members file is imported by its path, as ``cardpos ledger import --members FILE`` does (streamed).
Run: PYTHONPATH=. .venv/bin/python -m bench.profile_import [--members 10000] [--second] [--top 40] [--memory]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.bench_import import MERCHANTS, STORES, WALL_MS, members_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--second", action="store_true", help="profile the no-op second run instead of the first")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--memory", action="store_true", help="peak Python memory instead of a profile")
    args = parser.parse_args()

    from ledger.home import init_ledger
    from ledger.importer.run import Report, import_program

    root = Path(tempfile.mkdtemp(prefix="cardpos-profile-import-"))
    path = root / "members.csv"
    path.write_bytes(members_csv(args.members)[0])
    home = init_ledger(root / "ledger", None, clock=lambda: WALL_MS)
    profile = cProfile.Profile()
    try:
        def run() -> Report:
            return import_program(merchants_csv=("merchants.csv", MERCHANTS.encode()),
                                  stores_csv=("stores.csv", STORES.encode()), members_csv=("members.csv", path))

        if args.second:
            run()
        started, cpu = time.perf_counter(), time.process_time()
        if args.memory:
            tracemalloc.start()
        else:
            profile.enable()
        report = run()
        profile.disable()
        peak = tracemalloc.get_traced_memory()[1] if args.memory else 0
        tracemalloc.stop()
        print(f"{args.members:,} members ({'second' if args.second else 'first'} run): "
              f"{time.perf_counter() - started:.2f} s wall, {time.process_time() - cpu:.2f} s CPU "
              + (f"(traced), peak Python memory {peak / 2**20:.1f} MiB" if args.memory else "(profiled)")
              + f", reconciled={report.reconciled}, file {path.stat().st_size / 2**20:.1f} MiB")
    finally:
        home.database.close()
        shutil.rmtree(root, ignore_errors=True)
    if not args.memory:
        pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
