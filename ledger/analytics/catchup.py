"""Folding applied entries into ``analytics_member_day``, incrementally.

Like the console's roll-up (``ledger.console.rollup``): entries past the cursor are read and decoded outside any
transaction, in chunks, and written in a short transaction that first checks the cursor has not moved (another
process got there first: the chunk is dropped and read again). On PostgreSQL an entry is folded only once it is
``SETTLE_MS`` old, since ids are handed out before commit. ``rebuild`` starts over.
"""

from __future__ import annotations

import time
from collections import defaultdict

import cbor2

from ledger import store
from ledger.analytics import calendar, facts
from ledger.analytics.models import CURSOR, NO_MEMBER, AnalyticsCursor, MemberDay

CHUNK = 20_000
SETTLE_MS = 5000
UNKNOWN_STORE = "unknown"

Key = tuple[str, int, str, str]  # member, day, store, currency


def _read(after_id: int, limit: int, settled_ms: int | None
          ) -> tuple[int, dict[Key, list[int]], dict[str, int], int]:
    """(last id read, sums by key, join month by member, entries read) for the entries after ``after_id``."""
    p = store.db.param
    entry, terminal = store.AppliedEntry._meta.table_name, store.Terminal._meta.table_name
    member = store.Member._meta.table_name
    settled, settled_args = (f' AND "applied_ms" <= {p}', [settled_ms]) if settled_ms is not None else ("", [])
    last = store.db.execute_sql(
        f'SELECT MAX("id"), COUNT(*) FROM (SELECT "id" FROM "{entry}" WHERE "id" > {p}{settled} ORDER BY "id" '
        f'LIMIT {p}) s', (after_id, *settled_args, limit)).fetchone()
    if last is None or last[0] is None:
        return after_id, {}, {}, 0
    last_id, count = int(last[0]), int(last[1])
    kinds = ", ".join(p for _ in facts.SALES_KINDS)
    rows = store.db.execute_sql(
        f'SELECT e."wall_ms", e."kind", e."payload", COALESCE(t."store_id", {p}), COALESCE(m."member_id", {p}), '
        f'm."created_ms" FROM "{entry}" e '
        f'LEFT JOIN "{terminal}" t ON t."terminal_id" = e."terminal_id" '
        f'LEFT JOIN "{member}" m ON m."member_id" = e."member_id" '
        f'WHERE e."id" > {p} AND e."id" <= {p} AND e."kind" IN ({kinds})',
        (UNKNOWN_STORE, NO_MEMBER, after_id, last_id, *facts.SALES_KINDS)).fetchall()
    sums: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    joined: dict[str, int] = {}
    loads = cbor2.loads
    for wall_ms, kind, payload, store_id, member_id, created_ms in rows:
        data = loads(bytes(payload))
        if not isinstance(data, dict):
            continue
        fact = facts.entry_fact(str(kind), data)
        currency = data.get("cur") if isinstance(data.get("cur"), str) else ""
        key = (str(member_id), calendar.day_of_ms(int(wall_ms)), str(store_id), str(currency)[:3])
        row = sums[key]
        row[0] += fact.spend
        row[1] += fact.visits
        row[2] += 1
        if member_id and member_id not in joined:
            joined[str(member_id)] = calendar.month_of_day(calendar.day_of_ms(int(created_ms)))
    return last_id, sums, joined, count


def _write(sums: dict[Key, list[int]], joined: dict[str, int]) -> None:
    if not sums:
        return
    p = store.db.param
    table = MemberDay._meta.table_name
    columns = ("member_id", "day", "store_id", "currency", "month", "join_month", "spend", "visits", "entries")
    added = ", ".join(f'"{c}" = "{table}"."{c}" + excluded."{c}"' for c in columns[6:])
    names = ", ".join(f'"{c}"' for c in columns)
    sql = (f'INSERT INTO "{table}" ({names}) VALUES ({", ".join(p for _ in columns)}) '
           f'ON CONFLICT ("member_id", "day", "store_id", "currency") DO UPDATE SET {added}')
    months: dict[int, int] = {}
    rows = []
    for (member_id, day, store_id, currency), (spend, visits, entries) in sorted(sums.items()):
        month = months.get(day)
        if month is None:
            month = months[day] = calendar.month_of_day(day)
        rows.append((member_id, day, store_id, currency, month, joined.get(member_id, -1), spend, visits, entries))
    store.db.cursor().executemany(sql, rows)


def catch_up(limit: int = 10**12, *, now_ms: int | None = None) -> int:
    """Fold the entries applied since the last call (at most ``limit``); returns how many were read."""
    settled_ms = None
    if store.is_postgres():
        settled_ms = (now_ms if now_ms is not None else time.time_ns() // 1_000_000) - SETTLE_MS
    done = 0
    while done < limit:
        start = int(AnalyticsCursor.get_by_id(CURSOR).last_id)
        last_id, sums, joined, count = _read(start, min(CHUNK, limit - done), settled_ms)
        if count == 0:
            break
        with store.atomic_write():
            moved = AnalyticsCursor.update(last_id=last_id).where(
                (AnalyticsCursor.name == CURSOR) & (AnalyticsCursor.last_id == start))
            if moved.execute() != 1:
                continue  # another process folded these entries meanwhile
            _write(sums, joined)
        done += count
    return done


def rebuild() -> int:
    """Forget the table and fold every entry again."""
    with store.atomic_write():
        MemberDay.delete().execute()
        AnalyticsCursor.update(last_id=0).where(AnalyticsCursor.name == CURSOR).execute()
    return catch_up()
