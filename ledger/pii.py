"""Members' personal data at the ledger: encrypted at rest, found through keyed hashes. Every read and write of
a member's name, phone, email, notes and preferences goes through this module.

- **Encrypted** with AES-256-GCM (``cardkit.fieldcrypt``), one value per column, the associated data binding it
  to ``cardpos-ledger-pii|table|column|row id``: ``member.name_enc, phone_enc, email_enc, notes_enc, prefs_enc``
  (row id: the member id), and the ``notes``/``prefs`` of ``member_update`` entries, which the ledger keeps in
  ``applied_entry.pii`` (row id ``terminal/seq``) apart from the rest of the payload. An entry's hash covers the
  whole clear payload, so ``entry_payload`` puts the two halves back together before anyone checks it.
- **Found** by keyed hashes (HMAC-SHA256 under a second, separate key) of the normalised phone (its digits), the
  normalised email (NFKC, case-folded) and of each normalised word of the name: ``member.phone_hash``,
  ``member.email_hash`` and ``member_name_word`` rows, all indexed. A hash lets the ledger find an exact value
  without holding it; without the key, guessing phone numbers against a stolen database gets nowhere.
- **Keys**: ``<ledger dir>/keys/pii.key`` and ``keys/pii-lookup.key`` (32 random bytes each, 0600), made at
  ``ledger init``. ``key_record`` rows ``pii`` and ``pii-lookup`` hold a check value (an encryption of a constant;
  an HMAC of one) tying the database to its keys: a lost or swapped key file is reported in one sentence, and a
  fresh key is never made for a database that already holds data under another.
- **Migration**: a ledger of the older layout (those fields in clear) is encrypted in place when it is next
  opened, in one transaction; SQLite then rewrites the file (VACUUM) and empties its WAL so no clear copy stays
  in free pages, PostgreSQL rewrites the two tables (VACUUM FULL).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cbor2
import peewee
from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

from cardkit.fieldcrypt import FieldCipher, create_key_file, read_key_file
from cardkit.journal import EntryKind, JournalEntry, payload_cbor
from cardkit.locations import private_dir, restrict_mode
from ledger import store
from ledger.errors import LedgerError

AAD_DOMAIN = "cardpos-ledger-pii"
CIPHER_KEY_NAME = "pii.key"
LOOKUP_KEY_NAME = "pii-lookup.key"
CIPHER_KID = "pii"
LOOKUP_KID = "pii-lookup"
CIPHER_KIND = "pii_aes256gcm"
LOOKUP_KIND = "pii_lookup_hmac_sha256"
_CHECK_PLAINTEXT = b"cardpos ledger PII key check v1"
_CHECK_NOT_AFTER = 2**40

MEMBER_TABLE = "member"
ENTRY_TABLE = "applied_entry"
TEXT_FIELDS = ("name", "phone", "email", "notes")
ENTRY_PII_FIELDS: dict[str, tuple[str, ...]] = {EntryKind.MEMBER_UPDATE.value: ("notes", "prefs"),
                                                EntryKind.MEMBER_SIGNUP.value: ("name", "phone", "birthday")}
"""Payload fields that are personal data, per entry kind; the ledger stores them only in ``applied_entry.pii``."""

MAX_NAME_WORDS = 16  # words of one name indexed for search (a name is not an essay)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class MemberDetails:
    """A member's personal data, in clear, in memory only."""

    name: str
    phone: str = ""
    email: str = ""
    notes: str = ""
    prefs: dict[str, Any] = field(default_factory=dict)


