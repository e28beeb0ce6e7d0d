"""Analytics at a million (issue 18): the members report over 1,000,000 members and 10,000,000 sale entries on
SQLite, as a ratio to the bare aggregate query in the same run; the other reports and the incremental fold beside.

- **generation**: members (bulk rows, personal columns left empty: the reports never read them) and the derived
  ``analytics_member_day`` rows for 10,000,000 sales, one sale per member-day (1 to 19 visits per member over
  two years, spend skewed by member so the top quarter matters), inserted in key order, 200,000 rows a
  transaction. The fold from applied entries is measured apart (**catch-up**): 200,000 real applied entries
  (CBOR payloads) folded by ``catchup.catch_up``, as entries per second.
- **members report**: ``reports.members_report`` over the last 365 days, rendered (``to_json``: every member's
  RFM inputs, spend per tier, visit frequency, top-quarter share, lifetime value to date and projected over 12
  months with its retention calibrated a year back); baseline: the bare ``GROUP BY member_id`` sum of spend and
  visits over the same days (``queries.bare_member_aggregate``). Beside it, the same members pass without the
  projection (no calibration columns, no valuation), so the projection's own cost is a ratio in the same run.
- **ltv report**: ``lifetime.lifetime_report`` (projected lifetime value per tier, segment, home store and
  merchant) against the same baseline; and its ``--per-member`` rows streamed (every member's figures).
- These four take turns for two rounds (best of each, wall and CPU time: the CPU ratios hold better when other
  jobs share the machine).
- segments, cohorts and sales reports: one run each, against the same baseline.
Run: .venv/bin/python -m bench --only bench_analytics (add --quick for 100,000 members / 1,000,000 sales).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import cbor2

from bench import figure_row

MEMBERS = 1_000_000
STORES = 5
CHUNK = 200_000
DAYS = 730
CATCHUP_ENTRIES = 200_000
DAY_MS = 86_400_000


def _visits(i: int) -> int:
    return 1 + (i * 7919) % 19  # 1..19, about 10 on average


def _insert_members(count: int, end_day: int) -> None:
    from ledger import store

    table = store.Member._meta.table_name
    columns = ("member_id", "name_enc", "phone_enc", "email_enc", "notes_enc", "prefs_enc", "store_id",
               "opening_tier", "currency", "opening_balance", "opening_points", "created_ms", "version")
    sql = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({", ".join("?" for _ in columns)})'
    tiers = ("standard", "standard", "standard", "preferred", "gold", "platinum")
    for start in range(0, count, CHUNK):
        rows = [(f"m{i:07d}", b"", b"", b"", b"", b"", f"store-{i % STORES + 1}", tiers[i % len(tiers)], "CNY", 0, 0,
                 (end_day - DAYS - 120 + (i * 13) % (DAYS + 100)) * DAY_MS, 1)
                for i in range(start, min(count, start + CHUNK))]
        with store.db.atomic():
            store.db.cursor().executemany(sql, rows)


def _insert_member_days(count: int, end_day: int) -> int:
    """One sale per member-day; returns the number of sales (rows)."""
    from ledger import store
    from ledger.analytics import calendar
    from ledger.analytics.models import MemberDay

    table = MemberDay._meta.table_name
    columns = ("member_id", "day", "store_id", "currency", "month", "join_month", "spend", "visits", "entries")
    sql = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({", ".join("?" for _ in columns)})'
    months = {d: calendar.month_of_day(d) for d in range(end_day - DAYS - 130, end_day + 1)}
    rows: list[tuple[Any, ...]] = []
    total = 0
    for i in range(count):
        join_day = end_day - DAYS - 120 + (i * 13) % (DAYS + 100)
        first = max(join_day, end_day - DAYS + 1)
        span = end_day - first + 1
        weight = 1 + (i % 7) * (i % 7)  # a few members spend far more
        days = sorted({first + (i * 31 + k * 37) % span for k in range(_visits(i))})
        member_id = f"m{i:07d}"
        join_month = months[join_day]
        for k, day in enumerate(days):
            rows.append((member_id, day, f"store-{(i + k) % STORES + 1}", "CNY", months[day], join_month,
                         weight * (1000 + (i * 97 + k * 131) % 20_000), 1, 1))
        if len(rows) >= CHUNK:
            with store.db.atomic():
                store.db.cursor().executemany(sql, rows)
            total += len(rows)
            rows = []
    if rows:
        with store.db.atomic():
            store.db.cursor().executemany(sql, rows)
        total += len(rows)
    return total


def _insert_entries(count: int, members: int, end_day: int) -> None:
    """Real applied entries (CBOR payloads) past the fold's cursor, for the catch-up figure."""
    from ledger import store

    with store.db.atomic():
        for t in range(STORES):
            store.Terminal.insert(terminal_id=f"t{t}", name=f"till {t}", store_id=f"store-{t + 1}", status="active",
                                  created_ms=0, last_seq=count).on_conflict_ignore().execute()
    columns = ("terminal_id", "seq", "uuid", "prev_hash", "hash", "wall_ms", "mono_ns", "cashier_id", "kind",
               "payload", "member_id", "batch_id", "applied_ms")
    sql = (f'INSERT INTO "{store.AppliedEntry._meta.table_name}" ({", ".join(columns)}) '
           f'VALUES ({", ".join("?" for _ in columns)})')
    rows = []
    for i in range(count):
        member = f"m{(i * 7) % members:07d}"
        net = 500 + (i * 37) % 30_000
        payload = {"card": "c", "member": member, "cur": "CNY", "gross": net, "net": net, "sv": 0, "pts_earn": 0,
                   "pts_redeem": 0, "tender": "cash", "offline": False}
        wall = (end_day - (i % 30)) * DAY_MS + 3_600_000
        rows.append((f"t{i % STORES}", 10**9 + i, str(uuid.UUID(int=i + 1)), bytes(32), bytes(32), wall, i, "c1",
                     "sale", cbor2.dumps(payload), member, f"b{i // 1000}", wall))
    with store.db.atomic():
        store.db.cursor().executemany(sql, rows)


