"""Online authorization through a faulty network: the fault proxy sits between both terminals and the ledger.

Per request it drops the connection, loses the answer after the ledger decided, sends the request twice, delays
it past the terminal's timeout, answers 5xx, cuts the body or the answer (tests/fixtures/faultproxy.py, seeded).
The terminals pay from one member at the same moment, asking for more than the balance; sync goes straight to the
ledger. The same on SQLite (one ledger process) and on PostgreSQL (two ledger worker processes, so a retried or
duplicated request may reach the other worker). Afterwards: the ledger's balance is the opening balance less
exactly the approved operations (online and offline), each authorization is recorded once (a retried or
duplicated request never holds twice), what the ledger approved online never exceeds the balance, timed-out
authorizations were decided offline under the offline limits, and every hold whose entry arrived is settled.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cardkit.config import Settings
from cardkit.core.money import Money
from ledger import authorize
from terminal.service.authorization import AUTH_FIELD, OFFLINE_PATH
from terminal.service.loader import open_counter
from tests.fixtures.faultproxy import FaultProxy
from tests.integration.test_authorize_race import MEMBER, OPENING, Till, race_world, run_rounds, sync_all

ROUNDS = 40
PAYMENT = 1_000  # 80 payments of 10.00 ask for 800.00 of a 500.00 balance
TIMEOUT_S = 0.5
FAULTS = ("drop", "lose_answer", "delay", "reset_body", "duplicate", "error_5xx", "truncate")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_faults_never_debit_twice_and_timeouts_settle_at_sync(backend: str, request: pytest.FixtureRequest,
                                                              tmp_path: Path,
                                                              fault_proxy_factory: type[FaultProxy]) -> None:
    """On SQLite with one ledger process; on PostgreSQL with two worker processes behind the proxy."""
    db_url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    race, _ = race_world(tmp_path, db_url=db_url, workers=2 if db_url else 1)
    try:
        server = race.world.server()
        proxy = fault_proxy_factory(upstream=("127.0.0.1", server.port), seed=14, fault_rate=0.5,
                                    max_delay_s=3 * TIMEOUT_S, faults=FAULTS).start()
        for till in race.tills:  # the same data dirs, now asking the ledger through the proxy
            till.counter.close()
            settings = Settings(data_dir=till.data_dir)
            settings.sync.ledger_url = proxy.url
            settings.sync.authorize_timeout_s = TIMEOUT_S
            till.counter = open_counter(settings)
        claims = {id(till): till.counter.tap(race.token).claims for till in race.tills}

        def pay(till: Till, _: int) -> object:
            return till.counter.sale(claims[id(till)], Money(PAYMENT, "CNY"), tender="sv")

        run_rounds(race, ROUNDS, pay)
        receipts = [r for till in race.tills for r in till.receipts]
        declines = [d for till in race.tills for d in till.declines]
        assert len(receipts) + len(declines) == 2 * ROUNDS
        assert all(d.code for d in declines), "every refusal has a reason"
        online = [r for r in receipts if r.payload[AUTH_FIELD] != OFFLINE_PATH]
        offline = [r for r in receipts if r.payload[AUTH_FIELD] == OFFLINE_PATH]
        assert online and offline, "the faults sent some authorizations past the timeout"
        assert all(not r.offline and r.payload["offline"] is False for r in online)
        assert all(r.offline and r.payload["offline"] is True for r in offline)
        assert sum(int(r.payload["sv"]) for r in online) <= OPENING, "online approvals never overdraw"
        assert {"lose_answer", "duplicate", "delay", "drop"} <= set(proxy.counts), proxy.counts

        sync_all(race)
        spent = sum(int(r.payload["sv"]) for r in receipts)
        assert race.world.member_show(MEMBER)["balance"] == OPENING - spent, "the ledger counts each approval once"
        verified = race.world.verify()
        assert verified.returncode == 0, verified.stdout + verified.stderr

        race.world.open_admin()
        authorize.open_holds()
        authorize.sweep(now_ms=0)  # settles whatever is applied; nothing expires at time 0
        rows = {str(row.entry_uuid): row for row in authorize.Authorization.select()}
        for receipt in online:
            row = rows[receipt.uuid]
            assert (row.state, row.auth_id) == (authorize.SETTLED, receipt.payload[AUTH_FIELD])
        seen_offline = [r for r in offline if r.uuid in rows]
        assert seen_offline, "some timed-out requests reached the ledger"
        for receipt in seen_offline:  # the ledger decided but the terminal heard nothing in time
            assert rows[receipt.uuid].state in (authorize.SETTLED, "declined")
        receipt_uuids = {r.uuid for r in receipts}
        assert all(row.state != authorize.HELD or uuid not in receipt_uuids for uuid, row in rows.items())
    finally:
        race.close()
