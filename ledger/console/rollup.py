"""The dashboard's roll-up: applied entries summed per store, quarter hour, kind and currency
(``console_sales_bucket``), so today's and this week's figures are a few hundred rows to add up however many
entries the ledger holds.

Derived, like the member projection: ``catch_up`` folds entries past the ``console_cursor`` row in chunks, reading
and decoding outside any transaction and writing in a short one that first checks the cursor has not moved
(another worker got there first: the chunk is dropped and read again). Quarter hours, so every time zone's
midnight (including the half- and quarter-hour ones) falls on a bucket boundary. ``rebuild`` starts over.

Per kind, ``amount`` is: sale net, top-up paid, refund amount, void's voided sale net (``spend``), membership fee;
``points_earned`` is sale ``pts_earn`` (refund/void: ``pts_rev``, taken back), ``points_redeemed`` sale
``pts_redeem``, redeem ``pts`` (refund/void: ``pts_back``, given back).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import cbor2

from ledger import store
from ledger.console.models import Cursor, SalesBucket

BUCKET_MS = 15 * 60 * 1000
CHUNK = 5000
MONEY_KINDS = ("sale", "topup", "refund", "void", "redeem", "membership_fee")
SETTLE_MS = 5000
LEDGER_STORE = "*"  # the ledger's own chain (tier changes, points expiry) has this store id


def _int(payload: dict[str, Any], key: str) -> int:
    value = payload.get(key, 0)
    return value if type(value) is int else 0


def entry_figures(kind: str, payload: dict[str, Any]) -> tuple[int, int, int]:
    """(amount, points earned, points redeemed) of one entry, as the roll-up sums them (pure)."""
    if kind == "sale":
        return _int(payload, "net"), _int(payload, "pts_earn"), _int(payload, "pts_redeem")
    if kind == "topup":
        return _int(payload, "amount"), 0, 0
    if kind == "refund":
        return _int(payload, "amount"), _int(payload, "pts_rev"), _int(payload, "pts_back")
    if kind == "void":
        return _int(payload, "spend"), _int(payload, "pts_rev"), _int(payload, "pts_back")
    if kind == "redeem":
        return 0, 0, _int(payload, "pts")
    if kind == "membership_fee":
        return _int(payload, "amount"), 0, 0
    return 0, 0, 0


def _read(after_id: int, limit: int, settled_ms: int | None
          ) -> tuple[int, dict[tuple[int, str, str, str], list[int]], int]:
    """Sums of the entries after ``after_id`` (at most ``limit``, applied by ``settled_ms`` when given): (last id
    read, sums by key, entries read)."""
    p = store.db.param
    entry, terminal = store.AppliedEntry._meta.table_name, store.Terminal._meta.table_name
    kinds = ", ".join(p for _ in MONEY_KINDS)
    settled, settled_args = (f' AND "applied_ms" <= {p}', [settled_ms]) if settled_ms is not None else ("", [])
    # Ids first (an index range), then only the money entries' rows: the rest is skipped, not decoded.
    last = store.db.execute_sql(
        f'SELECT MAX("id"), COUNT(*) FROM (SELECT "id" FROM "{entry}" WHERE "id" > {p}{settled} ORDER BY "id" '
        f'LIMIT {p}) s', (after_id, *settled_args, limit)).fetchone()
    if last is None or last[0] is None:
        return after_id, {}, 0
    last_id, count = int(last[0]), int(last[1])
    rows = store.db.execute_sql(
        f'SELECT e."wall_ms", e."kind", e."payload", COALESCE(t."store_id", {p}) FROM "{entry}" e '
        f'LEFT JOIN "{terminal}" t ON t."terminal_id" = e."terminal_id" '
        f'WHERE e."id" > {p} AND e."id" <= {p} AND e."kind" IN ({kinds})',
        ("unknown", after_id, last_id, *MONEY_KINDS)).fetchall()
    sums: dict[tuple[int, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    loads = cbor2.loads
    for wall_ms, kind, payload, store_id in rows:
        data = loads(bytes(payload))
        if not isinstance(data, dict):
            continue
        currency = data.get("cur") if isinstance(data.get("cur"), str) else ""
        amount, earned, redeemed = entry_figures(str(kind), data)
        row = sums[(int(wall_ms) // BUCKET_MS, str(store_id), str(kind), str(currency)[:3])]
        row[0] += 1
        row[1] += amount
        row[2] += earned
        row[3] += redeemed
    return last_id, sums, count


def _write(sums: dict[tuple[int, str, str, str], list[int]]) -> None:
    if not sums:
        return
    p = store.db.param
    table = SalesBucket._meta.table_name
    columns = ("bucket", "store_id", "kind", "currency", "count", "amount", "points_earned", "points_redeemed")
    added = ", ".join(f'"{c}" = "{table}"."{c}" + excluded."{c}"' for c in columns[4:])
    names = ", ".join(f'"{c}"' for c in columns)
    sql = (f'INSERT INTO "{table}" ({names}) '
           f'VALUES ({", ".join(p for _ in columns)}) '
           f'ON CONFLICT ("bucket", "store_id", "kind", "currency") DO UPDATE SET {added}')
    store.db.cursor().executemany(sql, [(*key, *values) for key, values in sorted(sums.items())])


def catch_up(limit: int = 1_000_000, *, now_ms: int | None = None) -> int:
    """Fold entries applied since the last call (at most ``limit``); returns how many were read.

    On PostgreSQL, ids are handed out before commit, so a transaction can commit an id lower than one already
    visible; entries are folded only once ``SETTLE_MS`` old there, when every transaction that took a lower id has
    long ended. SQLite has one writer at a time: ids become visible in order."""
    settled_ms = None
    if store.is_postgres():
        settled_ms = (now_ms if now_ms is not None else time.time_ns() // 1_000_000) - SETTLE_MS
    done = 0
    while done < limit:
        start = int(Cursor.get_by_id("sales").last_id)
        last_id, sums, count = _read(start, min(CHUNK, limit - done), settled_ms)
        if count == 0:
            break
        with store.atomic_write():
            moved = Cursor.update(last_id=last_id).where((Cursor.name == "sales") & (Cursor.last_id == start))
            if moved.execute() != 1:
                continue  # another worker folded these entries meanwhile
            _write(sums)
        done += count
    return done


def rebuild() -> int:
    """Forget the roll-up and fold every entry again."""
    with store.atomic_write():
        SalesBucket.delete().execute()
        Cursor.update(last_id=0).where(Cursor.name == "sales").execute()
    return catch_up(limit=10**12)
