"""What went wrong in SQLite, read the same way by every application that keeps a SQLite file (the terminal's
journal, the ledger's store): the kind of failure behind a ``sqlite3`` error, from its result code (the low byte
of an extended code) or, where the driver gives none, from its text. Each application words it for its people."""

from __future__ import annotations

import enum

# Primary SQLite result codes (the low byte of an extended code).
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26


class SqliteFailure(enum.Enum):
    FULL = "full"
    READ_ONLY = "read_only"
    DAMAGED = "damaged"
    LOCKED = "locked"
    CANNOT_OPEN = "cannot_open"
    IO_ERROR = "io_error"
    OTHER = "other"


def sqlite_failure(err: BaseException) -> SqliteFailure:
    """The kind of failure ``err`` reports (a sqlite3 error, or a wrapper that says it in words only)."""
    code = (getattr(err, "sqlite_errorcode", 0) or 0) & 0xFF
    text = str(err)
    if code == SQLITE_FULL or "disk is full" in text:
        return SqliteFailure.FULL
    if code == SQLITE_READONLY or "readonly" in text:
        return SqliteFailure.READ_ONLY
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB) or "malformed" in text or "not a database" in text:
        return SqliteFailure.DAMAGED
    if code in (SQLITE_BUSY, SQLITE_LOCKED) or "locked" in text:
        return SqliteFailure.LOCKED
    if code == SQLITE_CANTOPEN or "unable to open" in text:
        return SqliteFailure.CANNOT_OPEN
    if code == SQLITE_IOERR or "disk I/O error" in text:
        return SqliteFailure.IO_ERROR
    return SqliteFailure.OTHER
