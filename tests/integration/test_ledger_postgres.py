"""Exactly-once ingest on a real PostgreSQL with two ledger worker processes sharing it.

Two terminals push overlapping and repeated batches from many threads at once (every batch three times, in
shuffled order, retrying gaps and busy answers like a real client). Afterwards every entry is stored once,
every member's balance and points equal the sums of the entries, and ``ledger verify`` passes.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.ledger import LedgerServer, LedgerTerminal, make_ledger, sale, topup

pytestmark = pytest.mark.postgres

ENTRIES_PER_TERMINAL = 60
BATCH = 10


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.fixture
def pg_ledger(postgres_url: str, tmp_path: Path):
    server = make_ledger(tmp_path / "pg-ledger", db_url=postgres_url, workers=2).start()
    try:
        yield server
    finally:
        assert server.stop() == 0


def test_two_workers_apply_each_entry_exactly_once(pg_ledger: LedgerServer, postgres_url: str) -> None:
    import psycopg2

    server = pg_ledger
    assert server.first_line == f"cardpos-ledger: listening {server.url}"
    assert server.proc is not None
    members = [server.admin("member", "add", f"P{i}", "--balance", "10.00").stdout.strip() for i in range(4)]
    tills = [LedgerTerminal.enroll(server.url, server.admin_json("terminal", "add", f"till {n}")["code"])
             for n in range(2)]
    rng = random.Random(7)
    expected = {m: [1_000, 0] for m in members}
    for till in tills:
        for _ in range(ENTRIES_PER_TERMINAL):
            who = rng.choice(members)
            if rng.random() < 0.6:
                amount = rng.randrange(100, 5_000)
                till.append("topup", topup(who, amount))
                expected[who][0] += amount
            else:
                spend, pts = rng.randrange(1, 300), rng.randrange(0, 20)
                till.append("sale", sale(who, spend, pts_earn=pts))
                expected[who][0] -= spend
                expected[who][1] += pts
    # Each batch (some overlapping their neighbours) three times, shuffled, from many threads at once.
    jobs = [(till, first, min(first + BATCH + rng.randrange(0, 4), ENTRIES_PER_TERMINAL))
            for till in tills for first in range(1, ENTRIES_PER_TERMINAL + 1, BATCH)] * 3
    rng.shuffle(jobs)
    envelopes = [(till, till.seal(first, last)) for till, first, last in jobs]
    applied = {till.terminal_id: 0 for till in tills}
    failures: list[str] = []
    lock = threading.Lock()

    def push(till: LedgerTerminal, envelope: bytes) -> None:
        for _ in range(400):  # bounded: a gap clears once the earlier batch lands; busy clears in a moment
            resp = till.post(envelope)
            if resp.status_code == 200:
                with lock:
                    applied[till.terminal_id] += resp.json()["applied"]
                return
            if resp.status_code not in (409, 503):
                failures.append(f"{resp.status_code} {resp.text}")
                return
            time.sleep(0.02)
        failures.append("a batch was never accepted")

    threads = [threading.Thread(target=push, args=job) for job in envelopes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert failures == []
    assert applied == {till.terminal_id: ENTRIES_PER_TERMINAL for till in tills}
    assert len(_children(server.proc.pid)) >= 2  # the supervisor really runs two workers

    conn = psycopg2.connect(postgres_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT terminal_id, count(*), count(DISTINCT seq), max(seq) FROM applied_entry "
                        "GROUP BY terminal_id ORDER BY terminal_id")
            rows = cur.fetchall()
    finally:
        conn.close()
    n = ENTRIES_PER_TERMINAL
    assert sorted(rows) == sorted((till.terminal_id, n, n, n) for till in tills)
    for member_id, (balance, points) in expected.items():
        view = server.admin_json("member", "show", member_id)
        assert (view["balance"], view["points"]) == (balance, points)
    verify = server.admin("verify", check=False)
    assert verify.returncode == 0, verify.stdout
