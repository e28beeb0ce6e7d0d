"""The admins' console at a million: member search by phone over 1,000,000 members and the dashboard over
1,000,000 applied entries (SQLite, this machine), each against the bare indexed query in the same run.

- **search**: ``GET /members?q=PHONE`` through the console app in process (ASGI: the guard, the session lookup,
  ``ledger.admin.find_members``, the audit entry the result page writes, the template), p95 over random
  members' phones written the way people type them; baseline: the bare query on the indexed lookup column
  (``member_id`` by primary key while the ledger keeps phones in clear and unindexed; the keyed hash's index
  once ``ledger.pii`` is there). Target p95 < 100 ms.
- **dashboard**: ``GET /dashboard`` p95 with 1,000,000 entries spread over 60 days, 5 stores and 20 terminals
  (the roll-up is built first, and its one-off build time is a row of its own); baseline: one indexed range sum
  over the roll-up (today's sales). Target p95 < 300 ms. A row also shows today's sales computed the naive way
  (decoding today's entries), which is what the roll-up saves.
Generation is bulk inserts in one transaction per 50,000 rows (members, entries), a minute or so.
Run: .venv/bin/python -m bench --only bench_console
"""

from __future__ import annotations

import random
import re
import shutil
import statistics
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import cbor2

from bench import figure_row

MEMBERS = 1_000_000
ENTRIES = 1_000_000
STORES = 5
TERMINALS = 20
DAYS = 60
CHUNK = 50_000
PASSWORD = "bench-console-password"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _phone(i: int) -> str:
    return f"139{i:08d}"


def _bulk(table: str, rows: list[dict[str, Any]]) -> None:
    """One prepared INSERT run over every row (the query builder costs more than SQLite here)."""
    from ledger import store

    columns = list(rows[0])
    names = ", ".join(f'"{c}"' for c in columns)
    sql = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" for _ in columns)})'
    store.db.cursor().executemany(sql, [tuple(row[c] for c in columns) for row in rows])


def _insert_members(count: int, rng: random.Random) -> None:
    """Members in bulk: the clear columns, or (once ``ledger.pii`` exists) encrypted ones with keyed hashes."""
    from ledger import store

    fields = store.Member._meta.fields
    encrypted = "phone_hash" in fields
    pii: Any = None
    if encrypted:
        from ledger import pii as pii_module

        pii = pii_module
    surnames = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou"]
    given = ["Wei", "Fang", "Min", "Jing", "Lei", "Jun", "Yan", "Tao", "Ming", "Hua", "Xiu", "Ying"]
    for start in range(0, count, CHUNK):
        rows: list[dict[str, Any]] = []
        words: list[dict[str, Any]] = []
        for i in range(start, min(count, start + CHUNK)):
            member_id = f"m{i:07d}"
            name = f"{rng.choice(surnames)} {rng.choice(given)} {i:07d}"
            row = {"member_id": member_id, "store_id": f"store-{i % STORES + 1}", "opening_tier": "standard",
                   "currency": "CNY", "opening_balance": 10_000, "opening_points": 0, "created_ms": 0, "version": 1}
            if encrypted:
                details = pii.MemberDetails(name=name, phone=_phone(i))
                row.update(pii.active().member_columns(member_id, details))
                words += [{"word_hash": pii.active().lookup_hash("name", w), "member_id": member_id}
                          for w in pii.name_words(name)]
            else:
                row.update(name=name, phone=_phone(i), email="", notes="", prefs="{}")
            rows.append(row)
        with store.db.atomic():
            _bulk(store.Member._meta.table_name, rows)
            if words:
                _bulk(store.MemberNameWord._meta.table_name, words)