# -- normalisation for lookups (pure) ---------------------------------------------------------------------------
def normal_phone(text: str) -> str:
    """The digits of a phone number (full-width digits too): '+86 139-0101 7788' and '(86) 13901017788' agree."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if "0" <= ch <= "9")


def normal_email(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold()


def name_words(text: str) -> list[str]:
    """The distinct words of a name, NFKC-normalised and case-folded, in order (at most ``MAX_NAME_WORDS``)."""
    words = dict.fromkeys(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))
    return list(words)[:MAX_NAME_WORDS]


# -- the keys ---------------------------------------------------------------------------------------------------
class MemberPii:
    """The ledger's PII cipher and lookup key."""

    def __init__(self, cipher_key: bytes, lookup_key: bytes) -> None:
        self.cipher = FieldCipher(cipher_key, domain=AAD_DOMAIN, error=LedgerError)
        self._lookup_key = lookup_key
        self._lookup_mac = hmac.new(lookup_key, digestmod=hashlib.sha256)  # keyed once; copied per value

    def lookup_hash(self, kind: str, normal: str) -> str:
        """HMAC-SHA256 of one normalised value, hex; ``kind`` (phone, email, name) keeps the spaces apart."""
        mac = self._lookup_mac.copy()  # the same HMAC as hmac.new(key, ...), without keying it again (the import
        mac.update(f"{kind}\x00{normal}".encode())  # hashes five values per member)
        return mac.hexdigest()

    def seal(self, table: str, column: str, row_id: str, value: Any) -> bytes:
        if isinstance(value, str):
            return self.cipher.encrypt_text(value, table=table, column=column, row_id=row_id)
        return self.cipher.encrypt_value(value, table=table, column=column, row_id=row_id)

    def member_columns(self, member_id: str, details: MemberDetails) -> dict[str, bytes | str | None]:
        """The ``member`` columns holding ``details``: ciphertexts and lookup hashes."""
        columns: dict[str, bytes | str | None] = {
            f"{name}_enc": self.seal(MEMBER_TABLE, name, member_id, getattr(details, name)) for name in TEXT_FIELDS}
        columns["prefs_enc"] = self.seal(MEMBER_TABLE, "prefs", member_id, dict(details.prefs))
        phone, email = normal_phone(details.phone), normal_email(details.email)
        columns["phone_hash"] = self.lookup_hash("phone", phone) if phone else None
        columns["email_hash"] = self.lookup_hash("email", email) if email else None
        return columns

    def details_of(self, member: store.Member) -> MemberDetails:
        member_id = str(member.member_id)
        text = {name: self.cipher.decrypt_text(bytes(getattr(member, f"{name}_enc")), table=MEMBER_TABLE,
                                               column=name, row_id=member_id) for name in TEXT_FIELDS}
        prefs = self.cipher.decrypt_value(bytes(member.prefs_enc), table=MEMBER_TABLE, column="prefs",
                                          row_id=member_id)
        return MemberDetails(prefs=dict(prefs) if isinstance(prefs, dict) else {}, **text)

    def key_check(self) -> tuple[bytes, bytes]:
        """Check values for the two keys (stored in ``key_record``; neither reveals its key)."""
        cipher_check = self.cipher.encrypt(_CHECK_PLAINTEXT, table="key_record", column="public_key",
                                           row_id=CIPHER_KID)
        lookup_check = hmac.new(self._lookup_key, _CHECK_PLAINTEXT, hashlib.sha256).digest()
        return cipher_check, lookup_check

    def matches(self, cipher_check: bytes, lookup_check: bytes) -> tuple[bool, bool]:
        try:
            self.cipher.decrypt(cipher_check, table="key_record", column="public_key", row_id=CIPHER_KID)
            cipher_ok = True
        except LedgerError:
            cipher_ok = False
        expected = hmac.new(self._lookup_key, _CHECK_PLAINTEXT, hashlib.sha256).digest()
        return cipher_ok, hmac.compare_digest(expected, lookup_check)


_active: MemberPii | None = None


def active() -> MemberPii:
    """The keys of the ledger opened in this process (``open_keys``)."""
    if _active is None:
        raise LedgerError("the ledger's PII keys are not open; call ledger.home.open_ledger first")
    return _active


def key_paths(ledger_dir: Path) -> tuple[Path, Path]:
    keys = ledger_dir / "keys"
    return keys / CIPHER_KEY_NAME, keys / LOOKUP_KEY_NAME


