"""Length limits of identifier columns on SQLite: the tables written per applied entry carry them as a CHECK in
the table itself (cheap per row); every other table, and a per-entry table an older version made, as triggers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import peewee
import pytest

from ledger import store
from ledger.settlement.records import FundingLine
from tests.fixtures.ledger import in_process_ledger

LINE = ("INSERT INTO funding_line (terminal_id, seq, uuid, member_id, kind, flow, merchant_id, issuer_id, amount, "
        "points, currency, period, wall_ms) VALUES ('t', 1, 'u', ?, 'sale', 'sv_out', 'shop', 'group', 1, 0, 'CNY', "
        "'2026-11', 1)")


def _triggers(database: peewee.Database, table: str) -> list[str]:
    return [str(r[0]) for r in database.execute_sql(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)).fetchall()]


def test_a_new_ledger_bounds_its_per_entry_tables_inline(tmp_path: Path) -> None:
    with in_process_ledger(tmp_path / "ledger", lambda: 1_790_000_000_000, seed=1) as home:
        for table in sorted(store.INLINE_CHECKED):
            assert _triggers(home.database, table) == [], table
        assert _triggers(home.database, "member_projection")  # everything else keeps its triggers
        with pytest.raises(peewee.IntegrityError, match="longer than its column allows in funding_line"):
            home.database.execute_sql(LINE, ("m" * 41,))
        home.database.execute_sql(LINE, ("m" * 40,))  # at the limit: fine
        assert not store.upgrade_schema()  # guarded as it is: nothing to do at the next start


def test_a_per_entry_table_made_by_an_older_version_keeps_trigger_guards(tmp_path: Path) -> None:
    ledger_dir = tmp_path / "ledger"
    with in_process_ledger(ledger_dir, lambda: 1_790_000_000_000, seed=1) as home:
        database = home.database
        database.execute_sql('DROP TABLE "funding_line"')
        database.create_tables([FundingLine])  # as before: no CHECK in the table
        assert store.upgrade_schema()  # found unguarded: the triggers are made
        assert len(_triggers(database, "funding_line")) == 2
        assert not store.upgrade_schema()
    conn = sqlite3.connect(ledger_dir / "ledger.sqlite3")
    try:
        with pytest.raises(sqlite3.IntegrityError, match="longer than its column allows in funding_line"):
            conn.execute(LINE, ("m" * 41,))
    finally:
        conn.close()
