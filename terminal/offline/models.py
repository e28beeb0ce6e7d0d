"""peewee models of the terminal database (schema created by ``migrations.py``).

Models are declared against the deferred ``terminal.offline.db.database``; code in this package binds each
query to the handle it was opened with (``Model.select().bind(db)`` / ``query.execute(db)``), so several
databases can be open in one process. Columns ending in ``_enc`` hold AES-GCM ciphertext (``pii.py``).
The journal table has no model: ``journal.py`` reads and writes it with its own SQL (blob casts, speed).
"""

from __future__ import annotations

from peewee import BlobField, IntegerField, Model, TextField

from terminal.offline.db import database


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class SyncStateRow(BaseModel):
    key = TextField(primary_key=True)
    value = BlobField(null=True)  # canonical CBOR

    class Meta:
        table_name = "sync_state"


class MemberRow(BaseModel):
    member_id = TextField(primary_key=True)
    tier = TextField()
    balance = IntegerField()
    points = IntegerField()
    currency = TextField()
    coupons = BlobField()
    yearly_spend = IntegerField()
    snapshot_version = IntegerField()
    name_enc = BlobField()
    phone_enc = BlobField()
    email_enc = BlobField()
    notes_enc = BlobField()
    prefs_enc = BlobField()

    class Meta:
        table_name = "member_cache"


class MemberCardRow(BaseModel):
    card_id = TextField(primary_key=True)
    member_id = TextField(index=True)

    class Meta:
        table_name = "member_card"


class CashierRow(BaseModel):
    cashier_id = TextField(primary_key=True)
    name_enc = BlobField()
    role = TextField()
    pin_salt = BlobField()
    pin_hash = BlobField()
    pin_params = TextField()
    failed_attempts = IntegerField(default=0)
    locked_until_ms = IntegerField(default=0)

    class Meta:
        table_name = "cashier"


class DocumentVersionRow(BaseModel):
    name = TextField(primary_key=True)
    version = IntegerField()
    applied_ms = IntegerField()

    class Meta:
        table_name = "document_version"


ALL_MODELS: list[type[BaseModel]] = [
    SyncStateRow, MemberRow, MemberCardRow, CashierRow, DocumentVersionRow,
]

