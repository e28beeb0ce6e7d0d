"""The ledger's database: peewee models on a deferred proxy, SQLite by default, PostgreSQL by URL.

The ledger is event-sourced: ``AppliedEntry`` rows (one per terminal journal entry, unique per terminal and
sequence) are the source of truth for balances and points. ``MemberProjection`` is a derived cache of the fold of
those entries over each member's opening state, updated in the same transaction as the entries it reflects;
``ledger verify`` recomputes it from scratch.

Other ledger modules (the alert store) add their tables with ``register_models`` so ``create_schema`` creates
them too.
"""

from __future__ import annotations

import contextlib
import json
import operator
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import peewee

from cardkit.locations import private_dir, restrict_mode
from ledger.errors import LedgerError
from ledger.storage_errors import guard

db = peewee.DatabaseProxy()

SQLITE_NAME = "ledger.sqlite3"

SQLITE_PRAGMAS: dict[str, Any] = {
    "journal_mode": "wal",
    "synchronous": "full",  # an acked batch must survive a power cut
    "foreign_keys": 1,
    "busy_timeout": 10_000,
    # 64 MiB of page cache: the entry uuid and (terminal, seq) indexes take random inserts, and with SQLite's
    # 2 MiB default every insert past ~100k entries missed the cache (ingest slowed 2.4x from 100k to 1M).
    "cache_size": -65_536,
}


class JSONField(peewee.TextField):
    """A JSON document in a text column (portable across SQLite and PostgreSQL)."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)

    def python_value(self, value: Any) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(peewee.Model):
    class Meta:
        database = db
        legacy_table_names = False


class VersionCounter(BaseModel):
    """Named monotonic version counters (members, revocations, trust, rules). Bumped inside the transaction
    that makes the change, so a row lock orders concurrent writers."""

    name = peewee.CharField(primary_key=True, max_length=32)
    value = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "counter"  # the table existing ledgers have (the class was named Counter)


class Member(BaseModel):
    """A member. Personal data is only ever stored encrypted, and read and written through ``ledger.pii``: the
    ``*_enc`` columns are AES-GCM ciphertexts bound to their column and member, the ``*_hash`` columns keyed
    hashes of the normalised phone and email for lookups (NULL when there is none)."""

    member_id = peewee.CharField(primary_key=True, max_length=40)
    name_enc = peewee.BlobField()
    phone_enc = peewee.BlobField()
    email_enc = peewee.BlobField()
    notes_enc = peewee.BlobField()
    prefs_enc = peewee.BlobField()  # CBOR of the preferences mapping
    phone_hash = peewee.CharField(max_length=64, null=True, index=True)
    email_hash = peewee.CharField(max_length=64, null=True, index=True)
    store_id = peewee.CharField(max_length=64, index=True)
    opening_tier = peewee.CharField(max_length=16)  # the current tier is derived (MemberProjection)
    currency = peewee.CharField(max_length=3)
    opening_balance = peewee.BigIntegerField(default=0)  # minor units, set when the member is created
    opening_points = peewee.BigIntegerField(default=0)
    created_ms = peewee.BigIntegerField()
    version = peewee.BigIntegerField(index=True)  # the "members" counter value of the last change


class MemberNameWord(BaseModel):
    """One word of a member's name, as a keyed hash (``ledger.pii``): finds members by name without holding it."""

    word_hash = peewee.CharField(max_length=64)
    member_id = peewee.CharField(max_length=40, index=True)

    class Meta:
        primary_key = peewee.CompositeKey("word_hash", "member_id")


class MemberMove(BaseModel):
    """A member moved to another store: the old store's terminals are told to drop their copy."""

    id = peewee.BigAutoField()
    member_id = peewee.CharField(max_length=40)
    from_store = peewee.CharField(max_length=64, index=True)
    version = peewee.BigIntegerField(index=True)  # the "members" counter value of the move


