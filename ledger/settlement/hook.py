"""Writing the funding lines of entries as they are applied (called by ``ledger.apply.apply_entries`` inside its
write transaction, after it holds the ``members`` counter lock, so closing a period, which takes the same lock,
never races an entry into a period being closed)."""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping, Sequence
from typing import Any

from cardkit.core.money import round_half_up
from cardkit.core.state import MemberState, apply_entry
from cardkit.errors import DomainError
from cardkit.journal import EntryKind, JournalEntry
from ledger import store
from ledger.merchants import admin as merchants
from ledger.projection import MemberOpening
from ledger.semantics import folds_plainly
from ledger.settlement import funding
from ledger.settlement.periods import end_ms, period_of, settling_period, start_ms
from ledger.settlement.records import TOTAL_KEY, ClosedPeriod, FundingLine, FundingTotal, MemberLots

FUNDED_KINDS = frozenset({EntryKind.TOPUP, EntryKind.SALE, EntryKind.REFUND, EntryKind.VOID, EntryKind.REDEEM,
                          EntryKind.MEMBERSHIP_FEE})
LINE_COLUMNS = ("terminal_id", "seq", "uuid", "orig_uuid", "member_id", "kind", "flow", "merchant_id", "issuer_id",
                "amount", "points", "currency", "period", "late_from", "wall_ms")


def record_funding(entries: Sequence[JournalEntry], members: Mapping[str, MemberOpening], *,
                   folds_known: bool = False) -> None:
    """Lines for every money entry of a known member in ``entries`` (in the order applied) and their lots.
    ``folds_known``: the caller knows the fold accepts every one of them (the ingest's semantic checks refuse, as
    ``bad_entry``, any money entry that does not fold on its member and currency), so it is not asked again."""
    funded = [e for e in entries if e.kind in FUNDED_KINDS and e.payload.get("member") in members
              and (folds_known or _folds(e, members[str(e.payload["member"])]))]
    if not funded:
        return
    by_terminal = merchants.terminal_merchants(sorted({e.terminal_id for e in funded}))
    member_ids = sorted({str(e.payload["member"]) for e in funded})
    lots: dict[str, funding.Lots] = {
        mid: funding.opening_lots(int(members[mid].opening_balance)) for mid in member_ids}
    stored: Any = (MemberLots.select(MemberLots.member_id, MemberLots.lots.cast("TEXT"))
                   .where(MemberLots.member_id.in_(member_ids)).tuples())
    for mid, text in stored:  # tuples, not models: this runs for every batch a terminal syncs
        lots[str(mid)] = tuple((str(i), int(a)) for i, a in json.loads(text))
    originals = _Originals([str(e.payload["orig"]) for e in funded if isinstance(e.payload.get("orig"), str)])
    funders = merchants.coupon_funders(sorted({c for e in funded if e.payload.get("coupons") for c in _coupons(e)}))
    closed = {str(p.period) for p in ClosedPeriod.select(ClosedPeriod.period)}
    rows: list[tuple[Any, ...]] = []
    periods_of = _PeriodCache()
    for e in funded:
        payload = e.payload
        mid = str(payload["member"])
        orig = payload.get("orig")
        if not isinstance(orig, str):
            orig = None
        merchant = by_terminal[e.terminal_id]
        result = funding.fund_entry(e.kind, payload, merchant=merchant, lots=lots[mid],
                                    original=originals.get(orig) if orig else None,
                                    coupon_weights=_coupon_weights(e, funders) if payload.get("coupons") else ())
        lots[mid] = result.lots
        period, late_from = periods_of.get(e.wall_ms, closed)
        currency = str(payload.get("cur") or members[mid].currency)
        originals.add(e, merchant, result.lines)
        # LINE_COLUMNS: the entry's columns, the line's own fields in their order, then the period's
        head, tail = (e.terminal_id, e.seq, e.uuid, orig, mid, e.kind), (currency, period, late_from, e.wall_ms)
        rows += [head + line + tail for line in result.lines]
    _insert(rows)
    save_lots(lots)


def _folds(entry: JournalEntry, member: MemberOpening) -> bool:
    """Whether the fold accepts the entry (a malformed or foreign-currency entry is stored but moves nothing, so it
    funds nothing either). Its checks look at the payload, the member and the currency, never the balance.
    The semantic checks' fast yes first (the entry names this member, so only currency and fields remain): folding
    every entry on a throw-away state cost a third of the funding lines' time."""
    currency = str(member.currency)
    if folds_plainly(entry.kind, entry.payload, currency):
        return True
    try:
        apply_entry(MemberState(member_id=str(member.member_id), currency=currency), entry.kind, entry.payload)
    except DomainError:
        return False
    return True


