"""Applying verified journal entries to the store: the event rows, the member projections, member edits.

Callers hold a write transaction and have already checked sequence and chain (``ledger.ingest`` for terminals,
``append_ledger_entry`` for the ledger's own entries). Lock order, the same everywhere so PostgreSQL workers
never deadlock: terminal row → the ``members`` counter → member and projection rows. Holding the counter row
also serialises every read-modify-write of a projection.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from cardkit.journal import GENESIS_HASH, EntryKind, JournalEntry, make_entry
from ledger import pii, projection, store
from ledger.settlement import hook as funding_hook

LEDGER_TERMINAL_ID = "ledger"
"""The ledger's own hash chain: admin changes that move member state (tier changes on card replacement)."""

ENTRY_COLUMNS = ("terminal_id", "seq", "uuid", "prev_hash", "hash", "wall_ms", "mono_ns", "cashier_id", "kind",
                 "payload", "pii", "member_id", "batch_id", "applied_ms")
PG_PAGE = 500


def entry_member(entry: JournalEntry) -> str | None:
    member = entry.payload.get("member")
    return member if isinstance(member, str) else None


def _insert_entries(rows: list[tuple[Any, ...]]) -> None:
    """Payloads are stored as plain (not canonical) CBOR: a quarter of the encoding cost, and ``verify`` rebuilds
    the canonical body from the decoded payload anyway.

    Bulk insert on the transaction's own cursor. Plain DB-API rather than ``insert_many``: building the SQL
    through the query builder cost more than SQLite spent storing the rows."""
    table = store.AppliedEntry._meta.table_name
    columns = ", ".join(f'"{c}"' for c in ENTRY_COLUMNS)
    cursor = store.db.cursor()
    if store.is_postgres():
        from psycopg2.extras import execute_values

        execute_values(cursor, f'INSERT INTO "{table}" ({columns}) VALUES %s', rows, page_size=PG_PAGE)
    else:
        marks = ", ".join("?" * len(ENTRY_COLUMNS))
        cursor.executemany(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', rows)


def apply_entries(entries: Sequence[JournalEntry], *, batch_id: str, now_ms: int) -> set[str]:
    """Insert ``entries`` (contiguous, new) and update what they touch. Returns the member ids changed."""
    rows = [(e.terminal_id, e.seq, e.uuid, e.prev_hash, e.hash, e.wall_ms, e.mono_ns, e.cashier_id, e.kind,
             *pii.stored_payload(e), entry_member(e), batch_id, now_ms) for e in entries]
    _insert_entries(rows)
    signups = [e for e in entries if e.kind == EntryKind.MEMBER_SIGNUP]
    if signups:  # new members from the tills: created, or merged onto the member with the same phone
        from ledger import signup

        signup.apply_signups(signups, now_ms=now_ms)
    by_member: dict[str, list[JournalEntry]] = {}
    for e in entries:
        member_id = entry_member(e)
        if member_id is not None:
            by_member.setdefault(member_id, []).append(e)
    if not by_member:
        return set()
    known = store.Member.select(store.Member.member_id).where(store.Member.member_id.in_(sorted(by_member)))
    if not known.exists():
        return set()
    version = store.bump("members")  # takes the counter lock before any member row is read for update
    members = {m.member_id: m for m in store.Member.select().where(store.Member.member_id.in_(sorted(by_member)))}
    cached = {row.member_id: row for row in store.MemberProjection.select().where(
        store.MemberProjection.member_id.in_(sorted(members)))}
    folded: list[tuple[projection.MemberState, int]] = []
    for member_id in sorted(members):
        member = members[member_id]
        mine = by_member[member_id]
        row = cached.get(member_id)
        state = projection.opening_state(member) if row is None else projection.state_from_row(row)
        result = projection.fold_entries(state, ((e.terminal_id, e.seq, e.kind, e.payload) for e in mine))
        folded.append((result.state, len(mine)))
        _apply_member_edits(member, mine)
    projection.save_projections(folded)
    _record_funding(entries, members)
    store.Member.update(version=version).where(store.Member.member_id.in_(sorted(members))).execute()
    return set(members)


def _record_funding(entries: Sequence[JournalEntry], members: dict[str, store.Member]) -> None:
    """Who funded what (issue 17): the funding lines of every money entry, in the transaction that applies it."""
    funding_hook.record_funding(entries, members)


def _apply_member_edits(member: store.Member, entries: Sequence[JournalEntry]) -> None:
    """``member_update`` entries edit notes and preferences (personal data: ``ledger.pii`` keeps it encrypted)."""
    pii.apply_member_edits(member, entries)


def _ledger_terminal(now_ms: int) -> store.Terminal:
    row = store.Terminal.get_or_none(store.Terminal.terminal_id == LEDGER_TERMINAL_ID)
    if row is None:
        store.Terminal.insert(terminal_id=LEDGER_TERMINAL_ID, name="ledger (admin changes)", store_id="*",
                              status="internal", created_ms=now_ms, last_seq=0,
                              last_hash=GENESIS_HASH).on_conflict_ignore().execute()
        row = store.Terminal.get_by_id(LEDGER_TERMINAL_ID)
    return row


def lock_terminal(terminal_id: str) -> store.Terminal | None:
    """The terminal row, locked for this transaction on PostgreSQL (SQLite's write lock covers it already)."""
    query = store.Terminal.select().where(store.Terminal.terminal_id == terminal_id)
    if store.is_postgres():
        query = query.for_update()
    return query.first()


def append_ledger_entry(kind: EntryKind, payload: dict[str, Any], *, actor: str, now_ms: int,
                        randbytes: Callable[[int], bytes]) -> JournalEntry:
    """Append one entry to the ledger's own chain and apply it (inside the caller's write transaction)."""
    _ledger_terminal(now_ms)
    row = lock_terminal(LEDGER_TERMINAL_ID)
    assert row is not None  # created just above
    entry = make_entry(terminal_id=LEDGER_TERMINAL_ID, seq=int(row.last_seq) + 1, prev_hash=bytes(row.last_hash),
                       wall_ms=now_ms, mono_ns=0, cashier_id=actor, kind=kind.value, payload=payload,
                       entry_uuid=str(uuid.UUID(bytes=randbytes(16), version=4)))
    apply_entries([entry], batch_id=f"ledger-{entry.seq}", now_ms=now_ms)
    store.Terminal.update(last_seq=entry.seq, last_hash=entry.hash, last_seen_ms=now_ms).where(
        store.Terminal.terminal_id == LEDGER_TERMINAL_ID).execute()
    return entry