def _best(fn: Any, rounds: int = 2) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _interleaved(runs: dict[str, Any], rounds: int = 2) -> dict[str, tuple[float, float]]:
    """Best wall and best CPU seconds of each run, the runs taking turns round by round."""
    best = {name: (float("inf"), float("inf")) for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


_row = partial(figure_row, ratio_digits=2)  # ratios as this benchmark has always shown them


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(quick: bool = False) -> list[dict[str, Any]]:
    from ledger import store
    from ledger.analytics import calendar, catchup, lifetime, models, population, queries, reports
    from ledger.analytics.scope import Period, Scope
    from ledger.home import init_ledger

    members = 100_000 if quick else MEMBERS
    root = Path(tempfile.mkdtemp(prefix="bench-analytics-"))
    try:
        ledger = init_ledger(root / "ledger", issuer="bench")
        models.create_tables()
        end_day = calendar.day_of_ms(ledger.now_ms())
        store.db.execute_sql("PRAGMA synchronous = OFF")  # generating a throwaway database only
        started = time.perf_counter()
        _insert_members(members, end_day)
        sales = _insert_member_days(members, end_day)
        generated_s = time.perf_counter() - started
        store.db.execute_sql("PRAGMA synchronous = FULL")
        store.db.execute_sql("ANALYZE")
        last_id = int(store.db.execute_sql('SELECT COALESCE(MAX("id"), 0) FROM "applied_entry"').fetchone()[0])
        models.AnalyticsCursor.update(last_id=last_id).execute()
        year = Period.ending(end_day, 365)
        scope = Scope()
        # interleaved rounds (bare, without, with, ltv, bare, ...): on a shared machine a load swing then hits
        # every figure alike; CPU time beside wall time, since SQLite runs in this process
        timed = _interleaved({
            "bare": lambda: queries.bare_member_aggregate(year),
            "without": lambda: population.gather(queries.member_figures(year, scope), year.first_day,
                                                 year.last_day)["CNY"].top_quarter(),
            "members": lambda: reports.members_report(year, scope).to_json(),
            "ltv": lambda: lifetime.lifetime_report(end_day, scope).to_json()})
        bare_s, without_s, members_s, ltv_s = (timed[k][0] for k in ("bare", "without", "members", "ltv"))
        cpu = {k: v[1] for k, v in timed.items()}
        report = reports.members_report(year, scope).to_json()["currencies"][0]
        assert report["members"] == members, report["members"]
        ltv = lifetime.lifetime_report(end_day, scope).to_json()["currencies"][0]
        assert ltv["members"] == members and ltv["future_total"] > 0, ltv
        rss_before = _peak_rss_mib()
        per_member_s = _best(lambda: sum(1 for _ in lifetime.lifetime_report(end_day, scope, per_member=True)
                                         .rows()[1]), rounds=1)
        rss_after = _peak_rss_mib()
        segments_s = _best(lambda: reports.segments_report(year, scope), rounds=1)
        cohorts_s = _best(lambda: reports.cohorts_report(year, scope), rounds=1)
        sales_s = _best(lambda: reports.sales_report(Period.ending(end_day, 30), scope), rounds=1)
        label = "bare GROUP BY member_id sum over the same days"
        scale = f"{members:,} members, {sales:,} sales"
        rows = [
            _row(f"generate {scale}", generated_s, "s", generated_s, "itself", "informative", True),
            _row(f"members report, {scale}, 365 days", members_s, "s", bare_s, label, "ratio <= 4", members_s <=
                 4 * bare_s),
            _row("members report without the projection (same pass, no calibration or valuation)", without_s, "s",
                 bare_s, label, "informative", True),
            _row("members report with the projection, against the same report without it", members_s, "s",
                 without_s, "members report without the projection, same run", "informative", True),
            _row(f"ltv report (projected 12 months; per tier, segment, store, merchant), {scale}", ltv_s, "s",
                 bare_s, label, "ratio <= 4", ltv_s <= 4 * bare_s),
            _row("ltv report, one row per member (rows streamed, as the CLI's CSV)", per_member_s, "s", bare_s,
                 label, "informative", True),
            _row("CPU time: members report with the projection", cpu["members"], "s CPU", cpu["bare"],
                 "bare aggregate, CPU time, same rounds", "informative", True),
            _row("CPU time: members report without the projection", cpu["without"], "s CPU", cpu["bare"],
                 "bare aggregate, CPU time, same rounds", "informative", True),
            _row("CPU time: the projection's cost in the members report", cpu["members"], "s CPU", cpu["without"],
                 "members report without the projection, CPU time", "informative", True),
            _row("CPU time: ltv report", cpu["ltv"], "s CPU", cpu["bare"], "bare aggregate, CPU time, same rounds",
                 "informative", True),
            _row("segments report (RFM, 365 days)", segments_s, "s", bare_s, label, "ratio <= 4",
                 segments_s <= 4 * bare_s),
            _row("cohorts report (12 months)", cohorts_s, "s", bare_s, label, "informative", True),
            _row("sales report (30 days, per day and store)", sales_s, "s", bare_s, label, "informative", True),
        ]
        entries = 20_000 if quick else CATCHUP_ENTRIES
        _insert_entries(entries, members, end_day)
        started = time.perf_counter()
        folded = catchup.catch_up()
        fold_s = time.perf_counter() - started
        assert folded == entries, folded
        rows.append(_row(f"catch-up: {entries:,} applied entries folded", entries / fold_s, "entries/s",
                         entries / fold_s, "itself", "informative", True))
        rows[0]["note"] = f"top quarter made {report['top_quarter']['share_percent']} % of sales"
        retention = ", ".join(f"{r['segment']} {r['used_percent']} %" for r in ltv["retention"])
        average, to_date = ltv["projected_average"], ltv["to_date_total"] // members
        rows[1]["note"] = (f"projected LTV {average // 100}.{average % 100:02d} per member (to date "
                           f"{to_date // 100}.{to_date % 100:02d}); retention {retention}; peak RSS "
                           f"{rss_before:.0f} MiB after the reports, {rss_after:.0f} MiB after the per-member rows")
        ledger.database.close()
        return rows
    finally:
        shutil.rmtree(root, ignore_errors=True)