def open_keys(ledger_dir: Path, now_ms: int) -> MemberPii:
    """Load (or, for a ledger that holds no personal data under other keys yet, make) the two PII keys, check
    them against the database, and make them this process's keys. Idempotent; writes only what is missing."""
    global _active
    private_dir(ledger_dir / "keys")
    cipher_path, lookup_path = key_paths(ledger_dir)
    records = {str(r.kid): r for r in store.KeyRecord.select().where(
        store.KeyRecord.kid.in_([CIPHER_KID, LOOKUP_KID]))}
    cipher_key = _load_or_make(cipher_path, records.get(CIPHER_KID))
    lookup_key = _load_or_make(lookup_path, records.get(LOOKUP_KID))
    for path in (cipher_path, lookup_path):
        restrict_mode(path)
    pii = MemberPii(cipher_key, lookup_key)
    if len(records) < 2:
        cipher_check, lookup_check = pii.key_check()
        with store.atomic_write():
            for kid, kind, check in ((CIPHER_KID, CIPHER_KIND, cipher_check), (LOOKUP_KID, LOOKUP_KIND, lookup_check)):
                store.KeyRecord.insert(kid=kid, kind=kind, public_key=check, not_before=now_ms // 1000,
                                       not_after=_CHECK_NOT_AFTER, created_ms=now_ms,
                                       current=True).on_conflict_ignore().execute()
        records = {str(r.kid): r for r in store.KeyRecord.select().where(
            store.KeyRecord.kid.in_([CIPHER_KID, LOOKUP_KID]))}
    cipher_ok, lookup_ok = pii.matches(bytes(records[CIPHER_KID].public_key), bytes(records[LOOKUP_KID].public_key))
    for ok, path in ((cipher_ok, cipher_path), (lookup_ok, lookup_path)):
        if not ok:
            raise LedgerError(f"the key file {path} does not belong to this ledger's database; restore the right one "
                              "from backup")
    _active = pii
    return pii


def _load_or_make(path: Path, record: store.KeyRecord | None) -> bytes:
    if path.exists() or path.is_symlink():
        return read_key_file(path, LedgerError, "ledger PII key")
    if record is not None or _holds_encrypted_members():
        raise LedgerError(f"the ledger PII key file {path} is missing but the database holds member data encrypted "
                          "under it; restore the key file from backup")
    return create_key_file(path, LedgerError, "ledger PII key")


def _holds_encrypted_members() -> bool:
    columns = {c.name for c in store.db.get_columns(MEMBER_TABLE)}
    return "name_enc" in columns and store.Member.select().exists()


# -- members ----------------------------------------------------------------------------------------------------
def create_member(member_id: str, details: MemberDetails, **columns: Any) -> store.Member:
    """Insert a member row (inside the caller's transaction) with its personal data encrypted and indexed."""
    member = store.Member.create(member_id=member_id, **active().member_columns(member_id, details), **columns)
    _write_name_words(member_id, details.name)
    return member


def details_of(member: store.Member) -> MemberDetails:
    return active().details_of(member)


def put_details(member: store.Member, details: MemberDetails) -> None:
    """Set ``details`` on the row object (the caller saves it, in its transaction) and re-index its name."""
    for column, value in active().member_columns(str(member.member_id), details).items():
        setattr(member, column, value)
    _write_name_words(str(member.member_id), details.name)


def _write_name_words(member_id: str, name: str) -> None:
    pii = active()
    store.MemberNameWord.delete().where(store.MemberNameWord.member_id == member_id).execute()
    rows = [{"word_hash": pii.lookup_hash("name", word), "member_id": member_id} for word in name_words(name)]
    if rows:
        store.MemberNameWord.insert_many(rows).on_conflict_ignore().execute()


def find_members(*, phone: str | None = None, email: str | None = None,
                 name: str | None = None) -> list[store.Member]:
    """Members matching every criterion given: the phone's digits, the email (any case), every word of ``name``
    (whole words, any case and order). Exact matches only: hashes cannot find a part of a value."""
    pii = active()
    query = store.Member.select()
    if phone is not None:
        digits = normal_phone(phone)
        if not digits:
            raise LedgerError(f"the phone number {phone!r} has no digits to look up")
        query = query.where(store.Member.phone_hash == pii.lookup_hash("phone", digits))
    if email is not None:
        normal = normal_email(email)
        if not normal:
            raise LedgerError("the email address to look up is empty")
        query = query.where(store.Member.email_hash == pii.lookup_hash("email", normal))
    if name is not None:
        words = name_words(name)
        if not words:
            raise LedgerError(f"the name {name!r} has no word to look up")
        for word in words:
            query = query.where(store.Member.member_id.in_(
                store.MemberNameWord.select(store.MemberNameWord.member_id)
                .where(store.MemberNameWord.word_hash == pii.lookup_hash("name", word))))
    if phone is None and email is None and name is None:
        raise LedgerError("give a phone number, an email address or a name to look up")
    return list(query.order_by(store.Member.member_id))


