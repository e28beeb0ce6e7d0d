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
    orig_uuid = peewee.CharField(max_length=36, null=True)  # the entry a refund or void reverses (indexed below)
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

    # Few indexes on purpose: every line written at ingest pays for each. A period's statement reads
    # ``FundingTotal``, not the lines (a covering index here cost 5–9 µs per line written). Only reversals have an
    # ``orig_uuid``: their index is partial, so the other lines (nearly all) pay nothing for it.


ORIG_UUID_INDEX = "funding_line_orig_uuid_set"
OLD_ORIG_UUID_INDEX = "funding_line_orig_uuid"
FundingLine.add_index(FundingLine.index(FundingLine.orig_uuid, name=ORIG_UUID_INDEX)
                      .where(FundingLine.orig_uuid.is_null(False)))


class FundingTotal(store.BaseModel):
    """The funding lines of a period added up by group, kept in the transaction that writes the lines: what a
    statement is computed from, a few hundred rows whatever the period's size. ``late_from`` is "" for the
    period's own entries (a key column: NULLs never conflict). ``ledger verify`` checks them against the lines."""

    period = peewee.CharField(max_length=7)
    late_from = peewee.CharField(max_length=7)
    flow = peewee.CharField(max_length=16)
    merchant_id = peewee.CharField(max_length=32)
    issuer_id = peewee.CharField(max_length=32)
    currency = peewee.CharField(max_length=3)
    amount = peewee.BigIntegerField(default=0)
    points = peewee.BigIntegerField(default=0)
    lines = peewee.BigIntegerField(default=0)

    class Meta:
        primary_key = peewee.CompositeKey("period", "late_from", "flow", "merchant_id", "issuer_id", "currency")


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


TOTAL_KEY = ("period", "late_from", "flow", "merchant_id", "issuer_id", "currency")
OLD_COVERING_INDEX = "funding_line_period_late_from_flow_merchant_id_issuer_id_6267ac2"


def totals_from_lines() -> None:
    """A ledger whose lines were written before the totals existed: its covering index and its full index of
    ``orig_uuid`` go (every line written paid for them; the partial one replaces the latter) and its totals are
    added up from the lines, once (lines without totals happen only then)."""
    store.db.execute_sql(f'DROP INDEX IF EXISTS "{OLD_COVERING_INDEX}"')
    store.db.execute_sql(f'DROP INDEX IF EXISTS "{OLD_ORIG_UUID_INDEX}"')
    if FundingTotal.select().exists() or not FundingLine.select().exists():
        return
    line, total = FundingLine._meta.table_name, FundingTotal._meta.table_name
    key = ", ".join(f'"{c}"' for c in TOTAL_KEY)
    store.db.execute_sql(
        f'INSERT INTO "{total}" ({key}, "amount", "points", "lines") '
        f'SELECT "period", COALESCE("late_from", \'\'), "flow", "merchant_id", "issuer_id", "currency", '
        f'SUM("amount"), SUM("points"), COUNT(*) FROM "{line}" '
        f'GROUP BY "period", COALESCE("late_from", \'\'), "flow", "merchant_id", "issuer_id", "currency"')


MODELS: list[type[peewee.Model]] = [FundingLine, FundingTotal, MemberLots, ClosedPeriod]
store.register_models(*MODELS)
store.register_schema_hook(postgres_statistics)
store.register_schema_hook(totals_from_lines)
