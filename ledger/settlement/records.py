"""Settlement tables: the funding line of every applied money entry, each member's stored-value lots by issuer,
and closed periods with their signed statements. Registered with ``ledger.store`` so every schema has them."""

from __future__ import annotations

import peewee

from ledger import store


class FundingLine(store.BaseModel):
    """One line of who funded what (``ledger.settlement.funding``). Written in the transaction that applies its
    entry, never updated, never deleted. ``period`` is the settlement period it counts in: the month of the
    entry's own time, or, when that month was already closed as it arrived, the next open month with the
    closed one in ``late_from`` (an adjustment)."""

    id = peewee.BigAutoField()
    terminal_id = peewee.CharField(max_length=40)
    seq = peewee.BigIntegerField()
    uuid = peewee.CharField(max_length=36, index=True)
    orig_uuid = peewee.CharField(max_length=36, null=True, index=True)  # the entry a refund or void reverses
    member_id = peewee.CharField(max_length=40)
    kind = peewee.CharField(max_length=24)
    flow = peewee.CharField(max_length=16)
    merchant_id = peewee.CharField(max_length=32)
    issuer_id = peewee.CharField(max_length=32, default="")
    amount = peewee.BigIntegerField(default=0)
    points = peewee.BigIntegerField(default=0)
    currency = peewee.CharField(max_length=3)
    period = peewee.CharField(max_length=7)
    late_from = peewee.CharField(max_length=7, null=True)
    wall_ms = peewee.BigIntegerField()

    class Meta:
        indexes = (  # few on purpose: every line written at ingest pays for each
            # Covers the settlement of a period in index order: its sums need no table access and no sort
            # (bench_settlement). The price is one more index entry per line written at ingest.
            (("period", "late_from", "flow", "merchant_id", "issuer_id", "currency", "amount", "points"), False),
        )


class MemberLots(store.BaseModel):
    """A member's stored value by issuer, oldest first, as ``[[issuer, minor units], ...]``: derived from the
    funding lines (``ledger verify`` checks they add up to the member's balance)."""

    member_id = peewee.CharField(primary_key=True, max_length=40)
    lots = store.JSONField(default=list)


class ClosedPeriod(store.BaseModel):
    """A closed settlement period: its statement (canonical JSON, the exact bytes signed), their SHA-256 and the
    ledger root key's Ed25519 signature. Never updated; entries arriving later for it settle in the next period."""

    period = peewee.CharField(primary_key=True, max_length=7)
    closed_ms = peewee.BigIntegerField()
    actor = peewee.TextField()
    statement = peewee.BlobField()
    sha256 = peewee.CharField(max_length=64)
    signature = peewee.CharField(max_length=128)
    root_key = peewee.CharField(max_length=64)  # hex raw Ed25519 public key that signed it


def postgres_statistics() -> None:
    """On PostgreSQL, statistics of how many (flow, merchant, issuer, ...) groups a period has: without them the
    planner guesses tens of thousands, sorts 2 million lines instead of hashing a few hundred groups, and settling
    took 3x a bare GROUP BY (bench_settlement); with them, about as long as one."""
    if store.is_postgres():
        store.db.execute_sql("CREATE STATISTICS IF NOT EXISTS funding_line_groups (ndistinct) ON "
                             "late_from, flow, merchant_id, issuer_id, currency FROM funding_line")


MODELS: list[type[peewee.Model]] = [FundingLine, MemberLots, ClosedPeriod]
store.register_models(*MODELS)
store.register_schema_hook(postgres_statistics)
