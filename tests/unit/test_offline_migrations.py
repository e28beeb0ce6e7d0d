"""Schema migrations: versioned, repeatable, upgrade old files keeping their data, agree with the models."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import cbor2
import pytest
from peewee import SqliteDatabase

from cardkit.errors import JournalError
from cardkit.journal import GENESIS_HASH, make_entry
from cardkit.locations import terminal_db
from terminal.offline.db import open_database
from terminal.offline.migrations import LATEST, migrate, schema_version
from terminal.offline.models import ALL_MODELS
from terminal.offline.store import TerminalStore
from tests.fixtures.offline import TEST_TERMINAL_ID, ManualClock, SeqUuids


def _old_database(path: Path, version: int) -> None:
    handle = SqliteDatabase(str(path), pragmas={"journal_mode": "wal"})
    handle.connect()
    assert migrate(handle, target=version) == version
    handle.close()


def test_fresh_database_reaches_the_latest_version(data_dir: Path) -> None:
    handle = open_database(terminal_db(data_dir))
    try:
        assert schema_version(handle) == LATEST
        assert migrate(handle) == LATEST  # running again is a no-op
    finally:
        handle.close()


def test_version_1_database_upgrades_and_keeps_its_journal(data_dir: Path, offline_clock: ManualClock) -> None:
    path = terminal_db(data_dir)
    _old_database(path, 1)
    # Entries written by a version-1 terminal, straight into the file.
    entries, prev = [], GENESIS_HASH
    uuids = SeqUuids("v1")
    for seq in (1, 2, 3):
        entry = make_entry(terminal_id=TEST_TERMINAL_ID, seq=seq, prev_hash=prev, wall_ms=1_000 + seq,
                           mono_ns=seq, cashier_id="c-1", kind="sale", payload={"card": "k", "net": seq * 100},
                           entry_uuid=uuids())
        entries.append(entry)
        prev = entry.hash
    with sqlite3.connect(path) as conn:
        for e in entries:
            conn.execute(
                "INSERT INTO journal (seq, terminal_id, uuid, prev_hash, hash, wall_ms, mono_ns, cashier_id, kind, "
                "payload, pii, card_id, member_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, NULL)",
                (e.seq, e.terminal_id, e.uuid, e.prev_hash, e.hash, e.wall_ms, e.mono_ns, e.cashier_id, e.kind,
                 cbor2.dumps(e.payload, canonical=True), "k"),
            )
        conn.execute("INSERT INTO sync_state (key, value) VALUES ('journal.synced_seq', ?)", (cbor2.dumps(2),))
    conn.close()

    store = TerminalStore.open(data_dir, TEST_TERMINAL_ID, clock_ms=offline_clock.now_ms,
                               mono_ns=offline_clock.mono_ns, new_uuid=SeqUuids("v3"))
    try:
        assert schema_version(store.db) == LATEST
        assert store.journal.entries() == entries
        assert store.journal.synced_seq == 2
        assert store.journal.verify_chain() is None
        # The upgraded file has the newer tables and keeps the chain going.
        assert store.journal.append("sale", {"card": "k", "net": 1}, None).prev_hash == entries[-1].hash
        store.cashiers.add("c-1", "Li", "cashier", "1234")
        store.cache.apply_snapshot([{"member_id": "m", "name": "n", "card_ids": ["k"]}], version=1)
        assert store.cache.by_card("k") is not None
        with pytest.raises(peewee_integrity_errors()):
            store.db.execute_sql("DELETE FROM journal")  # the v3 triggers now guard the old rows too
    finally:
        store.close()


def peewee_integrity_errors() -> tuple[type[BaseException], ...]:
    import peewee

    return (peewee.IntegrityError, sqlite3.IntegrityError)


def test_version_2_member_cache_survives_the_upgrade(data_dir: Path, offline_clock: ManualClock) -> None:
    store = TerminalStore.open(data_dir, TEST_TERMINAL_ID, clock_ms=offline_clock.now_ms,
                               mono_ns=offline_clock.mono_ns, new_uuid=SeqUuids())
    store.cache.apply_snapshot([{"member_id": "m-1", "name": "Li Lei", "balance": 700, "card_ids": ["c-9"]}], 4)
    store.close()
    # Roll the schema back to version 2 the way an old build left it: no cashier/document tables, no triggers.
    with sqlite3.connect(terminal_db(data_dir)) as conn:
        conn.executescript(
            "DROP TABLE cashier; DROP TABLE document_version; DROP TRIGGER journal_no_update; "
            "DROP TRIGGER journal_no_delete; PRAGMA user_version = 2;"
        )
    conn.close()
    store = TerminalStore.open(data_dir, TEST_TERMINAL_ID, clock_ms=offline_clock.now_ms,
                               mono_ns=offline_clock.mono_ns, new_uuid=SeqUuids("x"))
    try:
        assert schema_version(store.db) == LATEST
        member = store.cache.by_card("c-9")
        assert member is not None and (member.name, member.balance) == ("Li Lei", 700)
        assert store.cache.snapshot_version == 4
    finally:
        store.close()


def test_a_newer_schema_is_refused_with_a_clear_message(data_dir: Path) -> None:
    path = terminal_db(data_dir)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    with pytest.raises(JournalError, match="newer cardpos"):
        open_database(path)


def test_models_match_the_migrated_schema(data_dir: Path) -> None:
    handle = open_database(terminal_db(data_dir))
    try:
        for model in ALL_MODELS:
            table = model._meta.table_name
            columns = {c.name for c in handle.get_columns(table)}
            assert columns == {f.column_name for f in model._meta.sorted_fields}, table
    finally:
        handle.close()
