"""TerminalStore: one handle over the files; sync state; several stores open in one process."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

from cardkit.locations import terminal_db
from terminal.offline.db import PRAGMAS, check_integrity
from terminal.offline.pii import pii_key_path
from terminal.offline.store import TerminalStore
from tests.fixtures.offline import ManualClock


def test_open_creates_the_files_with_durable_settings(terminal_store: TerminalStore, data_dir: Path) -> None:
    assert terminal_db(data_dir).exists()
    assert stat.S_IMODE(pii_key_path(data_dir).stat().st_mode) == 0o600
    conn = terminal_store.db.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == PRAGMAS["synchronous"] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    assert check_integrity(terminal_store.db) == []


def test_sync_state_values_persist(open_store: Callable[..., TerminalStore], offline_clock: ManualClock) -> None:
    store = open_store()
    state = store.sync_state
    assert state.last_sync_ms is None and state.last_error is None
    state.last_sync_ms = 1_780_000_123_000
    state.last_error = "the ledger did not answer within 10 s"
    state.set("sync.backoff", {"attempt": 3, "until_ms": 5})
    state.set_document_version("rules", 12)
    state.set_document_version("trust_list", 3)
    state.set_document_version("rules", 13)
    store.close()
    again = open_store().sync_state
    assert again.last_sync_ms == 1_780_000_123_000
    assert again.last_error == "the ledger did not answer within 10 s"
    assert again.get("sync.backoff") == {"attempt": 3, "until_ms": 5}
    assert again.get("absent", "dflt") == "dflt"
    assert again.document_version("rules") == 13 and again.document_version("revocations") == 0
    assert again.document_versions() == {"rules": 13, "trust_list": 3}
    again.last_error = None
    again.delete("sync.backoff")
    assert again.last_error is None and again.get("sync.backoff") is None


def test_two_terminals_in_one_process_stay_apart(open_store: Callable[..., TerminalStore], tmp_path: Path) -> None:
    one = open_store(tmp_path / "one", "T-1")
    two = open_store(tmp_path / "two", "T-2")
    one.journal.append("sale", {"card": "a"}, None)
    one.journal.append("sale", {"card": "a"}, None)
    two.journal.append("sale", {"card": "b"}, None)
    assert (one.journal.last_seq, two.journal.last_seq) == (2, 1)
    assert {e.terminal_id for e in two.journal.entries()} == {"T-2"}
    one.cache.apply_snapshot([{"member_id": "m", "name": "x"}], version=1)
    assert two.cache.get("m") is None


def test_context_manager_and_default_clocks(data_dir: Path) -> None:
    with TerminalStore.open(data_dir, "T-REAL") as store:
        entry = store.journal.append("shift_open", {"shift": "s-1"}, "c-1")
        assert entry.wall_ms > 1_700_000_000_000 and entry.mono_ns > 0
    assert store.db.is_closed()
    with TerminalStore.open(data_dir, "T-REAL") as store:
        assert store.journal.entries() == [entry]


def test_processes_racing_to_create_a_fresh_store_share_one_schema_and_key(tmp_path: Path) -> None:
    """The app and `cardpos terminal op` started together on a new terminal: one schema, one key, no errors."""
    import threading

    data_dir = tmp_path / "fresh"
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def opener(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            with TerminalStore.open(data_dir, "T-RACE") as store:
                store.journal.append("shift_open", {"shift": f"s-{n}"}, None)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=opener, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with TerminalStore.open(data_dir, "T-RACE") as store:
        assert store.journal.last_seq == 4 and store.journal.verify_chain() is None
    assert sorted(p.name for p in pii_key_path(data_dir).parent.iterdir()) == ["pii.key"]


def test_an_appended_entry_is_visible_to_another_connection_when_append_returns(
    terminal_store: TerminalStore, data_dir: Path
) -> None:
    entry = terminal_store.journal.append("sale", {"card": "c"}, None)
    with sqlite3.connect(terminal_db(data_dir)) as other:
        assert other.execute("SELECT uuid FROM journal WHERE seq = 1").fetchone() == (entry.uuid,)
    other.close()


def test_integrity_check_reports_damage(open_store: Callable[..., TerminalStore], data_dir: Path) -> None:
    import random

    store = open_store()
    for i in range(40):
        store.journal.append("sale", {"card": f"c-{i}", "n": random.Random(i).randrange(10**6)}, None)
    store.close()
    path = terminal_db(data_dir)
    with sqlite3.connect(path) as conn:  # the page holding the uuid index (a leaf: 40 short keys fit in one)
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_journal_1'"
                               ).fetchone()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    data = bytearray(path.read_bytes())
    start = (root - 1) * page_size
    cells = data[start : start + page_size]
    # Overwrite the uuid text inside the index cells (not the page header): keys no longer match their rows.
    for i in range(page_size // 2, page_size - 8):
        if 0x30 <= cells[i] <= 0x66:
            cells[i] = 0x30
    data[start : start + page_size] = cells
    path.write_bytes(bytes(data))
    handle = open_store().db
    problems = check_integrity(handle)
    assert problems and all(isinstance(p, str) for p in problems)


def test_backup_is_a_consistent_copy_that_opens_with_the_key(
    open_store: Callable[..., TerminalStore], tmp_path: Path
) -> None:
    import shutil

    store = open_store()
    written = [store.journal.append("sale", {"card": "c", "n": i}, None) for i in range(25)]
    store.journal.append("member_update", {"member": "m", "notes": "n"}, None)
    store.journal.mark_synced(10)
    store.backup(tmp_path / "backups" / "terminal.sqlite3")
    store.journal.append("sale", {"card": "after-backup"}, None)  # not in the copy

    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(tmp_path / "backups" / "terminal.sqlite3", terminal_db(restored))
    (restored / "keys").mkdir(mode=0o700)
    shutil.copy(pii_key_path(store.data_dir), pii_key_path(restored))
    copy = open_store(restored)
    assert copy.journal.entries(limit=25) == written
    assert copy.journal.last_seq == 26 and copy.journal.synced_seq == 10
    assert copy.journal.entries()[-1].payload["notes"] == "n"
    assert copy.journal.verify_chain() is None


def test_entry_ids_are_canonical_time_ordered_version_7_uuids() -> None:
    import uuid

    from terminal.offline.store import time_ordered_uuid

    values = [time_ordered_uuid(1_795_000_000_000 + i // 10) for i in range(500)]
    assert len(set(values)) == 500
    for value in values:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert [v[:13] for v in values] == sorted(v[:13] for v in values)  # the time prefix orders them
    assert int(uuid.UUID(values[0]).hex[:12], 16) == 1_795_000_000_000