def apply_member_edits(member: store.Member, entries: Sequence[JournalEntry]) -> None:
    """``member_update`` entries edit notes and preferences (inside the ingest's transaction)."""
    edits = [e for e in entries if e.kind == EntryKind.MEMBER_UPDATE]
    if not edits:
        return
    details = details_of(member)
    notes, prefs, changed = details.notes, dict(details.prefs), False
    for e in edits:
        if isinstance(e.payload.get("notes"), str):
            notes = e.payload["notes"]
            changed = True
        new_prefs = e.payload.get("prefs")
        if isinstance(new_prefs, dict):
            prefs.update({str(k): v for k, v in new_prefs.items()})
            changed = True
    if changed:
        columns = active().member_columns(str(member.member_id), replace(details, notes=notes, prefs=prefs))
        store.Member.update(notes_enc=columns["notes_enc"], prefs_enc=columns["prefs_enc"]).where(
            store.Member.member_id == member.member_id).execute()


# -- journal entries --------------------------------------------------------------------------------------------
def entry_row_id(terminal_id: str, seq: int) -> str:
    return f"{terminal_id}/{seq}"


def stored_payload(entry: JournalEntry) -> tuple[bytes, bytes | None]:
    """``(payload, pii)`` as ``applied_entry`` stores them: the payload's CBOR without its personal fields, and
    those fields encrypted (None when the entry has none). Plain, not canonical, CBOR (see ``ledger.apply``):
    the bytes the batch decode already made for the hash chain when it has them (``journal.payload_cbor``)."""
    secret_fields = ENTRY_PII_FIELDS.get(entry.kind)
    if secret_fields is None:
        encoded = payload_cbor(entry)
        return (cbor2.dumps(entry.payload) if encoded is None else encoded), None
    return split_payload(entry.terminal_id, entry.seq, entry.payload, secret_fields)


def split_payload(terminal_id: str, seq: int, payload: dict[str, Any],
                  secret_fields: Iterable[str]) -> tuple[bytes, bytes | None]:
    secret = {k: payload[k] for k in secret_fields if k in payload}
    if not secret:
        return cbor2.dumps(payload), None
    rest = {k: v for k, v in payload.items() if k not in secret}
    sealed = active().cipher.encrypt_value(secret, table=ENTRY_TABLE, column="pii",
                                           row_id=entry_row_id(terminal_id, seq))
    return cbor2.dumps(rest), sealed


def entry_payload(terminal_id: str, seq: int, payload: bytes, pii: bytes | None) -> dict[str, Any]:
    """An applied entry's whole payload, as the terminal signed it (its hash covers this)."""
    out: dict[str, Any] = cbor2.loads(bytes(payload))
    if pii is not None:
        secret = active().cipher.decrypt_value(bytes(pii), table=ENTRY_TABLE, column="pii",
                                               row_id=entry_row_id(terminal_id, seq))
        if isinstance(secret, dict):
            out.update(secret)
    return out


# -- the older layout -------------------------------------------------------------------------------------------
CLEAR_COLUMNS = ("name", "phone", "email", "notes", "prefs")
ENCRYPTED_COLUMNS = ("name_enc", "phone_enc", "email_enc", "notes_enc", "prefs_enc")


def old_layout() -> bool:
    """True when the database still has the older layout (member details in clear, entries without ``pii``)."""
    members = {c.name for c in store.db.get_columns(MEMBER_TABLE)}
    entries = {c.name for c in store.db.get_columns(ENTRY_TABLE)}
    return bool(members) and ("name" in members or "pii" not in entries)


def migrate_old_layout(ledger_dir: Path, now_ms: int) -> bool:
    """Encrypt a ledger of the older layout in place (see the module's docstring); False when there was none."""
    if not old_layout():
        return False
    open_keys(ledger_dir, now_ms)
    database = store.db.obj
    postgres = store.is_postgres()
    migrator = PostgresqlMigrator(database) if postgres else SqliteMigrator(database)
    with store.atomic_write():
        if postgres:  # one migrating process at a time; the others wait here and then find nothing to do
            store.db.execute_sql(f'LOCK TABLE "{MEMBER_TABLE}", "{ENTRY_TABLE}" IN ACCESS EXCLUSIVE MODE')
        if not old_layout():
            return False
        database.create_tables([store.MemberNameWord], safe=True)
        members = {c.name for c in store.db.get_columns(MEMBER_TABLE)}
        if "name" in members:
            _encrypt_members(migrator, members)
        if "pii" not in {c.name for c in store.db.get_columns(ENTRY_TABLE)}:
            _encrypt_entries(migrator)
    _purge_clear_copies(postgres)
    return True