class Card(BaseModel):
    card_id = peewee.CharField(primary_key=True, max_length=40)
    member_id = peewee.CharField(max_length=40, index=True)
    tier = peewee.CharField(max_length=16)
    status = peewee.CharField(max_length=16)  # cardkit.core.members.CardStatus values
    status_reason = peewee.TextField(default="")
    kid = peewee.CharField(max_length=64)
    issued_at = peewee.BigIntegerField()  # epoch seconds
    expires_at = peewee.BigIntegerField()
    replaced_by = peewee.CharField(max_length=40, null=True)
    challenge = peewee.BooleanField(default=False)
    card_public_key = peewee.BlobField(null=True)


class Coupon(BaseModel):
    coupon_id = peewee.CharField(primary_key=True, max_length=40)
    member_id = peewee.CharField(max_length=40, index=True)
    currency = peewee.CharField(max_length=3)
    amount_off = peewee.BigIntegerField(null=True)
    percent_off_bp = peewee.IntegerField(null=True)
    min_spend = peewee.BigIntegerField(null=True)
    valid_from = peewee.BigIntegerField(default=0)
    valid_until = peewee.BigIntegerField(default=2**62)
    stackable = peewee.BooleanField(default=False)
    issued_ms = peewee.BigIntegerField()


class Terminal(BaseModel):
    terminal_id = peewee.CharField(primary_key=True, max_length=40)
    name = peewee.TextField()
    store_id = peewee.CharField(max_length=64)
    identity_key = peewee.CharField(max_length=64, null=True)  # hex raw Ed25519 public key
    hpke_suite = peewee.CharField(max_length=24, null=True)
    status = peewee.CharField(max_length=16)  # pending, active, disabled, revoked
    enroll_code_hash = peewee.CharField(max_length=64, null=True, unique=True)
    code_expires_ms = peewee.BigIntegerField(null=True)
    created_ms = peewee.BigIntegerField()
    enrolled_ms = peewee.BigIntegerField(null=True)
    last_seen_ms = peewee.BigIntegerField(null=True)
    last_seq = peewee.BigIntegerField(default=0)
    last_hash = peewee.BlobField(default=bytes(32))


class AppliedEntry(BaseModel):
    """One applied journal entry: the event store. Never updated, never deleted."""

    id = peewee.BigAutoField()
    terminal_id = peewee.CharField(max_length=40)
    seq = peewee.BigIntegerField()
    uuid = peewee.CharField(max_length=36, index=True)
    prev_hash = peewee.BlobField()
    hash = peewee.BlobField()
    wall_ms = peewee.BigIntegerField()
    mono_ns = peewee.BigIntegerField()
    cashier_id = peewee.TextField(null=True)
    kind = peewee.CharField(max_length=24)
    payload = peewee.BlobField()  # CBOR of the payload without its personal fields (decode before comparing)
    pii = peewee.BlobField(null=True)  # those fields, encrypted (ledger.pii.entry_payload joins the two)
    member_id = peewee.CharField(max_length=40, null=True, index=True)
    batch_id = peewee.CharField(max_length=64)
    applied_ms = peewee.BigIntegerField()

    class Meta:
        indexes = ((("terminal_id", "seq"), True),)


class AppliedBatch(BaseModel):
    """Batch ids already applied, so a replay of a whole batch is recognised as such."""

    terminal_id = peewee.CharField(max_length=40)
    batch_id = peewee.CharField(max_length=64)
    first_seq = peewee.BigIntegerField()
    last_seq = peewee.BigIntegerField()
    applied_ms = peewee.BigIntegerField()

    class Meta:
        indexes = ((("terminal_id", "batch_id"), True),)


class MemberProjection(BaseModel):
    """Derived: the member's state after folding every applied entry. ``state`` is the MemberState as JSON."""

    member_id = peewee.CharField(primary_key=True, max_length=40)
    balance = peewee.BigIntegerField()
    points = peewee.BigIntegerField()
    tier = peewee.CharField(max_length=16)
    state = JSONField()
    entries = peewee.BigIntegerField(default=0)


class Revocation(BaseModel):
    """Every change of a card's revocation/hold status, versioned. The latest row per card is its status."""

    version = peewee.BigIntegerField(primary_key=True)
    card_id = peewee.CharField(max_length=40, index=True)
    status = peewee.CharField(max_length=16)  # revoked, on_hold, active (a hold lifted)
    reason = peewee.TextField(default="")
    changed_ms = peewee.BigIntegerField()


