"""Small durable facts about syncing: a key/value table plus the versions of applied ledger documents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cbor2
from peewee import SqliteDatabase

from terminal.offline.db import db_path, guard
from terminal.offline.models import DocumentVersionRow, SyncStateRow

# Keys used by the store itself; other modules pick their own dotted names (e.g. "sync.backoff_until_ms").
LAST_SYNC_MS = "sync.last_sync_ms"
LAST_ERROR = "sync.last_error"
SYNCED_SEQ = "journal.synced_seq"
TERMINAL_ID = "terminal.id"
MEMBERS_VERSION = "members.snapshot_version"
MEMBERS_SYNCED_SEQ = "members.synced_seq_at_snapshot"
"""The journal's synced seq when the member snapshot was applied: the ledger built that snapshot after applying
this terminal's entries up to it, so the counter folds only later entries on top."""
PII_KEY_CHECK = "pii.key_check"
DOCUMENT_MARK_PREFIX = "documents.applied."
"""+ a document kind: ``[version, SHA-256 of the document's bytes]`` of the newest document of that kind applied.
Pulled versions only move forward from this mark (``terminal/sync/versions.py``)."""

QUARANTINED_SEQS = "sync.quarantined_seqs"
"""Seqs of this terminal's entries the ledger journaled but did not apply (the newest kept; see SyncService)."""


class SyncState:
    """Key/value state (values are any CBOR-encodable object) and applied document versions."""

    def __init__(self, db: SqliteDatabase, *, clock_ms: Callable[[], int]) -> None:
        self._db = db
        self._clock_ms = clock_ms
        self._path = db_path(db)

    def get(self, key: str, default: Any = None) -> Any:
        with guard(self._path, f"reading sync state {key}"):
            row = SyncStateRow.select(SyncStateRow.value).where(SyncStateRow.key == key).bind(self._db).first()
        if row is None or row.value is None:
            return default
        return cbor2.loads(bytes(row.value))

    def set(self, key: str, value: Any) -> None:
        blob = cbor2.dumps(value, canonical=True)
        with guard(self._path, f"saving sync state {key}"), self._db.atomic():
            (SyncStateRow.insert(key=key, value=blob)
             .on_conflict(conflict_target=[SyncStateRow.key], update={SyncStateRow.value: blob})
             .execute(self._db))

    def delete(self, key: str) -> None:
        with guard(self._path, f"clearing sync state {key}"):
            SyncStateRow.delete().where(SyncStateRow.key == key).execute(self._db)

    # -- well-known values --------------------------------------------------------------------------------
    @property
    def last_sync_ms(self) -> int | None:
        """Wall-clock time (epoch ms) of the last successful sync, or None if never."""
        value = self.get(LAST_SYNC_MS)
        return int(value) if value is not None else None

    @last_sync_ms.setter
    def last_sync_ms(self, value: int | None) -> None:
        self.set(LAST_SYNC_MS, value)

    @property
    def last_error(self) -> str | None:
        """One sentence describing the last failed sync, or None after a success."""
        value = self.get(LAST_ERROR)
        return str(value) if value is not None else None

    @last_error.setter
    def last_error(self, value: str | None) -> None:
        self.set(LAST_ERROR, value)

    # -- documents (trust list, revocations, rules, member snapshots) ---------------------------------------
    def document_version(self, name: str) -> int:
        """Version of the named document last applied, 0 if none."""
        with guard(self._path, f"reading the version of {name}"):
            row = (DocumentVersionRow.select(DocumentVersionRow.version)
                   .where(DocumentVersionRow.name == name).bind(self._db).first())
        return int(row.version) if row is not None else 0

    def set_document_version(self, name: str, version: int) -> None:
        now = self._clock_ms()
        with guard(self._path, f"saving the version of {name}"), self._db.atomic():
            (DocumentVersionRow.insert(name=name, version=version, applied_ms=now)
             .on_conflict(conflict_target=[DocumentVersionRow.name],
                          update={DocumentVersionRow.version: version, DocumentVersionRow.applied_ms: now})
             .execute(self._db))

    def document_versions(self) -> dict[str, int]:
        with guard(self._path, "reading document versions"):
            rows = DocumentVersionRow.select().bind(self._db)
            return {str(row.name): int(row.version) for row in rows}

    # -- the newest document applied per kind: versions only move forward from here -------------------------
    def document_mark(self, name: str) -> tuple[int, bytes] | None:
        """(version, SHA-256 of the bytes) of the newest ``name`` document applied, or None before the first."""
        value = self.get(DOCUMENT_MARK_PREFIX + name)
        if (not isinstance(value, list) or len(value) != 2 or type(value[0]) is not int
                or not isinstance(value[1], bytes)):
            return None
        return value[0], value[1]

    def set_document_mark(self, name: str, version: int, digest: bytes) -> None:
        self.set(DOCUMENT_MARK_PREFIX + name, [version, digest])
