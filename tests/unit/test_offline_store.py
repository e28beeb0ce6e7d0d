"""TerminalStore: one handle over the files; sync state; several stores open in one process."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

from terminal.locations import terminal_db
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