def save_lots(lots: dict[str, funding.Lots]) -> None:
    """Upsert the lots of many members in one statement (plain DB-API: the query builder per member cost more
    than the rest of the funding hook)."""
    if not lots:
        return
    table = MemberLots._meta.table_name
    rows = [(mid, json.dumps([list(lot) for lot in value], separators=(",", ":")))
            for mid, value in sorted(lots.items())]
    head = f'INSERT INTO "{table}" ("member_id", "lots") VALUES '
    tail = ' ON CONFLICT ("member_id") DO UPDATE SET "lots" = excluded."lots"'
    cursor = store.db.cursor()
    if store.is_postgres():
        from psycopg2.extras import execute_values

        execute_values(cursor, head + "%s" + tail, rows, page_size=500)
    else:
        cursor.executemany(head + "(?, ?)" + tail, rows)


def _insert(rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    table = FundingLine._meta.table_name
    columns = ", ".join(f'"{c}"' for c in LINE_COLUMNS)
    cursor = store.db.cursor()
    if store.is_postgres():
        from psycopg2.extras import execute_values

        execute_values(cursor, f'INSERT INTO "{table}" ({columns}) VALUES %s', rows, page_size=500)
    else:
        cursor.executemany(f'INSERT INTO "{table}" ({columns}) VALUES ({", ".join("?" * len(LINE_COLUMNS))})',
                           rows)
    _add_totals(rows)


_TOTAL_OF_LINE = operator.itemgetter(*(LINE_COLUMNS.index(c) for c in TOTAL_KEY))
_AMOUNT, _POINTS, _LATE_FROM = LINE_COLUMNS.index("amount"), LINE_COLUMNS.index("points"), TOTAL_KEY.index("late_from")


def _add_totals(rows: list[tuple[Any, ...]]) -> None:
    """Add the lines to their groups' totals (a batch touches a handful of groups: one upsert each)."""
    sums: dict[tuple[Any, ...], list[int]] = {}
    for row in rows:
        key = _TOTAL_OF_LINE(row)
        if key[_LATE_FROM] is None:
            key = (*key[:_LATE_FROM], "", *key[_LATE_FROM + 1:])
        total = sums.get(key)
        if total is None:
            sums[key] = [row[_AMOUNT], row[_POINTS], 1]
        else:
            total[0] += row[_AMOUNT]
            total[1] += row[_POINTS]
            total[2] += 1
    table = FundingTotal._meta.table_name
    key_columns = ", ".join(f'"{c}"' for c in TOTAL_KEY)
    marks = ", ".join(store.db.param for _ in range(len(TOTAL_KEY) + 3))
    sql = (f'INSERT INTO "{table}" ({key_columns}, "amount", "points", "lines") VALUES ({marks}) '
           f'ON CONFLICT ({key_columns}) DO UPDATE SET "amount" = "{table}"."amount" + excluded."amount", '
           f'"points" = "{table}"."points" + excluded."points", "lines" = "{table}"."lines" + excluded."lines"')
    store.db.cursor().executemany(sql, [(*key, *total) for key, total in sorted(sums.items(), key=_sort_key)])


def _sort_key(item: tuple[tuple[Any, ...], list[int]]) -> tuple[str, ...]:
    """Groups upserted in one order everywhere (PostgreSQL workers lock their rows in it: no deadlock)."""
    return tuple(str(v) for v in item[0])


def _coupons(entry: JournalEntry) -> list[str]:
    coupons = entry.payload.get("coupons") if entry.kind == EntryKind.SALE else None
    return [c for c in coupons if isinstance(c, str)] if isinstance(coupons, list) else []


def _coupon_weights(entry: JournalEntry, funders: dict[str, str]) -> list[tuple[str, int]]:
    """Each coupon's funder and face value on this sale (the base a coupon discounts: gross less tier discount)."""
    ids = _coupons(entry)
    if not ids:
        return []
    if len(ids) == 1:
        return [(funders.get(ids[0], funding.PROGRAM), 1)]
    gross, tier = entry.payload.get("gross"), entry.payload.get("tier_disc")
    base = gross - tier if type(gross) is int and type(tier) is int else 0
    rows = {c.coupon_id: c for c in store.Coupon.select().where(store.Coupon.coupon_id.in_(ids))}
    weights = []
    for cid in ids:
        coupon = rows.get(cid)
        if coupon is None:
            face = 0
        elif coupon.amount_off is not None:
            face = int(coupon.amount_off)
        else:
            face = round_half_up(base * int(coupon.percent_off_bp or 0), 10_000)
        weights.append((funders.get(cid, funding.PROGRAM), face))
    return weights


class _PeriodCache:
    """The settling period of entries of one batch (almost always one month: computed once per month)."""

    def __init__(self) -> None:
        self.bounds: tuple[int, int, tuple[str, str | None]] | None = None

    def get(self, wall_ms: int, closed: set[str]) -> tuple[str, str | None]:
        if self.bounds is not None and self.bounds[0] <= wall_ms < self.bounds[1]:
            return self.bounds[2]
        answer = settling_period(wall_ms, closed)
        own = period_of(wall_ms)
        self.bounds = (start_ms(own), end_ms(own), answer)
        return answer


class _Originals:
    """The originals refunds and voids in a batch name: from the funding lines already stored, and from entries
    earlier in the same batch."""

    def __init__(self, uuids: list[str]) -> None:
        self.wanted = frozenset(uuids)  # only these are ever asked for: nothing else of the batch is kept
        self.lines: dict[str, list[funding.Line]] = {}
        self.reversals: dict[str, list[funding.Line]] = {}
        self.kinds: dict[str, str] = {}
        self.merchants: dict[str, str] = {}
        if not uuids:
            return
        wanted = sorted(set(uuids))
        for key, flow, merchant, issuer, amount, points in _line_rows(FundingLine.uuid, wanted):
            self.lines.setdefault(key, []).append(funding.Line(flow, merchant, issuer, amount, points))
            self.merchants.setdefault(key, merchant)
        for key, flow, merchant, issuer, amount, points in _line_rows(FundingLine.orig_uuid, wanted):
            self.reversals.setdefault(key, []).append(funding.Line(flow, merchant, issuer, amount, points))
        entries: Any = (store.AppliedEntry.select(store.AppliedEntry.uuid, store.AppliedEntry.kind,
                                                  store.AppliedEntry.terminal_id)
                        .where(store.AppliedEntry.uuid.in_(wanted)).tuples())
        found = {str(u): (str(k), str(t)) for u, k, t in entries}
        by_terminal = merchants.terminal_merchants(sorted({t for _, t in found.values()}))
        for uuid, (kind, terminal_id) in found.items():
            self.kinds[uuid] = kind
            self.merchants.setdefault(uuid, by_terminal[terminal_id])

    def add(self, entry: JournalEntry, merchant: str, lines: Sequence[funding.Line]) -> None:
        if not self.wanted:
            return
        if entry.uuid in self.wanted:
            self.kinds.setdefault(entry.uuid, entry.kind)
            self.merchants.setdefault(entry.uuid, merchant)
            self.lines.setdefault(entry.uuid, []).extend(lines)
        orig = entry.payload.get("orig")
        if isinstance(orig, str) and orig in self.wanted:
            self.reversals.setdefault(orig, []).extend(lines)

    def get(self, uuid: str) -> funding.Original | None:
        if uuid not in self.kinds:
            return None
        return funding.Original(kind=self.kinds[uuid], merchant=self.merchants[uuid],
                                lines=tuple(self.lines.get(uuid, ())), reversals=tuple(self.reversals.get(uuid, ())))


def _line_rows(key: Any, uuids: list[str]) -> list[tuple[str, str, str, str, int, int]]:
    """``(key, flow, merchant, issuer, amount, points)`` of the stored lines whose ``key`` column (``uuid`` or
    ``orig_uuid``) is one of ``uuids``, in the order written; tuples, not models (this runs for every batch with
    a refund or void)."""
    query: Any = (FundingLine.select(key, FundingLine.flow, FundingLine.merchant_id, FundingLine.issuer_id,
                                     FundingLine.amount, FundingLine.points)
                  .where(key.in_(uuids)).order_by(FundingLine.id).tuples())
    return [(str(k), str(f), str(m), str(i), int(a), int(p)) for k, f, m, i, a, p in query]


BACKFILL_CHUNK = 2_000


def backfill() -> int:
    """Funding lines for a ledger that applied entries before it recorded them (an upgrade): every applied money
    entry of a known member is funded, in the order the ledger applied it.
    Returns the entries funded; a ledger already recording them is left as it is (0)."""
    from cardkit.journal import JournalEntry
    from ledger import pii

    funded_keys = FundingLine.select(FundingLine.id).limit(1)
    if funded_keys.exists():
        return 0
    members = {str(m.member_id): m for m in store.Member.select()}
    query = (store.AppliedEntry.select().where(store.AppliedEntry.kind.in_(sorted(FUNDED_KINDS))
                                               & store.AppliedEntry.member_id.in_(sorted(members)))
             .order_by(store.AppliedEntry.id))
    count = 0
    chunk: list[JournalEntry] = []
    for row in query.iterator():
        payload = pii.entry_payload(str(row.terminal_id), int(row.seq), row.payload, row.pii)
        chunk.append(JournalEntry(terminal_id=str(row.terminal_id), seq=int(row.seq), uuid=str(row.uuid),
                                  prev_hash=bytes(row.prev_hash), wall_ms=int(row.wall_ms), mono_ns=int(row.mono_ns),
                                  cashier_id=row.cashier_id, kind=str(row.kind), payload=payload,
                                  hash=bytes(row.hash)))
        if len(chunk) == BACKFILL_CHUNK:
            with store.atomic_write():
                record_funding(chunk, members)
            count += len(chunk)
            chunk = []
    if chunk:
        with store.atomic_write():
            record_funding(chunk, members)
        count += len(chunk)
    return count
