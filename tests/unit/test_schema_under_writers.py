"""Opening a ledger while another process writes to it: the schema steps (read the schema, then write their
bookkeeping rows) take SQLite's write lock first. A deferred transaction that read first and wrote after another
connection's commit is refused at once with "database is locked" (a stale WAL snapshot; the busy timeout does
not apply), which is how a console or admin command failed beside a running ledger."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from ledger import store
from ledger.console import models as console_models
from tests.fixtures.ledger import in_process_ledger

ROUNDS = 150


def _keep_writing(db_path: Path, stop: threading.Event) -> None:
    """Another connection committing small writes back to back, as a ledger ingesting batches does."""
    other = sqlite3.connect(str(db_path), timeout=10, isolation_level=None)
    other.execute("CREATE TABLE IF NOT EXISTS busy_neighbour (n INTEGER)")
    try:
        while not stop.is_set():
            other.execute("INSERT INTO busy_neighbour (n) VALUES (1)")
    finally:
        other.close()


def test_schema_steps_beside_a_writing_connection_are_never_refused(tmp_path: Path) -> None:
    with in_process_ledger(tmp_path / "ledger", lambda: 1_790_000_000_000, seed=3) as home:
        db_path = Path(home.database.database)
        stop = threading.Event()
        writer = threading.Thread(target=_keep_writing, args=(db_path, stop), daemon=True)
        writer.start()
        try:
            for _ in range(ROUNDS):
                console_models.create_tables()
                store.create_schema()
        finally:
            stop.set()
            writer.join(timeout=10)
        assert not writer.is_alive()
        assert console_models.Cursor.get_by_id("sales").last_id == 0
