"""Settlement on PostgreSQL: the funding hook, closing, late adjustments and verify, over random workloads (the
same workloads as the SQLite property test)."""

from __future__ import annotations

import pytest

from tests.fixtures.postgres import PostgresServer
from tests.unit.test_settlement_properties import run_workload


@pytest.mark.parametrize("seed", [3, 11])
def test_random_workloads_settle_exactly_on_postgresql(postgres_server: PostgresServer, seed: int) -> None:
    run_workload(seed, 12, 12, 4, direct=seed % 2 == 0,
                 db_url=postgres_server.url(postgres_server.create_database()))