class RulesVersion(BaseModel):
    version = peewee.BigIntegerField(primary_key=True)
    mapping = JSONField()  # Rules.to_mapping(), checked before it is stored
    toml_text = peewee.TextField(default="")  # the file as loaded, for people
    loaded_ms = peewee.BigIntegerField()
    actor = peewee.TextField()


class KeyRecord(BaseModel):
    """Public facts about the ledger's keys; the private halves live in files under ``<ledger_dir>/keys``."""

    kid = peewee.CharField(primary_key=True, max_length=64)
    kind = peewee.CharField(max_length=24)  # root, issuer, hpke_x25519, hpke_mlkem768x25519
    public_key = peewee.BlobField()
    not_before = peewee.BigIntegerField()  # epoch seconds
    not_after = peewee.BigIntegerField()
    created_ms = peewee.BigIntegerField()
    retired_ms = peewee.BigIntegerField(null=True)
    current = peewee.BooleanField(default=False)


class AuditLog(BaseModel):
    """Append-only: every admin action and every applied or refused batch."""

    id = peewee.BigAutoField()
    at_ms = peewee.BigIntegerField(index=True)
    actor = peewee.TextField()
    action = peewee.CharField(max_length=48)
    subject = peewee.TextField(default="")
    details = JSONField(default=dict)


class RejectedBatch(BaseModel):
    id = peewee.BigAutoField()
    at_ms = peewee.BigIntegerField(index=True)
    terminal_id = peewee.CharField(max_length=40, null=True, index=True)
    batch_id = peewee.CharField(max_length=64, null=True)
    reason = peewee.CharField(max_length=32)
    detail = peewee.TextField(default="")
    seqs = JSONField(default=list)
    size = peewee.IntegerField(default=0)


class QuarantinedEntry(BaseModel):
    """An entry a terminal signed that failed the ledger's semantic checks (``ledger.semantics``): journaled, so
    the terminal's chain advances over it, but never applied. ``body`` is the canonical CBOR the entry's hash
    covers (``cardkit.journal.entry_body``), so ``ledger verify`` checks the chain through it byte for byte."""

    id = peewee.BigAutoField()
    terminal_id = peewee.CharField(max_length=40)
    seq = peewee.BigIntegerField()
    uuid = peewee.CharField(max_length=36)
    prev_hash = peewee.BlobField()
    hash = peewee.BlobField()
    body = peewee.BlobField()
    kind = peewee.CharField(max_length=24)  # shown: an unknown kind is cut to fit
    member_id = peewee.CharField(max_length=40, null=True)  # only a well-formed id
    code = peewee.CharField(max_length=32)  # ledger.semantics code, e.g. refund_exceeds
    reason = peewee.CharField(max_length=320)
    batch_id = peewee.CharField(max_length=64)
    at_ms = peewee.BigIntegerField(index=True)

    class Meta:
        indexes = ((("terminal_id", "seq"), True),)


CORE_MODELS: list[type[peewee.Model]] = [
    VersionCounter, Member, MemberNameWord, MemberMove, Card, Coupon, Terminal, AppliedEntry, AppliedBatch,
    MemberProjection, Revocation, RulesVersion, KeyRecord, AuditLog, RejectedBatch, QuarantinedEntry,
]
_extra_models: list[type[peewee.Model]] = []


def register_models(*models: type[peewee.Model]) -> None:
    """Add tables from another ledger module; they must use ``db`` (this module's proxy) as their database."""
    for model in models:
        if model not in _extra_models and model not in CORE_MODELS:
            _extra_models.append(model)


def all_models() -> list[type[peewee.Model]]:
    return [*CORE_MODELS, *_extra_models]


def is_postgres_url(url_or_path: str | Path | None) -> bool:
    return isinstance(url_or_path, str) and url_or_path.startswith(("postgresql://", "postgres://"))


def sqlite_path(ledger_dir: Path) -> Path:
    return ledger_dir / SQLITE_NAME