def _encrypt_members(migrator: Any, columns: set[str]) -> None:
    pii = active()
    migrate(*(migrator.add_column(MEMBER_TABLE, name, peewee.BlobField(null=True))
              for name in ENCRYPTED_COLUMNS if name not in columns))
    migrate(*(migrator.add_column(MEMBER_TABLE, name, peewee.CharField(max_length=64, null=True))
              for name in ("phone_hash", "email_hash") if name not in columns))
    clear = ", ".join(f'"{name}"' for name in CLEAR_COLUMNS)
    cursor = store.db.execute_sql(f'SELECT "member_id", {clear} FROM "{MEMBER_TABLE}"')
    for member_id, name, phone, email, notes, prefs_json in cursor.fetchall():
        try:
            prefs = json.loads(prefs_json) if prefs_json else {}
        except ValueError:
            prefs = {}
        details = MemberDetails(name=str(name or ""), phone=str(phone or ""), email=str(email or ""),
                                notes=str(notes or ""), prefs=prefs if isinstance(prefs, dict) else {})
        columns_now = pii.member_columns(str(member_id), details)
        store.Member.update(**columns_now).where(store.Member.member_id == member_id).execute()
        _write_name_words(str(member_id), details.name)
    migrate(*(migrator.drop_column(MEMBER_TABLE, name) for name in CLEAR_COLUMNS if name in columns))
    migrate(*(migrator.add_not_null(MEMBER_TABLE, name) for name in ENCRYPTED_COLUMNS))
    for name in ("phone_hash", "email_hash"):
        store.db.execute_sql(f'CREATE INDEX IF NOT EXISTS "{MEMBER_TABLE}_{name}" ON "{MEMBER_TABLE}" ("{name}")')


def _encrypt_entries(migrator: Any) -> None:
    migrate(migrator.add_column(ENTRY_TABLE, "pii", peewee.BlobField(null=True)))
    for kind, secret_fields in ENTRY_PII_FIELDS.items():
        mark = store.db.obj.param  # "?" on SQLite, "%s" on PostgreSQL
        rows = store.db.execute_sql(f'SELECT "id", "terminal_id", "seq", "payload" FROM "{ENTRY_TABLE}" '
                                    f'WHERE "kind" = {mark}', (kind,)).fetchall()
        for entry_id, terminal_id, seq, payload in rows:
            try:
                clear = cbor2.loads(bytes(payload))
            except (cbor2.CBORDecodeError, ValueError):
                continue  # a damaged payload stays as it is: ``ledger verify`` reports it
            if not isinstance(clear, dict):
                continue
            rest, sealed = split_payload(str(terminal_id), int(seq), clear, secret_fields)
            if sealed is not None:
                store.AppliedEntry.update(payload=rest, pii=sealed).where(store.AppliedEntry.id == entry_id).execute()


def _purge_clear_copies(postgres: bool) -> None:
    """Old clear values may linger in free pages and in the WAL: rewrite the file and empty the WAL (SQLite), or
    rewrite the tables (PostgreSQL). Outside any transaction, as both commands need."""
    try:
        if postgres:
            connection = store.db.connection()
            autocommit = connection.autocommit
            connection.autocommit = True  # VACUUM cannot run inside a transaction block
            try:
                with connection.cursor() as cursor:
                    cursor.execute(f'VACUUM FULL "{MEMBER_TABLE}", "{ENTRY_TABLE}"')
            finally:
                connection.autocommit = autocommit
        else:
            store.db.execute_sql("VACUUM")
            store.db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    except Exception as exc:  # another process reading right now: the data is safe, the clean-up is not done
        raise LedgerError("the ledger's personal data is now encrypted, but clearing old clear copies from the "
                          f"database failed ({exc}); stop every ledger process and run VACUUM on the database "
                          "(VACUUM FULL on PostgreSQL)", orig=exc) from exc
