"""Applying verified journal entries to the store: the event rows, the member projections, member edits.

Callers hold a write transaction and have already checked sequence and chain (``ledger.ingest`` for terminals,
``append_ledger_entry`` for the ledger's own entries). Lock order, the same everywhere so PostgreSQL workers
never deadlock: terminal row → the ``members`` counter → member and projection rows. Holding the counter row
also serialises every read-modify-write of a projection.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cardkit.journal import GENESIS_HASH, EntryKind, JournalEntry, make_entry
from ledger import pii, projection, store
from ledger.settlement import hook as funding_hook

LEDGER_TERMINAL_ID = "ledger"
"""The ledger's own hash chain: admin changes that move member state (tier changes on card replacement)."""

ENTRY_COLUMNS = ("terminal_id", "seq", "uuid", "prev_hash", "hash", "wall_ms", "mono_ns", "cashier_id", "kind",
                 "payload", "pii", "member_id", "batch_id", "applied_ms")
PG_PAGE = 500
IN_CHUNK = 400  # parameters per IN (...) list, well under SQLite's limit


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


def apply_entries(entries: Sequence[JournalEntry], *, batch_id: str, now_ms: int, judged: bool = False) -> set[str]:
    """Insert ``entries`` (contiguous, new) and update what they touch. Returns the member ids changed.
    ``judged``: the semantic checks passed every entry (``ledger.ingest``), so each money entry of a known member
    is known to fold (the checks fold it on the same member and currency)."""
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
    members = _opening_facts(sorted(by_member))
    cached = _projected_states(sorted(members))
    folded: list[tuple[projection.MemberState, int]] = []
    for member_id in sorted(members):
        member = members[member_id]
        mine = by_member[member_id]
        state = cached.get(member_id)
        if state is None:
            state = projection.opening_state(member)
        result = projection.fold_entries(state, ((e.terminal_id, e.seq, e.kind, e.payload) for e in mine))
        folded.append((result.state, len(mine)))
        if any(e.kind == EntryKind.MEMBER_UPDATE for e in mine):
            _apply_member_edits(store.Member.get_by_id(member_id), mine)
    projection.save_projections(folded)
    _record_funding(entries, members, judged)
    _set_member_versions(sorted(members), version)
    return set(members)


@dataclass(frozen=True, slots=True)
class OpeningFacts:
    """What applying entries reads of a member row: who, the currency, and the opening figures the fold and the
    funding lots start from (the encrypted personal columns are read only for a ``member_update``)."""

    member_id: str
    currency: str
    opening_balance: int
    opening_points: int
    opening_tier: str


def _in_chunks(sql: str, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (ending in ``IN ``) for ``ids``, a chunk of parameters at a time (SQLite's limit).
    Plain DB-API: the query builder and model rows cost more than reading the rows (once per batch, but for
    every member the batch names)."""
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start:start + IN_CHUNK]
        marks = ", ".join(store.db.param for _ in chunk)
        rows += store.db.execute_sql(f"{sql}({marks})", list(chunk)).fetchall()
    return rows


def _opening_facts(member_ids: Sequence[str]) -> dict[str, OpeningFacts]:
    table = store.Member._meta.table_name
    rows = _in_chunks(f'SELECT "member_id", "currency", "opening_balance", "opening_points", "opening_tier" '
                      f'FROM "{table}" WHERE "member_id" IN ', member_ids)
    return {str(m): OpeningFacts(str(m), str(c), int(b), int(p), str(t)) for m, c, b, p, t in rows}


def _projected_states(member_ids: Sequence[str]) -> dict[str, projection.MemberState]:
    """The cached projections of these members (``projection.state_from_row`` without the model rows)."""
    table = store.MemberProjection._meta.table_name
    rows = _in_chunks(f'SELECT "member_id", "state" FROM "{table}" WHERE "member_id" IN ', member_ids)
    return {str(m): projection.MemberState.from_mapping(json.loads(state)) for m, state in rows}


def _set_member_versions(member_ids: Sequence[str], version: int) -> None:
    table = store.Member._meta.table_name
    for start in range(0, len(member_ids), IN_CHUNK):
        chunk = member_ids[start:start + IN_CHUNK]
        marks = ", ".join(store.db.param for _ in chunk)
        store.db.execute_sql(f'UPDATE "{table}" SET "version" = {store.db.param} WHERE "member_id" IN ({marks})',
                             [version, *chunk])


def _record_funding(entries: Sequence[JournalEntry], members: Mapping[str, OpeningFacts], judged: bool) -> None:
    """Who funded what (issue 17): the funding lines of every money entry, in the transaction that applies it."""
    funding_hook.record_funding(entries, members, folds_known=judged)


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
