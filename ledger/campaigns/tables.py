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


class CampaignMessage(store.BaseModel):
    """One message to one member for one occasion on one channel. Its idempotency key is
    campaign:member:occasion:channel (``key``); ``reference``, the key's hash, is the unique column, so planning
    it again (a restart, a retry, the daily job run twice) inserts nothing, and a gateway's receipt (which echoes
    the reference) finds its row. The key itself is not stored and there are four indexes only: planning a
    million rows pays for every byte and every index of every row."""

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
    reference = peewee.CharField(max_length=64, unique=True)
    provider_id = peewee.CharField(max_length=128, null=True)
    coupon_id = peewee.CharField(max_length=40, null=True)
    last_error = peewee.TextField(default="")

    @property
    def key(self) -> str:
        from ledger.campaigns.model import message_key

        return message_key(str(self.campaign_id), str(self.member_id), str(self.occasion), str(self.channel))

    class Meta:
        table_name = "campaign_message"
        indexes = ((("status", "next_attempt_ms"), False), (("campaign_id", "status"), False))


class SmsCallbackSeen(store.BaseModel):
    """Gateway callback ids already handled (a callback can arrive twice)."""

    callback_id = peewee.CharField(primary_key=True, max_length=140)
    at_ms = peewee.BigIntegerField()


MODELS: list[type[peewee.Model]] = [Campaign, CampaignMessage, SmsCallbackSeen]


def create_tables() -> None:
    from ledger import member_facts

    member_facts.create_tables()
    store.register_models(*MODELS)
    store.db.create_tables(MODELS, safe=True)


store.register_models(*MODELS)
