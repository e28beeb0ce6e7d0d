"""Database errors turned into one ``LedgerStorageError`` sentence where they leave the ledger.

peewee re-raises a driver's error as ``peewee.X(driver_error, *args)``; ``sqlite3`` errors carry a result code
(``sqlite_errorcode``) and ``psycopg2`` errors a SQLSTATE (``pgcode``, None when the client lost the server).
``storage_error`` reads those to say what happened -- a full disk, a read-only or damaged file, a lock held by
another program, a lost connection -- and keeps the original in ``orig``. The admin commands (``ledger.cli``)
and the HTTP API (``ledger.api``) are the boundaries that use it; everything below them lets errors rise.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import peewee

from cardkit.sqlite_failures import sqlite_failure
from ledger.errors import LedgerStorageError, StorageFailure

# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
PG_CONFLICTS = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available
PG_DISK_FULL = "53100"
PG_READ_ONLY = "25006"  # read_only_sql_transaction: a standby, or default_transaction_read_only
PG_IO_ERROR = "58030"
PG_DAMAGED = {"XX001", "XX002"}  # data_corrupted, index_corrupted
PG_GONE_CLASSES = ("08", "57P")  # connection exception; admin/crash shutdown, cannot connect now
PG_TOO_MANY_CONNECTIONS = "53300"

MAX_DETAIL = 160  # characters of the driver's own text kept in a message


def _psycopg2_error_type() -> type[Exception] | None:
    """``psycopg2.Error`` if psycopg2 was ever imported (no PostgreSQL error can exist otherwise)."""
    module = sys.modules.get("psycopg2")
    error = getattr(module, "Error", None)
    return error if isinstance(error, type) and issubclass(error, Exception) else None


def database_error_types() -> tuple[type[Exception], ...]:
    """Every exception class this module words: peewee's, sqlite3's and (when loaded) psycopg2's."""
    pg = _psycopg2_error_type()
    base: tuple[type[Exception], ...] = (peewee.DatabaseError, peewee.InterfaceError, sqlite3.Error)
    return (*base, pg) if pg is not None else base


def is_database_error(exc: BaseException) -> bool:
    return isinstance(exc, database_error_types())


def driver_errors(exc: BaseException) -> list[BaseException]:
    """The sqlite3 or psycopg2 errors behind ``exc``, outermost first: peewee keeps each as its first argument,
    and an error raised while cleaning up (a ROLLBACK after SQLite already rolled back on a full disk) carries
    the one that caused it as ``__context__``."""
    pg = _psycopg2_error_type()
    drivers: tuple[type[BaseException], ...] = (sqlite3.Error, pg) if pg is not None else (sqlite3.Error,)
    found: list[BaseException] = []
    seen: BaseException | None = exc
    for _ in range(8):  # bounded walk down the chain
        if seen is None:
            break
        if isinstance(seen, drivers):
            found.append(seen)
        elif seen.args and isinstance(seen.args[0], drivers) and seen.args[0] not in found:
            found.append(seen.args[0])
        seen = seen.__cause__ or seen.__context__
    return found


def driver_error(exc: BaseException) -> BaseException | None:
    """The driver error that says best what went wrong (the first one a cause can be read from)."""
    errors = driver_errors(exc)
    return next((err for err in errors if _classify_driver(err) is not StorageFailure.OTHER),
                errors[0] if errors else None)


