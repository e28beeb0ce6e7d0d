"""Member state derived from applied entries: the opening state, the fold, the cached projection row.

The fold is ``cardkit.core.state.apply_entry`` — the same function the terminals use — applied to every
applied entry that names the member, in the order the ledger applied them (``AppliedEntry.id``). An entry the
fold refuses (a malformed money entry, a currency mismatch) is stored but leaves the state unchanged; ``ledger
verify`` lists it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cardkit.core.members import Tier
from cardkit.core.state import MONEY_KINDS, MemberState, apply_entry
from cardkit.errors import DomainError
from ledger import store


class MemberOpening(Protocol):
    """What the opening state (and the funding lots, ``ledger.settlement.hook``) is made of: a ``store.Member`` row,
    or ``ledger.apply``'s narrower read of one."""

    @property
    def member_id(self) -> Any: ...
    @property
    def currency(self) -> Any: ...
    @property
    def opening_balance(self) -> Any: ...
    @property
    def opening_points(self) -> Any: ...
    @property
    def opening_tier(self) -> Any: ...


def opening_state(member: MemberOpening) -> MemberState:
    return MemberState(member_id=str(member.member_id), currency=str(member.currency),
                       balance=int(member.opening_balance), points=int(member.opening_points),
                       tier=Tier(str(member.opening_tier)))


def state_from_row(row: store.MemberProjection) -> MemberState:
    return MemberState.from_mapping(row.state)


@dataclass
class FoldResult:
    state: MemberState
    entries: int = 0
    refused: list[str] = field(default_factory=list)  # "terminal/seq: why" for entries the fold refused


def fold_entries(state: MemberState, entries: Iterable[tuple[str, int, str, Mapping[str, Any]]],
                 result: FoldResult | None = None) -> FoldResult:
    """Fold ``(terminal_id, seq, kind, payload)`` tuples over ``state``."""
    out = result or FoldResult(state)
    out.state = state
    for terminal_id, seq, kind, payload in entries:
        out.entries += 1
        if kind not in MONEY_KINDS:
            continue
        try:
            out.state = apply_entry(out.state, kind, payload)
        except DomainError as exc:
            out.refused.append(f"{terminal_id}/{seq}: {exc}")
    return out


def save_projections(states: list[tuple[MemberState, int]]) -> None:
    """Upsert many projection rows in one statement (``ON CONFLICT``: SQLite >= 3.24 and PostgreSQL)."""
    if not states:
        return
    table = store.MemberProjection._meta.table_name
    rows = [(s.member_id, s.balance, s.points, s.tier.value, json.dumps(s.to_mapping(), sort_keys=True), n)
            for s, n in states]
    head = f'INSERT INTO "{table}" ("member_id", "balance", "points", "tier", "state", "entries") VALUES '
    tail = (' ON CONFLICT ("member_id") DO UPDATE SET "balance" = excluded."balance", "points" = excluded."points", '
            f'"tier" = excluded."tier", "state" = excluded."state", "entries" = "{table}"."entries" + '
            'excluded."entries"')
    cursor = store.db.cursor()
    if store.is_postgres():
        from psycopg2.extras import execute_values

        execute_values(cursor, head + "%s" + tail, rows, page_size=500)
    else:
        cursor.executemany(head + "(?, ?, ?, ?, ?, ?)" + tail, rows)


def projected_state(member: store.Member) -> MemberState:
    """The cached state (the opening state when nothing has been applied yet)."""
    row = store.MemberProjection.get_or_none(store.MemberProjection.member_id == member.member_id)
    return opening_state(member) if row is None else state_from_row(row)
