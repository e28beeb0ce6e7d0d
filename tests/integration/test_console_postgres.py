"""The console on PostgreSQL with two worker processes, beside a two-worker ledger: sessions live in the
database, so whichever worker answers knows the admin; the dashboard's roll-up folds a terminal's sale (on
PostgreSQL once it has settled, so a transaction that took a lower id is never skipped)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ledger.console.roles import Role
from tests.fixtures.console import ROLE_ADMINS, ConsoleClient, ConsoleServer, ConsoleWorld
from tests.fixtures.ledger import LedgerTerminal, make_ledger, sale

pytestmark = pytest.mark.postgres


def test_two_console_workers_on_postgresql_share_sessions_and_figures(postgres_url: str, tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path / "pg-console", db_url=postgres_url, workers=2).start()
    console = ConsoleServer(ledger, extra_args=("--workers", "2"))
    world = ConsoleWorld(ledger=ledger, console=console)
    try:
        world.add_admin(ROLE_ADMINS[Role.SUPPORT], Role.SUPPORT)
        from ledger import admin

        member = admin.add_member("Pg Person", phone="13700001234", balance=10_000, member_id="PG1")
        card = admin.issue_card(member).card_id
        _, code = admin.add_terminal("pg till", "store-1")
        console.start()
        assert console.first_line == f"cardpos-console: listening {console.url}"
        client = world.client(Role.SUPPORT)
        for _ in range(12):  # new connections: both workers answer, both know the session
            fresh = ConsoleClient(console.url)
            fresh.http.cookies.update(client.http.cookies)
            assert fresh.get("/members?q=137+0000+1234").status_code == 200
        assert "PG1" in client.get("/members?q=137+0000+1234").text
        added = client.post("/terminals", {"name": "added on pg", "store": "store-1"})
        assert added.status_code == 200 and 'id="enroll-code"' in added.text

        till = LedgerTerminal.enroll(ledger.url, code)
        till.wall_ms = int(time.time() * 1000) - 5000  # a sale of today
        till.append("sale", sale(member, 1250, card=card, pts_earn=12))
        assert till.push(1, 1).status_code == 200
        deadline = time.monotonic() + 30
        page = ""
        while time.monotonic() < deadline:
            page = client.get("/dashboard").text
            if "12.50 CNY" in page:
                break
            time.sleep(1)
        assert "12.50 CNY" in page, "the sale reaches the dashboard's figures"
    finally:
        console.stop()
        ledger.stop()
