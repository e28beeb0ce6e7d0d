"""The console's own tables, on the ledger's database (``ledger.store.db``), and the migration step that creates
them: ``create_tables`` runs at ``ledger init`` and whenever the console or an ``admin`` command opens the ledger
(``CREATE ... IF NOT EXISTS``: safe to run again, on SQLite and PostgreSQL alike).

- ``console_admin``: admin accounts (scrypt password hash, optional TOTP secret, lockout counters).
- ``console_session``: signed-in sessions, kept in the database so several console workers share them; only a
  SHA-256 of the cookie's token is stored, so a copy of the table signs nobody in.
- ``console_sales_bucket`` + ``console_cursor``: the dashboard's roll-up of applied entries per store, quarter
  hour, kind and currency (``ledger.console.rollup``), derived and rebuildable like the member projection.

It also adds indexes the console's audit queries need to the ledger's ``audit_log`` (actor, action, subject).
"""

from __future__ import annotations

import peewee

from ledger import store


class AdminAccount(store.BaseModel):
    name = peewee.CharField(primary_key=True, max_length=64)
    role = peewee.CharField(max_length=20)  # ledger.console.roles.Role values
    merchant_id = peewee.CharField(max_length=64, null=True)  # merchant managers, once merchants exist
    password_hash = peewee.CharField(max_length=200)  # ledger.console.passwords stored form
    totp_secret = peewee.CharField(max_length=64, null=True)  # base32; None: no second factor
    totp_last_step = peewee.BigIntegerField(default=-1)  # a TOTP code works once
    status = peewee.CharField(max_length=12, default="active")  # active, disabled
    failed_signins = peewee.IntegerField(default=0)  # consecutive, reset by a good sign-in or a reset
    locked_until_ms = peewee.BigIntegerField(null=True)
    created_ms = peewee.BigIntegerField()
    password_changed_ms = peewee.BigIntegerField()
    last_signin_ms = peewee.BigIntegerField(null=True)

    class Meta:
        table_name = "console_admin"


class ConsoleSession(store.BaseModel):
    token_hash = peewee.CharField(primary_key=True, max_length=64)  # hex SHA-256 of the cookie's token
    admin = peewee.CharField(max_length=64, index=True)
    csrf_token = peewee.CharField(max_length=64)
    created_ms = peewee.BigIntegerField()
    last_seen_ms = peewee.BigIntegerField(index=True)
    origin = peewee.CharField(max_length=64, default="")  # client address at sign-in

    class Meta:
        table_name = "console_session"


class SalesBucket(store.BaseModel):
    """Applied entries of one store, quarter hour (of the entries' wall time), kind and currency."""

    store_id = peewee.CharField(max_length=64)
    bucket = peewee.BigIntegerField()  # wall_ms // BUCKET_MS
    kind = peewee.CharField(max_length=24)
    currency = peewee.CharField(max_length=3)
    count = peewee.BigIntegerField(default=0)
    amount = peewee.BigIntegerField(default=0)  # minor units: net sales, top-ups paid, refunds, ...
    points_earned = peewee.BigIntegerField(default=0)
    points_redeemed = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "console_sales_bucket"
        primary_key = peewee.CompositeKey("bucket", "store_id", "kind", "currency")


class Cursor(store.BaseModel):
    """How far a derived table has read the entries (the last ``applied_entry.id`` folded in)."""

    name = peewee.CharField(primary_key=True, max_length=32)
    last_id = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "console_cursor"


MODELS: list[type[peewee.Model]] = [AdminAccount, ConsoleSession, SalesBucket, Cursor]

AUDIT_INDEXES = (
    ("console_audit_actor", ("actor", "at_ms")),
    ("console_audit_action", ("action", "at_ms")),
    ("console_audit_subject", ("subject",)),
)


def create_tables() -> None:
    """The migration step: the console's tables and the audit log's extra indexes, where missing."""
    store.register_models(*MODELS)
    with store.atomic_write():
        store.db.create_tables(MODELS, safe=True)
        table = store.AuditLog._meta.table_name
        for name, columns in AUDIT_INDEXES:
            cols = ", ".join(f'"{c}"' for c in columns)
            store.db.execute_sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({cols})')
        Cursor.insert(name="sales", last_id=0).on_conflict_ignore().execute()
