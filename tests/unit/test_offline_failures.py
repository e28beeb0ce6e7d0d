"""Storage failures: a full disk, a read-only or damaged file, a locked database -- one clear sentence each,
nothing acknowledged that was not stored, and a journal that stays consistent."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cardkit.errors import JournalError
from cardkit.journal import JournalEntry
from cardkit.locations import terminal_db
from terminal.offline.store import TerminalStore


def big_payload(i: int) -> dict[str, object]:
    # Random bytes do not compress; 3 KiB per entry fills a few pages quickly.
    return {"card": f"card-{i}", "blob": random.Random(i).randbytes(3_000)}


def test_disk_full_records_nothing_and_keeps_the_chain(terminal_store: TerminalStore) -> None:
    journal = terminal_store.journal
    for i in range(3):
        journal.append("sale", big_payload(i), None)
    conn = terminal_store.db.connection()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 8}")  # a "disk" with room for only a few more pages

    acknowledged: list[JournalEntry] = []
    error: JournalError | None = None
    for i in range(3, 100):  # bounded: the limit is hit after a handful of entries
        try:
            acknowledged.append(journal.append("sale", big_payload(i), None))
        except JournalError as exc:
            error = exc
            break
    assert error is not None, "the simulated disk never filled up"
    assert str(error).startswith("the disk is full: nothing was recorded; free space and retry")
    assert isinstance(error.orig, BaseException)
    # Exactly what was acknowledged is in the journal, and nothing more.
    assert journal.last_seq == 3 + len(acknowledged)
    assert [e.uuid for e in journal.entries(after_seq=3)] == [e.uuid for e in acknowledged]
    assert journal.verify_chain() is None
    # Refused again while still full; then space is freed and the chain carries on without a gap.
    with pytest.raises(JournalError, match="disk is full"):
        journal.append("sale", big_payload(1000), None)
    conn.execute("PRAGMA max_page_count = 1073741823")
    after = journal.append("sale", big_payload(1001), None)
    assert after.seq == 4 + len(acknowledged)
    assert journal.verify_chain() is None


@pytest.fixture
def read_only_file(open_store: Callable[..., TerminalStore], data_dir: Path) -> Iterator[Path]:
    """A terminal database that this process cannot write: chmod for a normal user, the immutable
    attribute for root (root ignores permission bits)."""
    store = open_store()
    store.journal.append("sale", {"card": "c"}, None)
    store.close()
    path = terminal_db(data_dir)
    if os.geteuid() != 0:
        path.chmod(0o444)
        yield path
        path.chmod(0o644)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], capture_output=True, timeout=10).returncode:
        pytest.skip("running as root without chattr +i: cannot make a file read-only for this test")
    try:
        yield path
    finally:
        subprocess.run([chattr, "-i", str(path)], capture_output=True, timeout=10, check=True)


def test_read_only_database_is_a_clear_error(read_only_file: Path, open_store: Callable[..., TerminalStore]) -> None:
    with pytest.raises(JournalError, match=r"is read-only: .*permissions") as info:
        open_store()
    assert str(read_only_file) in str(info.value)


def test_read_only_folder_is_a_clear_error(open_store: Callable[..., TerminalStore], data_dir: Path) -> None:
    store = open_store()
    store.journal.append("sale", {"card": "c"}, None)
    store.close()  # the last close checkpoints and removes the -wal file, so a reopen must create it again
    if os.geteuid() != 0:
        data_dir.chmod(0o555)
        undo: Callable[[], object] = lambda: data_dir.chmod(0o755)  # noqa: E731
    else:
        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", str(data_dir)], capture_output=True,
                                            timeout=10).returncode:
            pytest.skip("running as root without chattr +i: cannot make a folder read-only for this test")
        undo = lambda: subprocess.run([chattr, "-i", str(data_dir)], capture_output=True, timeout=10,  # noqa: E731
                                      check=True)
    try:
        with pytest.raises(JournalError, match="folder must exist and be writable"):
            open_store()
    finally:
        undo()
    assert open_store().journal.last_seq == 1


def test_garbage_file_is_reported_as_damaged(data_dir: Path, open_store: Callable[..., TerminalStore]) -> None:
    path = terminal_db(data_dir)
    path.write_bytes(random.Random(7).randbytes(16_384))
    with pytest.raises(JournalError, match=r"^database file is damaged: ") as info:
        open_store()
    assert "restore it from a backup" in str(info.value)
    assert path.read_bytes() == random.Random(7).randbytes(16_384)  # we never "repair" evidence by overwriting


def test_damaged_pages_inside_a_real_database_are_reported(
    data_dir: Path, open_store: Callable[..., TerminalStore]
) -> None:
    store = open_store()
    for i in range(60):
        store.journal.append("sale", big_payload(i), None)
    store.close()
    path = terminal_db(data_dir)
    data = bytearray(path.read_bytes())
    assert len(data) > 20 * 4096
    page = 4096
    data[page : len(data) - page] = random.Random(3).randbytes(len(data) - 2 * page)  # keep the header page
    path.write_bytes(bytes(data))
    with pytest.raises(JournalError, match=r"^database file is damaged: "):
        damaged = open_store()
        damaged.journal.verify_chain()


def test_a_locked_database_is_a_clear_error_and_recovers(terminal_store: TerminalStore, data_dir: Path) -> None:
    terminal_store.journal.append("sale", {"card": "c"}, None)
    terminal_store.db.connection().execute("PRAGMA busy_timeout = 50")  # keep the test short
    other = sqlite3.connect(terminal_db(data_dir), isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(JournalError, match="locked by another program"):
            terminal_store.journal.append("sale", {"card": "c"}, None)
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert terminal_store.journal.append("sale", {"card": "c"}, None).seq == 2
    assert terminal_store.journal.verify_chain() is None


def test_missing_folder_is_created(tmp_path: Path, open_store: Callable[..., TerminalStore]) -> None:
    store = open_store(tmp_path / "new" / "deeper")
    assert store.journal.append("sale", {}, None).seq == 1


def test_errors_through_peewee_queries_get_the_same_clear_sentence(terminal_store: TerminalStore,
                                                                   data_dir: Path) -> None:
    """The cache, cashiers and sync state go through peewee, which re-wraps sqlite3 errors; same messages."""
    terminal_store.db.connection().execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(terminal_db(data_dir), isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(JournalError, match="locked by another program") as info:
            terminal_store.cache.apply_snapshot([{"member_id": "m", "name": "x"}], version=1)
        assert info.value.orig is not None
        with pytest.raises(JournalError, match="locked by another program"):
            terminal_store.sync_state.last_error = "x"
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert terminal_store.cache.apply_snapshot([{"member_id": "m", "name": "x"}], version=1)


def test_disk_full_while_saving_a_snapshot_applies_nothing(terminal_store: TerminalStore) -> None:
    cache = terminal_store.cache
    cache.apply_snapshot([{"member_id": "m-0", "name": "a"}], version=1)
    conn = terminal_store.db.connection()
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0] + 2}")
    big = [{"member_id": f"m-{i}", "name": "n", "notes": random.Random(i).randbytes(1500).hex()}
           for i in range(1, 60)]
    with pytest.raises(JournalError, match="the disk is full"):
        cache.apply_snapshot(big, version=2)
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert cache.member_ids() == ["m-0"] and cache.snapshot_version == 1


def test_a_torn_write_after_the_last_commit_is_ignored_on_recovery(
    open_store: Callable[..., TerminalStore], data_dir: Path, tmp_path: Path
) -> None:
    """Power cut while an unacknowledged commit was being written: the files hold every fsynced commit plus a
    half-written frame. Recovery must keep every acknowledged entry and drop the torn tail."""
    store = open_store()
    store.db.connection().execute("PRAGMA wal_autocheckpoint = 0")  # keep everything in the WAL for the copy
    acknowledged = [store.journal.append("sale", big_payload(i), None) for i in range(12)]
    db = terminal_db(data_dir)
    wal = db.with_name(db.name + "-wal")
    assert wal.stat().st_size > 0
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    shutil.copytree(data_dir / "keys", crashed / "keys")
    shutil.copy(db, terminal_db(crashed))
    torn = wal.read_bytes() + random.Random(5).randbytes(4096 + 24 + 1000)  # a frame header, a page, part of another
    terminal_db(crashed).with_name(db.name + "-wal").write_bytes(torn)

    recovered = open_store(crashed)
    assert recovered.journal.entries() == acknowledged
    assert recovered.journal.verify_chain() is None
    assert recovered.journal.append("sale", {"card": "after"}, None).seq == 13