def _insert_entries(count: int, now_ms: int, rng: random.Random) -> None:
    from ledger import store

    with store.db.atomic():
        for t in range(TERMINALS):
            store.Terminal.insert(terminal_id=f"t{t:03d}", name=f"till {t}", store_id=f"store-{t % STORES + 1}",
                                  status="active", created_ms=0, last_seen_ms=now_ms - rng.randrange(0, 7200_000),
                                  enrolled_ms=0, last_seq=count // TERMINALS).execute()
    seqs = [0] * TERMINALS
    span = DAYS * 86_400_000
    for start in range(0, count, CHUNK):
        rows = []
        for i in range(start, min(count, start + CHUNK)):
            t = i % TERMINALS
            seqs[t] += 1
            wall = now_ms - span + (i * span) // count
            net = rng.randrange(500, 50_000)
            kind = "sale" if i % 10 else "topup"
            payload = ({"card": "c", "member": f"m{i % MEMBERS:07d}", "cur": "CNY", "gross": net, "net": net,
                        "sv": net, "pts_earn": net // 100, "pts_redeem": 0, "tender": "sv", "offline": False}
                       if kind == "sale" else
                       {"card": "c", "member": f"m{i % MEMBERS:07d}", "cur": "CNY", "amount": net, "bonus": 0,
                        "tender": "cash", "offline": False})
            rows.append({"terminal_id": f"t{t:03d}", "seq": seqs[t], "uuid": str(uuid.UUID(int=i + 1)),
                         "prev_hash": bytes(32), "hash": bytes(32), "wall_ms": wall, "mono_ns": i, "cashier_id": "c1",
                         "kind": kind, "payload": cbor2.dumps(payload), "member_id": f"m{i % MEMBERS:07d}",
                         "batch_id": f"b{i // 1000}", "applied_ms": wall})
        with store.db.atomic():
            _bulk(store.AppliedEntry._meta.table_name, rows)


def _client(ledger_dir: Path) -> Any:
    from starlette.testclient import TestClient

    from ledger.console import accounts
    from ledger.console.app import create_app

    app = create_app(ledger_dir, background=False)
    accounts.add_admin("bench", "owner", password=PASSWORD, actor="bench")
    client = TestClient(app)
    token = _CSRF.search(client.get("/signin").text)
    assert token, "no sign-in form"
    answer = client.post("/signin", data={"csrf": token.group(1), "name": "bench", "password": PASSWORD,
                                          "next": "/dashboard"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text[:200]
    return client


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _timed(fn: Any, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


_row = partial(figure_row, ratio_digits=2)  # ratios as this benchmark has always shown them


def run(quick: bool = False) -> list[dict[str, Any]]:
    from ledger import store
    from ledger.console import models, rollup
    from ledger.home import init_ledger

    members = 100_000 if quick else MEMBERS
    entries = 100_000 if quick else ENTRIES
    rng = random.Random(16)
    root = Path(tempfile.mkdtemp(prefix="bench-console-"))
    try:
        ledger = init_ledger(root / "ledger", issuer="bench")
        models.create_tables()
        store.db.execute_sql("PRAGMA synchronous = OFF")  # generating a throwaway database only
        now_ms = ledger.now_ms()
        t0 = time.perf_counter()
        _insert_members(members, rng)
        _insert_entries(entries, now_ms, rng)
        generated_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        rollup.catch_up(limit=10**9)
        rollup_s = time.perf_counter() - t0
        store.db.execute_sql("PRAGMA synchronous = FULL")  # measured as the ledger runs
        client = _client(root / "ledger")

        # -- search by phone ------------------------------------------------------------------------------
        picks = [rng.randrange(members) for _ in range(60 if quick else 200)]
        spaced = [f"{p[:3]} {p[3:7]} {p[7:]}" for p in (_phone(i) for i in picks)]
        found = client.get(f"/members?q={spaced[0]}")
        assert found.status_code == 200 and f"m{picks[0]:07d}" in found.text, "the search finds the member"
        queue = iter(spaced * 2)
        search_ms = _timed(lambda: client.get(f"/members?q={next(queue)}"), len(spaced))
        hashed = "phone_hash" in store.Member._meta.fields
        if hashed:
            from ledger import pii

            keys = [pii.active().lookup_hash("phone", _phone(i)) for i in picks]
            sql, label = 'SELECT "member_id" FROM "member" WHERE "phone_hash" = ?', "bare indexed phone_hash lookup"
        else:
            keys = [f"m{i:07d}" for i in picks]
            sql, label = 'SELECT "member_id" FROM "member" WHERE "member_id" = ?', "bare primary-key lookup"
        key_queue = iter(keys * 2)
        bare_ms = _timed(lambda: store.db.execute_sql(sql, (next(key_queue),)).fetchall(), len(keys))

        # -- dashboard ------------------------------------------------------------------------------------
        assert client.get("/dashboard").status_code == 200
        dash_ms = _timed(lambda: client.get("/dashboard"), 30 if quick else 100)
        today = (now_ms - now_ms % 86_400_000) // rollup.BUCKET_MS
        range_sql = ('SELECT SUM("amount") FROM "console_sales_bucket" WHERE "bucket" >= ? AND "kind" = ?')
        range_ms = _timed(lambda: store.db.execute_sql(range_sql, (today, "sale")).fetchall(), 200)

        def naive() -> int:
            rows = store.db.execute_sql('SELECT "payload" FROM "applied_entry" WHERE "wall_ms" >= ? AND "kind" = ?',
                                        (today * rollup.BUCKET_MS, "sale")).fetchall()
            return sum(int(cbor2.loads(bytes(r[0]))["net"]) for r in rows)

        naive_ms = _timed(naive, 5)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n_m, n_e = f"{members:,}", f"{entries:,}"
    search_p95, dash_p95 = _p(search_ms, 0.95), _p(dash_ms, 0.95)
    return [
        _row(f"member search by phone, p95, {n_m} members (console page)", search_p95, "ms",
             _p(bare_ms, 0.95), f"{label}, p95", "p95 < 100 ms", search_p95 < 100),
        _row(f"member search by phone, p50, {n_m} members", statistics.median(search_ms), "ms",
             statistics.median(bare_ms), f"{label}, p50", "(info)", True),
        _row(f"dashboard, p95, {n_e} entries", dash_p95, "ms", _p(range_ms, 0.95),
             "bare indexed range sum over the roll-up, p95", "p95 < 300 ms", dash_p95 < 300),
        _row("today's sales the naive way (decode today's entries), p50", statistics.median(naive_ms), "ms",
             statistics.median(range_ms), "the roll-up's range sum, p50", "(info: what the roll-up saves)", True),
        _row(f"roll-up built from {n_e} entries (once)", rollup_s, "s", generated_s, "generating the data",
             "(info)", True),
    ]


if __name__ == "__main__":
    for result in run(quick=True):
        print(result)