class LedgerPostgresqlDatabase(peewee.PostgresqlDatabase):
    """PostgreSQL whose threads replace a connection the server dropped (a restart, a failover, an idle cut):
    the request that met the dead connection fails (503 ``storage``), the next one on that thread reconnects
    instead of failing forever. Only outside a transaction, so nothing half-done is ever carried over."""

    def cursor(self, named_cursor: Any = None) -> Any:
        if not self.is_closed() and not self.in_transaction() and not self.is_connection_usable():
            self.close()  # psycopg2 already knows it is broken: closing only forgets it
        return super().cursor(named_cursor)


def _postgres(url: str) -> peewee.Database:
    parsed = urlparse(url)
    name = unquote(parsed.path.lstrip("/"))
    if not name:
        raise LedgerError(f"the PostgreSQL URL {_redact(url)} names no database (postgresql://host/dbname)")
    params: dict[str, Any] = {}
    if parsed.hostname:
        params["host"] = unquote(parsed.hostname)
    if parsed.port:
        params["port"] = parsed.port
    if parsed.username:
        params["user"] = unquote(parsed.username)
    if parsed.password:
        params["password"] = unquote(parsed.password)
    for part in filter(None, parsed.query.split("&")):
        key, _, value = part.partition("=")
        params[unquote(key)] = unquote(value)  # e.g. ?host=/tmp/socketdir for a unix socket
    try:
        import psycopg2  # noqa: F401  (fail early with a clear message)
    except ImportError as exc:
        raise LedgerError("PostgreSQL support needs psycopg2; install cardpos with the 'postgres' extra",
                          orig=exc) from exc
    return LedgerPostgresqlDatabase(name, autorollback=True, **params)


