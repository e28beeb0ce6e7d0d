"""The ledger side of ``ledger.semantics``: load the facts one batch names, keep quarantined entries, list them.

Called by the ingest inside the batch's write transaction (the terminal row is locked, so the facts read here
cannot change under it, except members and cards an admin adds concurrently, which only makes a check stricter).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import cbor2

from cardkit.core.rules import MerchantRules
from cardkit.journal import EntryKind, JournalEntry, canonical_cbor
from ledger import semantics, store
from ledger.merchants import rules as merchant_rules
from ledger.semantics import CardFacts, Checker, Limits, MemberFacts, Original, Quarantine, TerminalFacts

CHUNK = 400  # parameters per IN (...) list, well under SQLite's limit
LIST_LIMIT = 1000


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


# -- limits (from the rules' [anomalies] table, re-read when the rules change) ----------------------------------
_limits: tuple[int, Limits] | None = None
_limits_lock = threading.Lock()


def current_limits() -> Limits:
    global _limits
    row = store.db.execute_sql(f'SELECT "value" FROM "{store.VersionCounter._meta.table_name}" WHERE "name" = '
                               f'{store.db.param}', ("rules",)).fetchone()
    version = int(row[0]) if row else 0  # store.current("rules"), without the query builder's cost
    with _limits_lock:
        if _limits is not None and _limits[0] == version:
            return _limits[1]
    from ledger.alerts import current_thresholds  # the thresholds parser and its defaults

    t = current_thresholds()
    limits = Limits(max_amount_minor=t.entry_max_amount_minor, max_points=t.entry_max_points,
                    clock_ahead_ms=t.entry_clock_ahead_s * 1000,
                    before_enrollment_ms=t.entry_before_enrollment_s * 1000)
    with _limits_lock:
        _limits = (version, limits)
    return limits


# -- facts -------------------------------------------------------------------------------------------------------
def terminal_facts(row: store.Terminal, *, with_merchant: bool = True) -> TerminalFacts:
    """A terminal's facts; ``with_merchant``: with the coupon policy of its store's merchant, read only when a
    batch has a coupon to judge by it."""
    merchant, since_ms = None, 0
    if with_merchant:
        part = merchant_rules.store_rules(str(row.store_id))
        if part.merchant_id is not None and part.overrides.coupons != "all":
            merchant = MerchantRules(merchant_id=part.merchant_id, coupons=part.overrides.coupons)
            since_ms = part.changed_ms
    return TerminalFacts(terminal_id=str(row.terminal_id), store_id=str(row.store_id),
                         enrolled_ms=None if row.enrolled_ms is None else int(row.enrolled_ms),
                         merchant=merchant, merchant_since_ms=since_ms)


def sale_coupons(entries: Iterable[JournalEntry]) -> list[str]:
    """The coupon ids the sales of ``entries`` name."""
    out: list[str] = []
    for entry in entries:
        coupons = entry.payload.get("coupons") if entry.kind == EntryKind.SALE else None
        if isinstance(coupons, list):
            out += [c for c in coupons if type(c) is str and 0 < len(c) <= semantics.MAX_CARD_ID]
    return out


def load_members(member_ids: Iterable[str] | None = None) -> dict[str, MemberFacts]:
    """Members (all of them when ``member_ids`` is None) and their currency."""
    table = store.Member._meta.table_name
    p = store.db.param
    found: dict[str, MemberFacts] = {}

    def read(where: str, args: Sequence[str]) -> None:
        for member_id, currency in store.db.execute_sql(
                f'SELECT "member_id", "currency" FROM "{table}"{where}', list(args)).fetchall():
            found[str(member_id)] = MemberFacts(str(member_id), str(currency))

    if member_ids is None:
        read("", ())
    else:
        for chunk in _chunks(sorted(set(member_ids))):
            read(f' WHERE "member_id" IN ({", ".join(p for _ in chunk)})', chunk)
    return found


def load_cards(card_ids: Iterable[str] | None = None) -> dict[str, CardFacts]:
    table = store.Card._meta.table_name
    p = store.db.param
    out: dict[str, CardFacts] = {}
    queries = ([("", [])] if card_ids is None else
               [(f' WHERE "card_id" IN ({", ".join(p for _ in chunk)})', list(chunk))
                for chunk in _chunks(sorted(set(card_ids)))])
    for where, args in queries:
        for card_id, member_id in store.db.execute_sql(
                f'SELECT "card_id", "member_id" FROM "{table}"{where}', args).fetchall():
            out[str(card_id)] = CardFacts(str(card_id), str(member_id))
    return out


def load_originals(uuids: Iterable[str]) -> dict[str, Original]:
    """The applied sales and top-ups with these uuids, each with the refunds and voids already applied to it."""
    wanted = sorted(set(uuids))
    if not wanted:
        return {}
    table = store.AppliedEntry._meta.table_name
    p = store.db.param
    originals: dict[str, Original] = {}
    members: set[str] = set()
    for chunk in _chunks(wanted):
        rows = store.db.execute_sql(
            f'SELECT "uuid", "kind", "payload", "member_id" FROM "{table}" WHERE "uuid" IN '
            f'({", ".join(p for _ in chunk)}) ORDER BY "id"', list(chunk)).fetchall()
        for entry_uuid, kind, payload, member_id in rows:
            if kind not in (EntryKind.SALE, EntryKind.TOPUP):
                continue
            if entry_uuid in originals:
                originals[entry_uuid].ambiguous = True
                continue
            originals[str(entry_uuid)] = Original.of(str(kind), cbor2.loads(bytes(payload)))
            if member_id is not None:
                members.add(str(member_id))
    # Refunds and voids name their original in the payload (no column): read those of the originals' members.
    for chunk in _chunks(sorted(members)):
        rows = store.db.execute_sql(
            f'SELECT "kind", "payload" FROM "{table}" WHERE "member_id" IN ({", ".join(p for _ in chunk)}) '
            f'AND "kind" IN ({p}, {p}) ORDER BY "id"',
            [*chunk, EntryKind.REFUND.value, EntryKind.VOID.value]).fetchall()
        for kind, payload in rows:
            reversal = cbor2.loads(bytes(payload))
            orig = reversal.get("orig")
            original = originals.get(orig) if isinstance(orig, str) else None
            if original is not None:
                original.reverse(str(kind), reversal)
    return originals


class _KnownFacts:
    """Members' and cards' facts kept between batches (reading them again cost as much as judging the batch).

    A card's member never changes and a member's currency never does; a member's stores change only by a move,
    which adds a ``member_move`` row: the cached members are dropped whenever that table has grown. Only facts
    found are kept (a member or card added later is read when first named), at most ``LIMIT`` of each."""

    LIMIT = 200_000

    def __init__(self) -> None:
        self.members: dict[str, MemberFacts] = {}
        self.cards: dict[str, CardFacts] = {}
        self.moves_mark: object = None

    def members_for(self, ids: Iterable[str]) -> dict[str, MemberFacts]:
        mark = store.db.execute_sql(f'SELECT MAX("id") FROM "{store.MemberMove._meta.table_name}"').fetchone()
        if mark != self.moves_mark or len(self.members) > self.LIMIT:
            self.members.clear()
            self.moves_mark = mark
        wanted = set(ids)
        missing = [m for m in wanted if m not in self.members]
        if missing:
            self.members.update(load_members(missing))
        return {m: self.members[m] for m in wanted if m in self.members}

    def cards_for(self, ids: Iterable[str]) -> dict[str, CardFacts]:
        if len(self.cards) > self.LIMIT:
            self.cards.clear()
        wanted = set(ids)
        missing = [c for c in wanted if c not in self.cards]
        if missing:
            self.cards.update(load_cards(missing))
        return {c: self.cards[c] for c in wanted if c in self.cards}


_known: weakref.WeakKeyDictionary[Any, _KnownFacts] = weakref.WeakKeyDictionary()  # per open database
_known_lock = threading.Lock()


def checker_for(entries: Sequence[JournalEntry], limits: Limits | None = None) -> Checker:
    """A checker holding just the facts ``entries`` name (called inside the batch's write transaction, which
    serialises it with every other writer of this database)."""
    refs = semantics.references(entries)
    with _known_lock:
        known = _known.setdefault(store.db.obj, _KnownFacts())
        members, cards = known.members_for(refs.member_ids), known.cards_for(refs.card_ids)
    # Only the sales and top-ups the batch's refunds and voids name are remembered as originals: the rest of a
    # batch's sales need no bookkeeping.
    return Checker(limits=limits or current_limits(), members=members, cards=cards,
                   originals=load_originals(refs.original_uuids), track=refs.original_uuids)


def judge(entries: Sequence[JournalEntry], terminal: store.Terminal, now_ms: int) -> dict[int, Quarantine]:
    """{seq: why} for the entries of a batch (new, in order) that must be quarantined."""
    if store.is_postgres() and any(e.kind in (EntryKind.REFUND, EntryKind.VOID) for e in entries):
        # What was already refunded must not change between reading it and applying: take the members counter's
        # row lock now (the next lock in ledger.apply's order, which applying takes anyway), so two workers
        # refunding one sale at once see each other. SQLite's write lock already covers the whole batch.
        store.db.execute_sql(f'SELECT "value" FROM "{store.VersionCounter._meta.table_name}" WHERE "name" = %s '
                             "FOR UPDATE", ("members",))
    coupons = sale_coupons(entries)
    facts = terminal_facts(terminal, with_merchant=bool(coupons))
    checker = checker_for(entries)
    if facts.merchant is not None:
        checker.funders = merchant_rules.merchant_funders(coupons)
    return semantics.check_batch(entries, facts, checker, now_ms)


# -- keeping and finding quarantined entries ---------------------------------------------------------------------
def _display(value: object, limit: int) -> str:
    text = value if isinstance(value, str) else "?"
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def keep(entries: Sequence[JournalEntry], verdicts: Mapping[int, Quarantine], *, batch_id: str,
         now_ms: int) -> None:
    """Store the quarantined entries of a batch (inside the batch's transaction)."""
    rows = []
    for entry in entries:
        verdict = verdicts.get(entry.seq)
        if verdict is None:
            continue
        member = entry.payload.get("member")
        member_id = member if isinstance(member, str) and semantics.valid_id(member, semantics.MAX_MEMBER_ID) else None
        rows.append({
            "terminal_id": entry.terminal_id, "seq": entry.seq, "uuid": entry.uuid, "prev_hash": entry.prev_hash,
            "hash": entry.hash, "body": canonical_cbor(entry.body()), "kind": _display(entry.kind, 24),
            "member_id": member_id,
            "code": verdict.code, "reason": _display(verdict.reason, semantics.MAX_REASON), "batch_id": batch_id,
            "at_ms": now_ms,
        })
    for start in range(0, len(rows), 200):
        store.QuarantinedEntry.insert_many(rows[start:start + 200]).execute()


def stored_hashes(terminal_id: str, first: int, last: int) -> dict[int, bytes]:
    """seq → hash of a terminal's quarantined entries from ``first`` to ``last`` (a resent entry must match these
    like any other, and a retried batch's answer repeats their seqs)."""
    p = store.db.param
    rows = store.db.execute_sql(
        f'SELECT "seq", "hash" FROM "{store.QuarantinedEntry._meta.table_name}" WHERE "terminal_id" = {p} '
        f'AND "seq" BETWEEN {p} AND {p}', (terminal_id, first, last)).fetchall()
    return {int(seq): bytes(digest) for seq, digest in rows}


def list_quarantined(*, terminal: str | None = None, code: str | None = None, since_ms: int | None = None,
                     limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    """Newest first, for admins (``cardpos ledger quarantine list``)."""
    q = store.QuarantinedEntry
    if not q.table_exists():
        return []
    query = q.select(q.id, q.terminal_id, q.seq, q.uuid, q.kind, q.member_id, q.code, q.reason, q.batch_id, q.at_ms)
    if terminal:
        query = query.where(q.terminal_id == terminal)
    if code:
        query = query.where(q.code == code)
    if since_ms is not None:
        query = query.where(q.at_ms >= since_ms)
    return [{"id": int(r.id), "terminal_id": r.terminal_id, "seq": int(r.seq), "uuid": r.uuid, "kind": r.kind,
             "member_id": r.member_id, "code": r.code, "reason": r.reason, "batch_id": r.batch_id,
             "at_ms": int(r.at_ms)}
            for r in query.order_by(q.at_ms.desc(), q.id.desc()).limit(limit)]


def count_quarantined() -> int:
    q = store.QuarantinedEntry
    return int(q.select().count()) if q.table_exists() else 0
