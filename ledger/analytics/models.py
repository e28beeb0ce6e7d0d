"""The analytics tables, on the ledger's database (``ledger.store.db``); ``create_tables`` is safe to run again.

- ``analytics_member_day``: one row per member, store, UTC day and currency: net spend, visits and entries
  (``ledger.analytics.facts``), with the member's join month so cohorts need no join. Sales without a member
  have ``member_id`` '' (they count in sales, never in member figures). Derived from the applied entries and
  rebuildable, like the member projection.
- ``analytics_cursor``: the last ``applied_entry.id`` folded in.
"""

from __future__ import annotations

import peewee

from ledger import store

NO_MEMBER = ""
CURSOR = "member_day"


class MemberDay(store.BaseModel):
    member_id = peewee.CharField(max_length=40)
    store_id = peewee.CharField(max_length=64)
    day = peewee.IntegerField()  # ledger.analytics.calendar day (UTC)
    month = peewee.IntegerField()  # the day's month
    join_month = peewee.IntegerField()  # the member's join month (-1: no member)
    currency = peewee.CharField(max_length=3)
    spend = peewee.BigIntegerField(default=0)  # minor units
    visits = peewee.IntegerField(default=0)
    entries = peewee.IntegerField(default=0)

    class Meta:
        table_name = "analytics_member_day"
        primary_key = peewee.CompositeKey("member_id", "day", "store_id", "currency")
        indexes = ((("day",), False),)


class AnalyticsCursor(store.BaseModel):
    name = peewee.CharField(primary_key=True, max_length=32)
    last_id = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "analytics_cursor"


MODELS: list[type[peewee.Model]] = [MemberDay, AnalyticsCursor]


def create_tables() -> None:
    """Only here (not through ``store.register_models``): the clause below depends on the database at hand.

    On SQLite the member-day table is clustered on its key (WITHOUT ROWID): a member's rows are read together,
    in key order, without sorting ten million rows. PostgreSQL has no such clause (the table keeps its heap)."""
    MemberDay._meta.without_rowid = not store.is_postgres()
    try:
        with store.atomic_write():
            store.db.create_tables(MODELS, safe=True)
            AnalyticsCursor.insert(name=CURSOR, last_id=0).on_conflict_ignore().execute()
    finally:
        MemberDay._meta.without_rowid = False
