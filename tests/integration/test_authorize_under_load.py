"""Online authorizations and ``/v1/health`` are not queued behind batch applies (issue 14; a real ledger process).

The test holds the ledger database's write lock from outside, as a long batch apply would, while terminals push
more batches than the ledger ingests at once (``ledger.api.INGEST_THREADS``): the batches wait, some for the lock
and the rest on the event loop. Meanwhile ``/v1/health`` answers and the ledger authorizes payments (holds live in
their own file; the ledger file is only read, through WAL). Once the lock is released every batch is applied.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid

from ledger import admin, store
from ledger.api import INGEST_THREADS
from ledger.home import open_ledger
from terminal.sync.authorize import OnlineAuthorizer
from tests.fixtures.ledger import HTTP_TIMEOUT_S, LedgerServer, LedgerTerminal, topup

WAITING_BATCHES = INGEST_THREADS + 4
ANSWER_BOUND_S = 2.0
"""Generous for a shared machine; an answer queued behind the batches would wait for the lock (``LOCK_HELD_S``)."""
LOCK_HELD_S = 4.0
"""Under the ledger's SQLite busy timeout (10 s): the waiting batches are applied, not refused, afterwards."""


def test_health_and_authorizations_answer_while_batches_wait_for_the_write_lock(ledger_server: LedgerServer) -> None:
    open_ledger(ledger_server.ledger_dir, None)
    member = admin.add_member("Under Load", balance=10_000)
    codes = [admin.add_terminal(f"pusher {i}")[1] for i in range(WAITING_BATCHES)]
    asker = LedgerTerminal.enroll(ledger_server.url, admin.add_terminal("asker")[1])
    tills = [LedgerTerminal.enroll(ledger_server.url, code) for code in codes]
    for till in tills:
        till.append("topup", topup(member, 100))
    envelopes = [till.seal(1, 1) for till in tills]
    authorizer = OnlineAuthorizer(ledger_server.url, terminal_id=asker.terminal_id, key=asker.key,
                                  root_public_key=asker.root_public_key, timeout_s=ANSWER_BOUND_S)

    def pay(minor: int) -> tuple[bool, float]:
        request = authorizer.request(entry_uuid=str(uuid.uuid4()), member_id=member, card_id="card",
                                     currency="CNY", sv=minor, points=0, coupons=())
        started = time.monotonic()
        approved = authorizer.authorize(request).approved
        return approved, time.monotonic() - started

    assert pay(100)[0]  # the connection is open before the lock is taken

    statuses: list[int] = []
    pushers = [threading.Thread(target=lambda till=till, envelope=envelope: statuses.append(
        till.post(envelope).status_code)) for till, envelope in zip(tills, envelopes, strict=True)]
    lock = sqlite3.connect(store.sqlite_path(ledger_server.ledger_dir), isolation_level=None, timeout=10)
    lock.execute("BEGIN IMMEDIATE")
    locked_at = time.monotonic()
    try:
        for pusher in pushers:
            pusher.start()
        time.sleep(0.5)  # the batches are in: INGEST_THREADS wait for the lock, the others on the event loop
        health = []
        for _ in range(10):
            started = time.monotonic()
            answer = asker.session.get(ledger_server.url + "/v1/health", timeout=HTTP_TIMEOUT_S)
            health.append(time.monotonic() - started)
            assert answer.status_code == 200
        payments = [pay(100) for _ in range(5)]
        assert not statuses, "a batch was applied while the write lock was held"
        assert time.monotonic() - locked_at < LOCK_HELD_S, "too slow to show anything: the lock was held too long"
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    for pusher in pushers:
        pusher.join(HTTP_TIMEOUT_S)
    assert max(health) < ANSWER_BOUND_S, health
    assert all(approved for approved, _ in payments), payments
    assert max(elapsed for _, elapsed in payments) < ANSWER_BOUND_S, payments
    assert sorted(statuses) == [200] * WAITING_BATCHES, statuses
    authorizer.close()