def _detail(exc: BaseException) -> str:
    """The driver's text on one line (psycopg2's run over several), bounded."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL - 3] + "..."


def classify(exc: BaseException) -> StorageFailure:
    err = driver_error(exc)
    if err is None:
        return StorageFailure.OTHER  # peewee's own complaint (no connection, unbound query): a fault
    return _classify_driver(err)


def _classify_driver(err: BaseException) -> StorageFailure:
    return _classify_sqlite(err) if isinstance(err, sqlite3.Error) else _classify_postgres(err)


def _classify_sqlite(err: sqlite3.Error) -> StorageFailure:
    return StorageFailure[sqlite_failure(err).name]  # the kernel reads SQLite's failures for both applications


def _classify_postgres(err: BaseException) -> StorageFailure:
    code = str(getattr(err, "pgcode", None) or "")
    if code in PG_CONFLICTS:
        return StorageFailure.CONFLICT
    if code == PG_DISK_FULL:
        return StorageFailure.FULL
    if code == PG_READ_ONLY:
        return StorageFailure.READ_ONLY
    if code == PG_IO_ERROR:
        return StorageFailure.IO_ERROR
    if code in PG_DAMAGED:
        return StorageFailure.DAMAGED
    if code.startswith(PG_GONE_CLASSES) or code == PG_TOO_MANY_CONNECTIONS:
        return StorageFailure.CONNECTION_LOST
    names = {cls.__name__ for cls in type(err).__mro__}
    if not code and names & {"OperationalError", "InterfaceError"}:
        return StorageFailure.CONNECTION_LOST  # client side: the server went away or never answered
    return StorageFailure.OTHER


def _sentence(failure: StorageFailure, where: str, detail: str, *, postgres: bool, opening: bool) -> str:
    unsaved = "the change in progress was not saved"
    if failure is StorageFailure.FULL:
        return f"the disk holding {where} is full: {unsaved}; free space and retry"
    if failure is StorageFailure.READ_ONLY and postgres:
        return f"{where} accepts no writes (a read-only server or transaction): {unsaved}; use the primary server"
    if failure is StorageFailure.READ_ONLY:
        return (f"{where} is read-only: {unsaved}; check the file and folder permissions and the disk mount")
    if failure is StorageFailure.CANNOT_OPEN:
        return (f"cannot open {where}: the file or its folder is read-only or missing (the write-ahead log is kept "
                "beside the file); check the permissions and the disk mount")
    if failure is StorageFailure.DAMAGED:
        return f"{where} is damaged ({detail}); restore it from a backup"
    if failure is StorageFailure.IO_ERROR:
        return f"the disk reported an input/output error on {where}: {unsaved}; check the disk and retry"
    if failure is StorageFailure.LOCKED:
        return f"{where} is locked by another program: {unsaved}; retry once that program lets go of it"
    if failure is StorageFailure.CONFLICT:
        return f"{where} was busy with a conflicting change: {unsaved}; retry"
    if failure is StorageFailure.CONNECTION_LOST and opening:
        return f"cannot connect to {where} ({detail}): check that the database server is up and reachable"
    if failure is StorageFailure.CONNECTION_LOST:
        return (f"the connection to {where} failed ({detail}): check that the database server is up and reachable; "
                "a change in progress may not have been saved, so check it before retrying")
    return f"{where} refused the operation: {detail}"


def storage_error(exc: BaseException, where: str = "the ledger database", *,
                  opening: bool = False) -> LedgerStorageError:
    """One clear sentence for a failed database operation on ``where`` (``opening``: while connecting, when no
    change can have been in progress); the original error is kept in ``orig``."""
    if isinstance(exc, LedgerStorageError):
        return exc
    err = driver_error(exc)
    failure = classify(exc)
    postgres = err is not None and not isinstance(err, sqlite3.Error)
    message = _sentence(failure, where, _detail(err or exc), postgres=postgres, opening=opening)
    return LedgerStorageError(message, failure=failure, orig=exc)


def is_contention(exc: BaseException) -> bool:
    """A lock held elsewhere or a conflicting transaction: worth a retry in a moment."""
    return classify(exc) in (StorageFailure.LOCKED, StorageFailure.CONFLICT)


@contextmanager
def guard(where: Callable[[], str], *, opening: bool = False) -> Iterator[None]:
    """Turn a database error raised inside the block into a ``LedgerStorageError`` naming ``where()``."""
    try:
        yield
    except LedgerStorageError:
        raise
    except Exception as exc:
        if not is_database_error(exc):
            raise
        raise storage_error(exc, where(), opening=opening) from exc
