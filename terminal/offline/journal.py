"""The append-only, hash-chained journal: every financial or security event of this terminal.

Durability first: ``append`` returns only after the entry's transaction has committed, and with
``synchronous=FULL`` a commit has fsynced the WAL. The caller may say "approved" only after ``append`` returned;
if it raises, nothing was recorded and nothing may be acknowledged.

Ordering is by ``seq`` alone. The wall clock may jump backwards (NTP, a dead RTC battery); each entry keeps
both ``wall_ms`` and ``mono_ns`` as observed, and nothing ever sorts by them.

PII: the ``notes`` / ``prefs`` of ``member_update`` entries are stored encrypted in the ``pii`` column. The hash
chain covers the plaintext payload (that is what the ledger verifies), so they are decrypted on read.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid as uuid_mod
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any

import cbor2
from peewee import SqliteDatabase

from cardkit.errors import JournalError
from cardkit.journal import GENESIS_HASH, EntryKind, JournalEntry, canonical_cbor, chain_hash
from terminal.offline.db import db_path, guard, is_database_error, wrap_error, write_transaction
from terminal.offline.pii import PiiCipher
from terminal.offline.state import SYNCED_SEQ, TERMINAL_ID

# Payload fields that are personal data, per entry kind; they never reach the database in clear.
PII_FIELDS: dict[str, tuple[str, ...]] = {EntryKind.MEMBER_UPDATE: ("notes", "prefs"),
                                          EntryKind.MEMBER_SIGNUP: ("name", "phone", "birthday")}

_INSERT_COLUMNS = "seq, terminal_id, uuid, prev_hash, hash, wall_ms, mono_ns, cashier_id, kind, payload, pii"
# Blobs are cast on read so a row edited with the sqlite3 CLI (which may store TEXT) still reads back and then
# fails verification, rather than breaking the reader with a decoding error.
_COLUMNS = ("seq, terminal_id, uuid, CAST(prev_hash AS BLOB), CAST(hash AS BLOB), wall_ms, mono_ns, cashier_id, "
            "kind, CAST(payload AS BLOB), CAST(pii AS BLOB)")
_CHUNK = 500  # rows fetched per query when streaming the whole journal
_MAX_DEPTH = 16  # payloads are shallow; deeper nesting is a bug, not data


def entry_size(entry: JournalEntry) -> int:
    """Bytes the entry takes in a batch: canonical CBOR of its body plus its two hashes."""
    return len(canonical_cbor(entry.body())) + len(entry.prev_hash) + len(entry.hash)


_SCALARS = frozenset({str, int, bool, bytes, type(None)})


def _canonical_key_order(key: str) -> tuple[int, bytes]:
    # cbor2's canonical map order: shorter encoded key first, then bytewise. A text key's encoding is a header
    # that depends only on its UTF-8 length, followed by the UTF-8 bytes, so this sort key gives the same order.
    encoded = key.encode("utf-8")
    return len(encoded), encoded


# Payloads of one kind share their key set, so the canonical order is computed once per key set (bounded).
_KEY_ORDER: dict[tuple[Any, ...], tuple[str, ...]] = {}
_KEY_ORDER_MAX = 512


def _key_order(keys: tuple[Any, ...], where: str) -> tuple[str, ...]:
    plain: list[str] = []
    for key in keys:
        if type(key) is not str:
            if not isinstance(key, str):
                raise JournalError(f"journal payload keys must be strings (found {key!r} in {where})")
            # A StrEnum key: looked up as its plain value (equal hash and equality), stored as plain text.
            key = str.__str__(key)
        plain.append(key)
    order = tuple(sorted(plain, key=_canonical_key_order))
    if len(_KEY_ORDER) >= _KEY_ORDER_MAX:
        _KEY_ORDER.clear()
    _KEY_ORDER[keys] = order
    return order


def _normalise(value: Any, where: str, depth: int = 0) -> Any:
    """Copy ``value`` as plain CBOR data in canonical key order, refusing floats and anything the hash could
    not pin down.

    Because every map comes out already in canonical order, ``cbor2.dumps(result)`` equals
    ``canonical_cbor(result)`` -- several times faster on the append path, and checked by a property test.
    Exact-type checks come first so the common leaves cost one set lookup.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        if depth >= _MAX_DEPTH:
            raise JournalError(f"journal payload nests too deeply at {where}")
        keys = tuple(value)
        order = _KEY_ORDER.get(keys)
        if order is None:
            order = _key_order(keys, where)
        return {key: item if type(item := value[key]) in _SCALARS else _normalise(item, f"{where}.{key}", depth + 1)
                for key in order}
    if kind is list or kind is tuple:
        if depth >= _MAX_DEPTH:
            raise JournalError(f"journal payload nests too deeply at {where}")
        return [_normalise(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    # Subclasses: enums and the like become their plain values so the stored bytes are exactly what was hashed.
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, float):
        raise JournalError(f"journal payload field {where} is a float; amounts are integer minor units")
    if isinstance(value, (list, tuple)):
        return _normalise(list(value), where, depth)
    if isinstance(value, dict):
        return _normalise(dict(value), where, depth)
    raise JournalError(f"journal payload field {where} has unsupported type {type(value).__name__}")


def _fast_cbor(normalised: Any) -> bytes:
    """Canonical CBOR of a value that went through ``_normalise`` (maps already in canonical order)."""
    return cbor2.dumps(normalised)


def _uuid_text_and_bytes(raw: object) -> tuple[str, bytes]:
    """The canonical text (stored, unique) and the 16 bytes (hashed) of a UUID from ``new_uuid()``."""
    # Fast path for the canonical lowercase 8-4-4-4-12 form every real UUID source produces; anything else
    # (upper case, braces, no dashes) goes through uuid.UUID and is stored in canonical text.
    if (type(raw) is str and len(raw) == 36 and raw[8] == raw[13] == raw[18] == raw[23] == "-"
            and raw == raw.lower()):
        try:
            return raw, bytes.fromhex(raw.replace("-", ""))
        except ValueError:
            pass
    try:
        parsed = uuid_mod.UUID(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError, AttributeError):
        raise JournalError(f"new_uuid() returned {raw!r}, which is not a UUID") from None
    return str(parsed), parsed.bytes


class Journal:
    """One terminal's journal in an open database."""

    def __init__(
        self,
        db: SqliteDatabase,
        terminal_id: str,
        *,
        clock_ms: Callable[[], int],
        mono_ns: Callable[[], int],
        new_uuid: Callable[[], str],
        pii: PiiCipher,
    ) -> None:
        if not terminal_id:
            raise JournalError("a journal needs a terminal id")
        self._db = db
        self.terminal_id = terminal_id
        self._clock_ms = clock_ms
        self._mono_ns = mono_ns
        self._new_uuid = new_uuid
        self._pii = pii
        self._path = db_path(db)
        self._claim_terminal_id()

    def _claim_terminal_id(self) -> None:
        """Bind the database to one terminal id; a journal must never mix two terminals' sequences."""
        blob = cbor2.dumps(self.terminal_id)
        with write_transaction(self._db, "checking the terminal id") as conn:
            conn.execute("INSERT OR IGNORE INTO sync_state (key, value) VALUES (?, ?)", (TERMINAL_ID, blob))
            stored = cbor2.loads(conn.execute("SELECT value FROM sync_state WHERE key = ?",
                                              (TERMINAL_ID,)).fetchone()[0])
        if stored != self.terminal_id:
            raise JournalError(
                f"the database {self._path} belongs to terminal {stored!r}, not {self.terminal_id!r}; "
                "use that terminal's data folder"
            )

    # -- writing ------------------------------------------------------------------------------------------
    def append(self, kind: str, payload: dict[str, Any], cashier_id: str | None = None, *,
               entry_uuid: str | None = None) -> JournalEntry:
        """Record one entry durably and return it; raises JournalError (nothing recorded) on any failure.

        ``entry_uuid``: the uuid the entry must carry (an operation the ledger authorized under it), else a new one."""
        if not isinstance(kind, str) or not kind:
            raise JournalError("a journal entry needs a kind")
        if not isinstance(payload, dict):
            raise JournalError("a journal payload must be a dict")
        if cashier_id is not None and not isinstance(cashier_id, str):
            raise JournalError("a cashier id must be text")
        # EntryKind (a StrEnum) and friends are stored and returned as plain text, like everything read back.
        kind = kind if type(kind) is str else str.__str__(kind)
        if cashier_id is not None and type(cashier_id) is not str:
            cashier_id = str.__str__(cashier_id)
        body = _normalise(payload, "payload")
        entry_uuid, uuid_bytes = _uuid_text_and_bytes(self._new_uuid() if entry_uuid is None else entry_uuid)
        payload_cbor = _fast_cbor(body)
        secret_fields = PII_FIELDS.get(kind)
        pii_blob: bytes | None = None
        stored_payload = payload_cbor
        if secret_fields and any(name in body for name in secret_fields):
            stored_payload = _fast_cbor({k: v for k, v in body.items() if k not in secret_fields})
            secret = {k: v for k, v in body.items() if k in secret_fields}
            pii_blob = self._pii.encrypt(_fast_cbor(secret), table="journal", column="pii", row_id=entry_uuid)
        card, member = body.get("card"), body.get("member")
        card = card if type(card) is str else None
        member = member if type(member) is str else None

        # Hot path (one call per sale): plain try/except rather than nested context managers, and the payload
        # is encoded once. Canonical CBOR of a definite-length array is its header byte followed by each item's
        # canonical encoding, so the body [terminal_id, seq, uuid, wall, mono, cashier, kind, payload] is the
        # 7-item head re-headed as 8 items plus the payload bytes already made. Every test and the crash test
        # check these hashes with entry.py's chain_hash.
        try:
            conn = self._db.connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                head = conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev_hash = (int(head[0]) + 1, bytes(head[1])) if head else (1, GENESIS_HASH)
                # Clocks are read under the write lock so mono_ns follows seq within one process.
                wall_ms, mono_ns = int(self._clock_ms()), int(self._mono_ns())
                head_cbor = _fast_cbor([self.terminal_id, seq, uuid_bytes, wall_ms, mono_ns, cashier_id, kind])
                digest = hashlib.sha256(prev_hash + b"\x88" + head_cbor[1:] + payload_cbor).digest()
                conn.execute(
                    f"INSERT INTO journal ({_INSERT_COLUMNS}, card_id, member_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, self.terminal_id, entry_uuid, prev_hash, digest, wall_ms, mono_ns, cashier_id, kind,
                     stored_payload, pii_blob, card, member),
                )
                conn.execute("COMMIT")  # synchronous=FULL: the WAL is fsynced before this returns
            except BaseException:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):  # a failing ROLLBACK would only hide the real error
                        conn.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as exc:
            raise JournalError(f"entry id {entry_uuid} is already in the journal; nothing was recorded",
                               orig=exc) from exc
        except JournalError:
            raise
        except Exception as exc:
            if not is_database_error(exc):
                raise
            raise wrap_error(exc, self._path, f"recording a {kind} entry") from exc
        return JournalEntry(
            terminal_id=self.terminal_id, seq=seq, uuid=entry_uuid, prev_hash=prev_hash, wall_ms=wall_ms,
            mono_ns=mono_ns, cashier_id=cashier_id, kind=kind, payload=body, hash=digest,
        )

    def mark_synced(self, upto_seq: int) -> int:
        """Record that the ledger has every entry up to ``upto_seq``; only ever moves forward. Returns the mark."""
        with write_transaction(self._db, "recording the sync position") as conn:
            last = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()[0])
            if upto_seq > last:
                raise JournalError(
                    f"the ledger acknowledged entry {upto_seq} but the journal ends at {last}; "
                    "refusing to mark entries that do not exist"
                )
            current = self._synced_seq(conn)
            if upto_seq <= current:
                return current
            conn.execute("INSERT OR REPLACE INTO sync_state (key, value) VALUES (?, ?)",
                         (SYNCED_SEQ, cbor2.dumps(upto_seq)))
        return upto_seq

    # -- reading ------------------------------------------------------------------------------------------
    @staticmethod
    def _synced_seq(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM sync_state WHERE key = ?", (SYNCED_SEQ,)).fetchone()
        return int(cbor2.loads(row[0])) if row else 0

    def _query(self, sql: str, params: tuple[Any, ...], action: str) -> list[tuple[Any, ...]]:
        with guard(self._path, action):
            return list(self._db.connection().execute(sql, params).fetchall())

    def _to_entry(self, row: tuple[Any, ...]) -> JournalEntry:
        seq, terminal_id, entry_uuid, prev_hash, hash_, wall_ms, mono_ns, cashier_id, kind, payload, pii = row
        body = cbor2.loads(payload)
        if pii is not None:
            body.update(self._pii.decrypt_value(bytes(pii), table="journal", column="pii", row_id=entry_uuid))
        return JournalEntry(
            terminal_id=terminal_id, seq=int(seq), uuid=entry_uuid, prev_hash=bytes(prev_hash), wall_ms=int(wall_ms),
            mono_ns=int(mono_ns), cashier_id=cashier_id, kind=kind, payload=body, hash=bytes(hash_),
        )

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest entry, 0 for an empty journal."""
        return int(self._query("SELECT COALESCE(MAX(seq), 0) FROM journal", (), "reading the journal")[0][0])

    @property
    def synced_seq(self) -> int:
        """Every entry up to this one has been acknowledged by the ledger."""
        with guard(self._path, "reading the sync position"):
            return self._synced_seq(self._db.connection())

    @property
    def queue_depth(self) -> int:
        """Entries recorded but not yet acknowledged by the ledger."""
        return self.last_seq - self.synced_seq

    def clock_behind_ms(self) -> int:
        """How far the wall clock is now behind the newest entry's ``wall_ms``; 0 when it is not.

        A positive value means the clock jumped backwards (NTP correction, dead RTC battery). Recording carries on
        (order is by seq), but time windows such as "offline spend per day" read wall time, so the app can warn.
        """
        rows = self._query("SELECT wall_ms FROM journal ORDER BY seq DESC LIMIT 1", (), "reading the journal")
        return max(0, int(rows[0][0]) - int(self._clock_ms())) if rows else 0

    def entries(self, after_seq: int = 0, limit: int | None = None) -> list[JournalEntry]:
        """Entries with ``seq > after_seq``, oldest first."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM journal WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, -1 if limit is None else limit), "reading the journal",
        )
        return [self._to_entry(row) for row in rows]

    def iter_entries(self, after_seq: int = 0) -> Iterator[JournalEntry]:
        """Stream every entry after ``after_seq`` in chunks (constant memory for long journals)."""
        cursor = after_seq
        while True:
            chunk = self.entries(after_seq=cursor, limit=_CHUNK)
            yield from chunk
            if len(chunk) < _CHUNK:
                return
            cursor = chunk[-1].seq

    def get(self, entry_uuid: str) -> JournalEntry | None:
        """The entry with this uuid (refunds and voids name their original this way), or None."""
        rows = self._query(f"SELECT {_COLUMNS} FROM journal WHERE uuid = ?", (entry_uuid,), "reading the journal")
        return self._to_entry(rows[0]) if rows else None

    def unsynced(self, max_bytes: int) -> list[JournalEntry]:
        """Oldest unacknowledged entries whose ``entry_size`` sum stays within ``max_bytes``.

        At least one entry is returned when any is pending, even a single one larger than ``max_bytes``:
        otherwise one oversized entry would stop sync for good.
        """
        batch: list[JournalEntry] = []
        total = 0
        for entry in self.iter_entries(after_seq=self.synced_seq):
            size = entry_size(entry)
            if batch and total + size > max_bytes:
                break
            batch.append(entry)
            total += size
        return batch

    def _history(self, column: str, value: str, limit: int | None, after_seq: int,
                 newest_first: bool) -> list[JournalEntry]:
        order = "DESC" if newest_first else "ASC"
        rows = self._query(
            f"SELECT {_COLUMNS} FROM journal WHERE {column} = ? AND seq > ? ORDER BY seq {order} LIMIT ?",
            (value, after_seq, -1 if limit is None else limit), f"reading the history of {column}",
        )
        return [self._to_entry(row) for row in rows]

    def entries_for_card(self, card_id: str, limit: int | None = 20, *, after_seq: int = 0,
                         newest_first: bool = True) -> list[JournalEntry]:
        """Entries whose payload names this card (``payload["card"]``): newest first for history screens;
        ``newest_first=False, limit=None, after_seq=N`` gives the entries to fold onto a snapshot."""
        return self._history("card_id", card_id, limit, after_seq, newest_first)

    def entries_for_member(self, member_id: str, limit: int | None = 20, *, after_seq: int = 0,
                           newest_first: bool = True) -> list[JournalEntry]:
        """Entries whose payload names this member (``payload["member"]``); ordering as ``entries_for_card``."""
        return self._history("member_id", member_id, limit, after_seq, newest_first)

    def verify_chain(self) -> int | None:
        """Check every entry's hash, link and sequence number; return the first bad seq, or None if intact.

        A gap reports the first missing seq. A row whose PII cannot be decrypted (tampered ciphertext or wrong
        key) reports its own seq.
        """
        prev = GENESIS_HASH
        expected = 1
        cursor = 0
        while True:
            rows = self._query(f"SELECT {_COLUMNS} FROM journal WHERE seq > ? ORDER BY seq LIMIT ?",
                               (cursor, _CHUNK), "verifying the journal")
            for row in rows:
                seq = int(row[0])
                if seq != expected:
                    return expected
                try:
                    entry = self._to_entry(row)
                except (JournalError, ValueError, TypeError, AttributeError, cbor2.CBORDecodeError):
                    return seq
                if (entry.terminal_id != self.terminal_id or entry.prev_hash != prev
                        or chain_hash(prev, entry.body()) != entry.hash):
                    return seq
                prev = entry.hash
                expected += 1
            if len(rows) < _CHUNK:
                return None
            cursor = int(rows[-1][0])