def _redact(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def open_ledger_db(url_or_path: str | Path) -> peewee.Database:
    """Open (and bind the models to) the ledger database: a ``postgresql://`` URL, else a SQLite file path
    (a directory means ``<dir>/ledger.sqlite3``)."""
    database: peewee.Database
    if is_postgres_url(url_or_path):
        database = _postgres(str(url_or_path))
    else:
        path = Path(url_or_path)
        if path.is_dir():
            path = sqlite_path(path)
        private_sqlite_files(path)
        # sqlite3's own wait (while connecting) matches the busy_timeout pragma (every later statement).
        database = peewee.SqliteDatabase(str(path), pragmas=SQLITE_PRAGMAS,
                                         timeout=int(SQLITE_PRAGMAS["busy_timeout"]) / 1000)
    db.initialize(database)
    with guard(describe_database, opening=True):  # a damaged, read-only or locked file, no server: one sentence
        database.connect(reuse_if_open=True)
    return database


SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_sqlite_files(path: Path) -> None:
    """The database file and its WAL, SHM and journal readable by their owner only, whatever the umask.

    SQLite creates a database 0644 (less the umask) and gives its WAL, SHM and journal the database file's own
    mode, so the file is created here, 0600, before SQLite opens it; existing files lose any group and other
    bits (a copy restored carelessly, a ledger from before this rule). A directory made for it is 0700; an
    existing one is left alone (``--db`` may point into a shared place; the ledger's own directory is made
    private by ``ledger.home``)."""
    if not path.parent.is_dir():
        private_dir(path.parent)
    if not path.exists() and not path.is_symlink():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            pass  # another process created it first: it is restricted below like any existing file
        except OSError as exc:
            raise LedgerError(f"cannot create the ledger database {path}: {exc.strerror}", orig=exc) from exc
        else:
            try:
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
    for side in ("", *SQLITE_SIDE_FILES):
        restrict_mode(path.with_name(path.name + side))


def describe_database() -> str:
    """The open ledger database for people: its SQLite file, or its PostgreSQL name and server (no password)."""
    database = db.obj
    if isinstance(database, peewee.PostgresqlDatabase):
        params = database.connect_params
        server = str(params.get("host") or "localhost") + (f":{params['port']}" if params.get("port") else "")
        return f"the ledger database {database.database} on {server} (PostgreSQL)"
    if isinstance(database, peewee.SqliteDatabase):
        return f"the ledger database {database.database}"
    return "the ledger database"


def is_postgres() -> bool:
    return isinstance(db.obj, peewee.PostgresqlDatabase)


_schema_hooks: list[Any] = []


def register_schema_hook(hook: Any) -> None:
    """Run ``hook()`` after the tables are created (another module's indexes or statistics, idempotent)."""
    if hook not in _schema_hooks:
        _schema_hooks.append(hook)


def create_schema() -> None:
    """Create every table (core and registered) that does not exist yet, the version counters, and the length
    limits of identifier columns (also on a ledger created before they existed: ``ledger init`` and ``ledger
    serve`` run this)."""
    with atomic_write():  # reads the schema, then writes: the write lock first (no stale-snapshot refusal)
        with _inline_length_checks(all_models()):
            db.create_tables(all_models(), safe=True)
        for name in ("members", "revocations", "trust", "rules"):
            VersionCounter.insert(name=name, value=0).on_conflict_ignore().execute()
        enforce_lengths(all_models())
        for hook in _schema_hooks:
            hook()


# -- identifier lengths ------------------------------------------------------------------------------------------
# PostgreSQL enforces VARCHAR(n); SQLite ignores it. Every bounded column is bounded on both: triggers on SQLite,
# and for the few identifier columns kept as TEXT, CHECK constraints on PostgreSQL. Values from the network are
# validated (or cut to a shown form) before they get here; these limits are the floor under any mistake.
TEXT_LIMITS: dict[tuple[str, str], int] = {
    ("audit_log", "actor"): 200,
    ("audit_log", "subject"): 200,
    ("rejected_batch", "detail"): 1000,
    ("applied_entry", "cashier_id"): 64,
}
"""(table, column) → most characters, for identifier columns of TEXT type."""


def bound_text(table: str, column: str, limit: int) -> None:
    """Give a TEXT identifier column of another ledger module (the alert store) a maximum length."""
    TEXT_LIMITS[(table, column)] = limit


def length_limits(model: type[peewee.Model]) -> list[tuple[str, int]]:
    """(column, most characters) of every bounded column of ``model``."""
    table = model._meta.table_name
    limits = {f.column_name: int(f.max_length) for f in model._meta.sorted_fields
              if isinstance(f, peewee.CharField) and f.max_length}
    limits.update({column: n for (t, column), n in TEXT_LIMITS.items() if t == table})
    return sorted(limits.items())


def enforce_lengths(models: list[type[peewee.Model]]) -> None:
    """Make the database refuse a value longer than its column's limit (idempotent; call after create_tables)."""
    for model in models:
        limits = length_limits(model)
        if limits:
            if is_postgres():
                _pg_checks(model._meta.table_name)
            else:
                _sqlite_triggers(model._meta.table_name, limits)


def upgrade_schema() -> bool:
    """Bring a ledger made by an older version up to date (new tables, length limits) when it needs it; reads
    only when it does not (a read-only database still serves). Returns whether anything was created."""
    models = all_models()
    tables = set(db.get_tables())
    current = all(m._meta.table_name in tables for m in models) and all(
        _has_length_guards(m._meta.table_name, length_limits(m)) for m in models if length_limits(m))
    if not current:
        create_schema()
    return not current


def _has_length_guards(table: str, limits: list[tuple[str, int]]) -> bool:
    if is_postgres():
        names = [f"{table}_{column}_length" for (t, column) in TEXT_LIMITS if t == table]
        return all(db.execute_sql("SELECT 1 FROM pg_constraint WHERE conname = %s", (n,)).fetchone() is not None
                   for n in names)
    if _has_inline_check(table, limits):
        return True
    version = _trigger_version(limits)
    found = {row[0] for row in db.execute_sql(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)).fetchall()}
    return {f"{table}_length_insert_{version}", f"{table}_length_update_{version}"} <= found


def _trigger_version(limits: list[tuple[str, int]]) -> str:
    import hashlib

    return hashlib.sha256(repr(limits).encode()).hexdigest()[:8]  # a changed limit replaces the trigger


