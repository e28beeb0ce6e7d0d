"""The terminal's SQLite database: deferred peewee handle, pragmas, and SQLite errors turned into JournalError.

Durability: ``journal_mode=wal`` + ``synchronous=FULL`` means every COMMIT fsyncs the WAL before it returns,
so a committed journal entry survives a crash or a power cut. ``busy_timeout`` lets the app, the sync worker
and ``cardpos terminal op`` share the file without "database is locked" on every overlap.

``database`` is the deferred handle the models are declared against (house rule 8). ``open_database`` can
initialise it, but by default hands back a fresh handle, and the store binds every query to the handle it was
given -- so tests (and a process that plays two terminals) can keep several databases open at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from peewee import SqliteDatabase

from cardkit.errors import JournalError
from cardkit.sqlite_failures import SqliteFailure, sqlite_failure

database = SqliteDatabase(None)

BUSY_TIMEOUT_MS = 5000

PRAGMAS: dict[str, object] = {
    "journal_mode": "wal",
    "synchronous": 2,  # FULL: fsync the WAL at every commit -- durability before "approved"
    "foreign_keys": 1,
    "busy_timeout": BUSY_TIMEOUT_MS,
}


def _sqlite_error(exc: BaseException) -> sqlite3.Error | None:
    """Find the sqlite3 error behind ``exc`` (peewee re-raises it as ``peewee.X(orig, *args)``)."""
    seen: BaseException | None = exc
    for _ in range(5):  # bounded walk: exception, peewee's wrapper, __cause__/__context__
        if seen is None:
            return None
        if isinstance(seen, sqlite3.Error):
            return seen
        if seen.args and isinstance(seen.args[0], sqlite3.Error):
            return seen.args[0]
        seen = seen.__cause__ or seen.__context__
    return None


def is_database_error(exc: BaseException) -> bool:
    """True for sqlite3 errors and peewee's wrappers of them (the errors ``wrap_error`` knows how to word)."""
    return _sqlite_error(exc) is not None or type(exc).__module__.startswith("peewee")


def wrap_error(exc: BaseException, path: Path | str, action: str) -> JournalError:
    """One clear sentence for a failed database operation; the original error is kept in ``orig``."""
    if isinstance(exc, JournalError):
        return exc
    err = _sqlite_error(exc)
    text = str(err or exc)
    failure = sqlite_failure(err or exc)
    if failure is SqliteFailure.FULL:
        message = f"the disk is full: nothing was recorded; free space and retry ({action}, {path})"
    elif failure is SqliteFailure.READ_ONLY:
        message = (f"the database {path} is read-only: nothing was recorded; "
                   "check the file and folder permissions and the disk mount")
    elif failure is SqliteFailure.DAMAGED:
        message = (f"database file is damaged: {path} ({text}); nothing was recorded; "
                   "restore it from a backup or move it aside and resync")
    elif failure is SqliteFailure.LOCKED:
        message = (f"the database {path} is locked by another program for longer than "
                   f"{BUSY_TIMEOUT_MS // 1000} s: nothing was recorded; retry")
    elif failure is SqliteFailure.CANNOT_OPEN:
        message = (f"cannot open the database {path}: the folder must exist and be writable "
                   "(the write-ahead log is kept beside the file); nothing was recorded")
    elif failure is SqliteFailure.IO_ERROR:
        message = f"the disk reported an input/output error on {path} ({action}): nothing was recorded"
    else:
        message = f"database error while {action} ({path}): {text}"
    return JournalError(message, orig=exc)


@contextmanager
def guard(path: Path | str, action: str) -> Iterator[None]:
    """Turn any database error raised inside the block into a JournalError."""
    try:
        yield
    except JournalError:
        raise
    except Exception as exc:
        if not is_database_error(exc):
            raise
        raise wrap_error(exc, path, action) from exc


def db_path(db: SqliteDatabase) -> str:
    return str(db.database)


@contextmanager
def write_transaction(db: SqliteDatabase, action: str) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on the raw connection; the commit is the durability point.

    IMMEDIATE takes the write lock up front, so reading the chain head and inserting the next entry cannot
    interleave with another writer (the app and ``cardpos terminal op`` may append at the same time).
    A failed COMMIT (disk full, I/O error) may already have rolled back inside SQLite; roll back only when a
    transaction is still open so the original error is the one reported.
    """
    path = db_path(db)
    with guard(path, action):
        conn = db.connection()
        conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        with guard(path, action):
            conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            # The original error below says what went wrong; a failing ROLLBACK would only hide it.
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise wrap_error(exc, path, action) from exc
        raise


def open_database(path: Path, db: SqliteDatabase | None = None) -> SqliteDatabase:
    """Open (creating if needed) the terminal database at ``path`` and bring its schema up to date.

    Pass ``db=database`` to initialise the module's deferred handle; by default a fresh handle is returned.
    Raises JournalError with one clear sentence for a damaged, read-only, locked or full database.
    """
    from terminal.offline.migrations import migrate

    handle = db if db is not None else SqliteDatabase(None)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JournalError(f"cannot create the folder for the database {path}: {exc.strerror}", orig=exc) from exc
    handle.init(str(path), pragmas=PRAGMAS, timeout=BUSY_TIMEOUT_MS // 1000)
    try:
        with guard(path, "opening the database"):
            handle.connect(reuse_if_open=True)
            mode = handle.connection().execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                # SQLite silently keeps the old mode when it cannot switch (e.g. a read-only file).
                raise JournalError(
                    f"the database {path} is read-only: cannot switch it to write-ahead logging; "
                    "check the file and folder permissions"
                )
        migrate(handle)
    except BaseException:
        handle.close()
        raise
    return handle


def check_integrity(db: SqliteDatabase) -> list[str]:
    """Run ``PRAGMA integrity_check``; an empty list means the file is sound (slow on big files: on demand)."""
    with guard(db_path(db), "checking the database"):
        rows = db.connection().execute("PRAGMA integrity_check").fetchall()
    problems = [str(row[0]) for row in rows]
    return [] if problems == ["ok"] else problems
