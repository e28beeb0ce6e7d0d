"""Campaign tables: the campaigns, their messages (the campaign outbox, one row per idempotency key) and the
SMS gateway callbacks already handled."""

from __future__ import annotations

import peewee

from ledger import store


class Campaign(store.BaseModel):
    campaign_id = peewee.CharField(primary_key=True, max_length=40)
    name = peewee.TextField()
    kind = peewee.CharField(max_length=12)  # greeting, promotion
    occasion = peewee.CharField(max_length=16, default="")  # greetings: birthday, anniversary, ...
    holiday = peewee.CharField(max_length=10, default="")  # holiday greetings: MM-DD
    segment = peewee.CharField(max_length=64, default="")  # promotions
    channel = peewee.CharField(max_length=8)  # sms, mail
    subject_zh = peewee.TextField(default="")
    subject_en = peewee.TextField(default="")
    text_zh = peewee.TextField()
    text_en = peewee.TextField()
    coupon_amount_off = peewee.BigIntegerField(null=True)  # minor units of the member's currency
    coupon_percent_bp = peewee.IntegerField(null=True)
    coupon_min_spend = peewee.BigIntegerField(null=True)
    coupon_days = peewee.IntegerField(default=30)
    holdout_bp = peewee.IntegerField(default=0)
    seed = peewee.CharField(max_length=64)
    status = peewee.CharField(max_length=12)  # draft, scheduled, planned, active (greetings), stopped
    scheduled_ms = peewee.BigIntegerField(null=True)
    planned_ms = peewee.BigIntegerField(null=True)
    created_ms = peewee.BigIntegerField()
    created_by = peewee.TextField()


KEY_COLUMNS = ("campaign_id", "member_id", "occasion", "channel")
"""A message's idempotency key, unique."""


class CampaignMessage(store.BaseModel):
    """One message to one member for one occasion on one channel. Its idempotency key is
    campaign:member:occasion:channel (``key``), a unique index over those four columns: planning it again (a
    restart, a retry, the daily job run twice) inserts nothing. A plan inserts members in id order, so that index
    (and every other one) grows at its end: planning a million rows touches each index page about once.

    ``reference``, the key's hash sent to the SMS gateway (which echoes it in receipts), is written when the
    message is claimed for sending, not when it is planned: a unique index on a million scattered hashes filled
    at plan time rewrote most of its pages on every commit. Unsent rows hold NULL there (NULLs never conflict)."""

    id = peewee.BigAutoField()
    campaign_id = peewee.CharField(max_length=40)
    member_id = peewee.CharField(max_length=40, index=True)
    channel = peewee.CharField(max_length=8)
    occasion = peewee.CharField(max_length=40, default="")
    status = peewee.CharField(max_length=12)
    attempts = peewee.IntegerField(default=0)
    next_attempt_ms = peewee.BigIntegerField()
    created_ms = peewee.BigIntegerField()
    sent_ms = peewee.BigIntegerField(null=True)
    reference = peewee.CharField(max_length=64, null=True, unique=True)  # set when claimed for sending
    provider_id = peewee.CharField(max_length=128, null=True)
    coupon_id = peewee.CharField(max_length=40, null=True)
    last_error = peewee.TextField(default="")

    @property
    def key(self) -> str:
        from ledger.campaigns.model import message_key

        return message_key(str(self.campaign_id), str(self.member_id), str(self.occasion), str(self.channel))

    class Meta:
        table_name = "campaign_message"
        indexes = ((KEY_COLUMNS, True), (("status", "next_attempt_ms"), False), (("campaign_id", "status"), False))


class SmsCallbackSeen(store.BaseModel):
    """Gateway callback ids already handled (a callback can arrive twice)."""

    callback_id = peewee.CharField(primary_key=True, max_length=140)
    at_ms = peewee.BigIntegerField()


MODELS: list[type[peewee.Model]] = [Campaign, CampaignMessage, SmsCallbackSeen]


def create_tables() -> None:
    from ledger import member_facts

    member_facts.create_tables()
    store.register_models(*MODELS)
    upgrade_message_table()
    store.db.create_tables(MODELS, safe=True)


def upgrade_message_table() -> None:
    """A ledger whose ``campaign_message`` was made before references were written at send time (``reference``
    NOT NULL and the only unique column) gets the nullable column and the unique key, its rows kept."""
    table = CampaignMessage._meta.table_name
    if not store.db.table_exists(table):
        return
    if store.is_postgres():
        not_null = store.db.execute_sql(
            "SELECT is_nullable = 'NO' FROM information_schema.columns WHERE table_name = %s AND column_name = "
            "'reference' AND table_schema = current_schema()", (table,)).fetchone()
        if not_null and not_null[0]:
            with store.atomic_write():
                store.db.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN "reference" DROP NOT NULL')
        return
    if not _reference_not_null_sqlite(table):
        return
    # SQLite cannot drop NOT NULL: rebuild the table under its own name, indexes and all, in one transaction
    with store.atomic_write():
        if not _reference_not_null_sqlite(table):
            return  # another process (a second worker starting) did it while this one waited for the lock
        columns = [row[1] for row in store.db.execute_sql(f'PRAGMA table_info("{table}")').fetchall()]
        fields = ", ".join(f'"{name}"' for name in columns)
        for (index,) in store.db.execute_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                (table,)).fetchall():
            store.db.execute_sql(f'DROP INDEX "{index}"')
        store.db.execute_sql(f'ALTER TABLE "{table}" RENAME TO "{table}_before_upgrade"')
        store.db.create_tables([CampaignMessage])
        store.db.execute_sql(f'INSERT INTO "{table}" ({fields}) SELECT {fields} FROM "{table}_before_upgrade"')
        store.db.execute_sql(f'DROP TABLE "{table}_before_upgrade"')  # its length triggers go with it
        store.enforce_lengths([CampaignMessage])


def _reference_not_null_sqlite(table: str) -> bool:
    columns = {row[1]: row for row in store.db.execute_sql(f'PRAGMA table_info("{table}")').fetchall()}
    return bool(columns.get("reference", (0, "", "", 0))[3])


store.register_models(*MODELS)
