"""Exactly once, whatever the network does: two terminals sync through a fault-injecting proxy.

The proxy (tests/fixtures/faultproxy.py) drops requests, loses answers after the ledger applied the batch,
delays past the client's timeout, resets mid-body, duplicates requests, answers 5xx and truncates answers. Each
terminal runs hundreds of rounds of "record a few random operations, sync once" in its own thread. Afterwards
every journal is drained, the ledger's balances and points equal what the terminals recorded (no loss, no
double application), and the ledger's own invariant check passes.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from cardkit.errors import SyncError
from ledger import admin
from tests.fixtures.faultproxy import FAULTS, FaultProxy
from tests.fixtures.sync import SyncWorld, init_world
from tests.integration.test_sync_ledger import assert_ledger_matches, make_service, open_terminal, random_op

ROUNDS_PER_TERMINAL = int(os.environ.get("CARDPOS_SYNC_FAULT_ROUNDS", "260"))  # 2 terminals: >= 500 rounds
TIME_LIMIT_S = 150.0


def run_terminal(world: SyncWorld, data_dir: Path, url: str, seed: int, rounds: int, outcome: Counter[str],
                 deadline: float) -> None:
    rng = random.Random(seed)
    with open_terminal(data_dir) as store:
        # Short timeouts and small batches so faults land mid-drain and delays exceed the timeout.
        service = make_service(store, timeout_s=0.3, batch_bytes=3000, seed=seed, url=url)
        try:
            for _ in range(rounds):
                assert time.monotonic() < deadline, "fault test ran out of time"
                for _ in range(rng.randint(0, 4)):
                    store.journal.append(*random_op(rng, world), cashier_id=f"c{seed}")
                try:
                    service.sync_once()
                    outcome["ok"] += 1
                except SyncError as exc:
                    outcome[type(exc).__name__] += 1
        finally:
            service.client.close()


def drain(data_dir: Path, url: str) -> None:
    with open_terminal(data_dir) as store:
        service = make_service(store, timeout_s=5, url=url)
        report = service.sync_until_drained(max_attempts=5)
        assert report.queue_depth == 0
        service.client.close()


def run_fault_test(world: SyncWorld, proxy: FaultProxy, rounds_per_terminal: int) -> None:
    # One terminal per HPKE suite: the hybrid's 1.1 kB of KEM output per batch must survive the same faults.
    terminals = [world.enroll(f"till {i}", proxy.url, suite=suite)[1]
                 for i, suite in ((1, "x25519"), (2, "mlkem768x25519"))]
    outcomes: list[Counter[str]] = [Counter(), Counter()]
    deadline = time.monotonic() + TIME_LIMIT_S
    errors: list[BaseException] = []

    def guarded(*args: object) -> None:
        try:
            run_terminal(*args)  # type: ignore[arg-type]
        except BaseException as exc:  # surfaced below; a thread must not swallow a failed assertion
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(world, d, proxy.url, i + 1, rounds_per_terminal,
                                                      outcomes[i], deadline))
               for i, d in enumerate(terminals)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIME_LIMIT_S + 30)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)

    rounds = sum(sum(o.values()) for o in outcomes)
    assert rounds == 2 * rounds_per_terminal
    assert all(o["ok"] > 0 for o in outcomes)  # syncing made progress through the faults
    assert sum(o["ok"] for o in outcomes) < rounds  # and the faults really hurt some rounds
    for fault in FAULTS:
        assert proxy.counts[fault] >= 5, (fault, proxy.counts)

    proxy.enabled = False  # the network heals: everything left in the queues goes through
    for data_dir in terminals:
        drain(data_dir, proxy.url)
    assert_ledger_matches(world, terminals)
    # Retries and duplicated requests were answered as replays, never mistaken for tampering.
    reasons = Counter(row["reason"] for row in admin.rejected_batches(limit=100_000))
    assert reasons["replayed"] > 0
    assert not reasons.keys() & {"tampered", "broken_chain", "bad_signature", "decrypt_failed", "sequence_gap"}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_terminals_through_a_faulty_network_apply_exactly_once(sync_world: SyncWorld,
                                                                    fault_proxy_factory: type[FaultProxy]) -> None:
    ledger = sync_world.server()
    proxy = fault_proxy_factory(upstream=("127.0.0.1", ledger.port), seed=20261123, fault_rate=0.3,
                                max_delay_s=0.5).start()
    assert ROUNDS_PER_TERMINAL * 2 >= 500
    run_fault_test(sync_world, proxy, ROUNDS_PER_TERMINAL)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_exactly_once_on_postgresql_with_two_ledger_workers(postgres_url: str, tmp_path: Path,
                                                            fault_proxy_factory: type[FaultProxy]) -> None:
    world = init_world(tmp_path, db_url=postgres_url, workers=2)
    try:
        ledger = world.server()
        proxy = fault_proxy_factory(upstream=("127.0.0.1", ledger.port), seed=7, fault_rate=0.3,
                                    max_delay_s=0.5).start()
        run_fault_test(world, proxy, ROUNDS_PER_TERMINAL)
    finally:
        world.stop_all()