INLINE_CHECKED = frozenset({"applied_entry", "funding_line"})
"""Tables written once per applied entry (or more). On SQLite their length limits are one CHECK constraint in the
table itself, evaluated inline with each row, instead of the triggers: a trigger program per row cost 6–8 µs per
row written at ingest, about a tenth of the drain. A table an older version made keeps its triggers."""


def length_message(table: str) -> str:
    return f"a value is longer than its column allows in {table}"


def _inline_check_sql(table: str, limits: list[tuple[str, int]]) -> str:
    """The table constraint (its name is the error's wording: "CHECK constraint failed: <name>"). ``length(NULL)``
    is NULL, which a CHECK lets through, as the trigger's ``WHEN`` does."""
    test = " AND ".join(f'length("{column}") <= {n}' for column, n in limits)
    return f'CONSTRAINT "{length_message(table)}" CHECK ({test})'


@contextlib.contextmanager
def _inline_length_checks(models: list[type[peewee.Model]]) -> Iterator[None]:
    """While tables are created on SQLite, the INLINE_CHECKED ones carry their length CHECK."""
    changed: list[tuple[Any, Any]] = []
    if not is_postgres():
        for model in models:
            table = model._meta.table_name
            limits = length_limits(model)
            if table in INLINE_CHECKED and limits:
                meta = model._meta
                changed.append((meta, meta.constraints))
                meta.constraints = [*(meta.constraints or []), peewee.SQL(_inline_check_sql(table, limits))]
    try:
        yield
    finally:
        for meta, constraints in changed:
            meta.constraints = constraints


def _has_inline_check(table: str, limits: list[tuple[str, int]]) -> bool:
    row = db.execute_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    return row is not None and _inline_check_sql(table, limits) in str(row[0] or "")


def _sqlite_triggers(table: str, limits: list[tuple[str, int]]) -> None:
    version = _trigger_version(limits)
    test = " OR ".join(f'length(NEW."{column}") > {n}' for column, n in limits)
    existing = {row[0] for row in db.execute_sql(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? AND name LIKE ?",
        (table, f"{table}_length_%")).fetchall()}
    if _has_inline_check(table, limits):  # the table bounds its own columns: no trigger
        for stale in sorted(existing):
            db.execute_sql(f'DROP TRIGGER IF EXISTS "{stale}"')
        return
    for event in ("insert", "update"):
        name = f"{table}_length_{event}_{version}"
        for stale in sorted(n for n in existing if n.startswith(f"{table}_length_{event}_") and n != name):
            db.execute_sql(f'DROP TRIGGER IF EXISTS "{stale}"')
        if name not in existing:
            db.execute_sql(f'CREATE TRIGGER IF NOT EXISTS "{name}" BEFORE {event.upper()} ON "{table}" '
                           f"WHEN {test} BEGIN SELECT RAISE(ABORT, '{length_message(table)}'); END")


def _pg_checks(table: str) -> None:
    for (t, column), n in sorted(TEXT_LIMITS.items()):
        if t != table:
            continue
        name = f"{table}_{column}_length"
        found = db.execute_sql("SELECT 1 FROM pg_constraint WHERE conname = %s", (name,)).fetchone()
        if found is None:  # NOT VALID: rows from before are not re-read, every new or changed row is checked
            db.execute_sql(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" CHECK (length("{column}") <= {n}) '
                           "NOT VALID")


def bump(name: str) -> int:
    """Increment a counter inside the current transaction and return the new value. The UPDATE takes the
    row lock first, so concurrent transactions get distinct, ordered values."""
    VersionCounter.update(value=VersionCounter.value + 1).where(VersionCounter.name == name).execute()
    return int(VersionCounter.get_by_id(name).value)


def current(name: str) -> int:
    row = VersionCounter.get_or_none(VersionCounter.name == name)
    return int(row.value) if row else 0


def atomic_write() -> Any:
    """A write transaction that takes the write lock up front on SQLite (no upgrade deadlocks)."""
    database = db.obj
    if isinstance(database, peewee.SqliteDatabase):
        return database.atomic("IMMEDIATE")
    return db.atomic()



