"""Versioned schema migrations for the terminal database, tracked in ``PRAGMA user_version``.

Each migration is a function that takes the raw connection inside an open transaction and moves the schema
from version ``n - 1`` to ``n``. They are written in plain SQL on purpose: a migration is frozen history and
must keep doing exactly what it did when it shipped, whatever later happens to ``models.py``
(``tests/unit/test_offline_migrations.py`` checks the two agree at the latest version).

Rules: never edit a shipped migration, append a new one; never drop a journal column (entries are evidence);
each migration and its ``user_version`` bump commit together, so a crash leaves the old or the new schema.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from peewee import SqliteDatabase

from cardkit.errors import JournalError
from terminal.offline.db import db_path, guard, write_transaction


def _v1_journal(conn: sqlite3.Connection) -> None:
    """The append-only journal and the key/value sync state."""
    conn.execute(
        """CREATE TABLE journal (
            seq INTEGER PRIMARY KEY,           -- per-terminal sequence, 1.. without gaps
            terminal_id TEXT NOT NULL,
            uuid TEXT NOT NULL UNIQUE,
            prev_hash BLOB NOT NULL,
            hash BLOB NOT NULL,
            wall_ms INTEGER NOT NULL,          -- wall clock (may jump); kept, never used for ordering
            mono_ns INTEGER NOT NULL,          -- monotonic clock of the writing process
            cashier_id TEXT,
            kind TEXT NOT NULL,
            payload BLOB NOT NULL,             -- canonical CBOR of the payload minus its PII fields
            pii BLOB,                          -- AES-GCM of canonical CBOR of the PII fields, or NULL
            card_id TEXT,                      -- copies of payload["card"] / ["member"] for history lookups
            member_id TEXT
        )"""
    )
    conn.execute("CREATE INDEX journal_card ON journal (card_id, seq)")
    conn.execute("CREATE INDEX journal_member ON journal (member_id, seq)")
    conn.execute("CREATE TABLE sync_state (key TEXT PRIMARY KEY, value BLOB)")


def _v2_member_cache(conn: sqlite3.Connection) -> None:
    """Member snapshots from the ledger, PII encrypted; card ids in their own table."""
    conn.execute(
        """CREATE TABLE member_cache (
            member_id TEXT PRIMARY KEY,
            tier TEXT NOT NULL,
            balance INTEGER NOT NULL,          -- stored value, integer minor units of currency
            points INTEGER NOT NULL,
            currency TEXT NOT NULL,
            coupons BLOB NOT NULL,             -- canonical CBOR list of coupon dicts
            yearly_spend INTEGER NOT NULL,
            snapshot_version INTEGER NOT NULL,
            name_enc BLOB NOT NULL,
            phone_enc BLOB NOT NULL,
            email_enc BLOB NOT NULL,
            notes_enc BLOB NOT NULL,
            prefs_enc BLOB NOT NULL
        )"""
    )
    conn.execute(
        """CREATE TABLE member_card (
            card_id TEXT PRIMARY KEY,
            member_id TEXT NOT NULL REFERENCES member_cache (member_id) ON DELETE CASCADE
        )"""
    )
    conn.execute("CREATE INDEX member_card_member ON member_card (member_id)")


def _v3_cashiers_documents(conn: sqlite3.Connection) -> None:
    """Cashiers with PIN hashes and lockout, applied document versions, and append-only enforcement."""
    conn.execute(
        """CREATE TABLE cashier (
            cashier_id TEXT PRIMARY KEY,
            name_enc BLOB NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('cashier', 'supervisor', 'technician')),
            pin_salt BLOB NOT NULL,
            pin_hash BLOB NOT NULL,
            pin_params TEXT NOT NULL,          -- e.g. scrypt$16384$8$1, so hashes can be upgraded later
            failed_attempts INTEGER NOT NULL DEFAULT 0,
            locked_until_ms INTEGER NOT NULL DEFAULT 0
        )"""
    )
    conn.execute(
        """CREATE TABLE document_version (
            name TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            applied_ms INTEGER NOT NULL
        )"""
    )
    # The journal is evidence: refuse edits and deletions at the database level too, not only in our code.
    conn.execute(
        """CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
           BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END"""
    )
    conn.execute(
        """CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
           BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END"""
    )


Migration = Callable[[sqlite3.Connection], None]

# MIGRATIONS[n - 1] upgrades a database from version n - 1 to n.
MIGRATIONS: list[Migration] = [_v1_journal, _v2_member_cache, _v3_cashiers_documents]
LATEST = len(MIGRATIONS)


def schema_version(db: SqliteDatabase) -> int:
    with guard(db_path(db), "reading the schema version"):
        return int(db.connection().execute("PRAGMA user_version").fetchone()[0])


def migrate(db: SqliteDatabase, target: int = LATEST) -> int:
    """Apply pending migrations up to ``target``; return the resulting version.

    Each step runs under ``BEGIN IMMEDIATE`` and re-reads the version inside the lock, so two processes opening a
    fresh database at the same moment do not both create the tables.
    """
    current = schema_version(db)
    if current > LATEST:
        raise JournalError(
            f"the database {db_path(db)} was written by a newer cardpos (schema version {current}; "
            f"this version knows up to {LATEST}); upgrade cardpos"
        )
    while current < target:
        with write_transaction(db, "upgrading the database schema") as conn:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current >= target:
                break
            MIGRATIONS[current](conn)
            current += 1
            conn.execute(f"PRAGMA user_version = {current:d}")
    return current