# -- bulk writes and reads (ledger.importer, ledger.member_facts) -----------------------------------------------
_PLAIN_TYPES: dict[type[peewee.Field], type] = {
    peewee.CharField: str, peewee.TextField: str, peewee.IntegerField: int, peewee.BigIntegerField: int,
    peewee.BooleanField: bool, peewee.BlobField: bytes}
"""Fields whose ``db_value`` hands a value of this type (or None) to the driver unchanged in effect."""


def bulk_insert(model: type[peewee.Model], rows: list[dict[str, Any]], *, ignore_conflicts: bool = False) -> None:
    """Insert ``rows`` (same keys, the model's field names) with one prepared statement: peewee's ``insert_many``
    spends more building SQL text than the database spends inserting. A column whose values are all of its
    field's plain type goes as it is; any other goes through the field's ``db_value``. On PostgreSQL the rows go
    as multi-row VALUES (psycopg2's ``executemany`` is a round trip per row)."""
    if not rows:
        return
    names = list(rows[0])
    fields = [model._meta.fields[name] for name in names]
    params: list[tuple[Any, ...]] = [tuple(row[name] for name in names) for row in rows] if len(names) == 1 \
        else list(map(operator.itemgetter(*names), rows))
    columns: list[Sequence[Any]] = list(zip(*params, strict=True))
    converted = False
    for index, field in enumerate(fields):
        plain = _PLAIN_TYPES.get(type(field))
        if plain is None or not set(map(type, columns[index])) <= {plain, type(None)}:
            columns[index] = [field.db_value(value) for value in columns[index]]
            converted = True
    if converted:
        params = list(zip(*columns, strict=True))
    names_sql = ", ".join(f'"{f.column_name}"' for f in fields)
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    cursor = db.cursor()
    if is_postgres():
        from psycopg2.extras import execute_values

        execute_values(cursor, f'INSERT INTO "{model._meta.table_name}" ({names_sql}) VALUES %s{conflict}', params,
                       page_size=1000)
        return
    marks = ", ".join(db.param for _ in fields)
    cursor.executemany(f'INSERT INTO "{model._meta.table_name}" ({names_sql}) VALUES ({marks}){conflict}', params)


def select_in(model: type[peewee.Model], key: str, values: list[Any], *names: str) -> list[tuple[Any, ...]]:
    """The ``names`` columns of ``model``'s rows whose ``key`` is one of ``values`` (at most a few thousand), by
    one prepared statement (peewee builds an ``IN`` of a thousand values slower than the database answers it)."""
    if not values:
        return []
    meta = model._meta
    names_sql = ", ".join(f'"{meta.fields[name].column_name}"' for name in names)
    marks = ", ".join(db.param for _ in values)
    sql = f'SELECT {names_sql} FROM "{meta.table_name}" WHERE "{meta.fields[key].column_name}" IN ({marks})'
    return list(db.execute_sql(sql, values).fetchall())

# -- enrollment (ledger.enroll, ledger.enroll_codes) -------------------------------------------------------------
class PendingEnrollment(BaseModel):
    """The secret half of a pending enrollment code: the code's MAC key (``cardkit.enrollment``), wrapped with
    AES-GCM under a key derived from the root key (a copy of the database alone cannot enroll anything), and
    the count of wrong proofs. The row goes when the code is used; the code is locked after too many."""

    terminal_id = peewee.CharField(primary_key=True, max_length=40)
    wrapped_key = peewee.BlobField()
    failures = peewee.IntegerField(default=0)
    created_ms = peewee.BigIntegerField()


class TerminalSealKey(BaseModel):
    """The HPKE public key a terminal registered at enrollment: its member snapshots are sealed to it."""

    terminal_id = peewee.CharField(primary_key=True, max_length=40)
    suite = peewee.CharField(max_length=24)
    public_key = peewee.BlobField()
    registered_ms = peewee.BigIntegerField()


register_models(PendingEnrollment, TerminalSealKey)

# The merchant model's tables (issue 17) register here so every schema has them.
from ledger.merchants import models as _merchant_models  # noqa: E402,F401
from ledger.settlement import records as _settlement_records  # noqa: E402,F401
