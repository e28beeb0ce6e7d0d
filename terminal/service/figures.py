"""A member's current figures and a card's offline use, read from the member cache and the journal, cached.

A member's state is the ledger's last snapshot from the member cache with this terminal's entries recorded after
it folded on top by ``cardkit.core.state.apply_entry`` (the same fold the ledger runs). Both caches here are
brought up to date on every read by folding or reading only the entries appended since the last read: the
journal grows with every sale, and refolding all of it made each sale O(n).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cardkit.core.members import Tier
from cardkit.core.state import MemberState, apply_entry
from cardkit.journal import EntryKind, JournalEntry
from terminal.offline.cache import CachedMember
from terminal.offline.state import MEMBERS_SYNCED_SEQ
from terminal.offline.store import TerminalStore

# Without the synced seq recorded at the snapshot, the counter folds the unsynced entries only, which misses
# entries synced by a push whose pull then failed.
SNAPSHOT_SYNCED_SEQ = MEMBERS_SYNCED_SEQ

CardUse = tuple[tuple[int, str, Mapping[str, Any]], ...]
"""A card's journal entries as ``(wall_ms, kind, payload)``, oldest first (what the offline limits read)."""


@dataclass(frozen=True, slots=True)
class MemberFold:
    """A member's snapshot with this terminal's entries after ``after_seq`` folded on, up to ``last_seq``.

    Valid only while ``base`` and ``after_seq`` are what the snapshot gives: a new snapshot from the ledger changes
    one of them and the fold starts again from it.
    """

    base: MemberState
    after_seq: int
    last_seq: int
    state: MemberState
    folded_any: bool
    notes: str | None = None
    """The last ``member_update`` notes folded (None: none folded), as the member view shows them."""
    prefs: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class _CardUse:
    last_seq: int
    entries: CardUse = field(default_factory=tuple)


class MemberFigures:
    """The folds per member and the journal use per card, safe to read from several worker threads at once."""

    def __init__(self, store: TerminalStore) -> None:
        self._store = store
        # Read by worker threads at once (quotes while a sale commits): entries are replaced whole, under this lock.
        self._lock = threading.Lock()
        self._folds: dict[str, MemberFold] = {}
        self._card_use: dict[str, _CardUse] = {}

    def fold(self, member_id: str, *, currency: str,
             tier_hint: Tier = Tier.STANDARD) -> tuple[MemberFold, CachedMember | None]:
        """The member's fold and their cached snapshot (None if unknown). ``currency`` and ``tier_hint`` start the
        figures of a member the ledger never sent."""
        cached = self._store.cache.get(member_id)
        if cached is not None:
            try:
                tier = Tier(cached.tier)
            except ValueError:
                tier = tier_hint
            base = MemberState(member_id=member_id, currency=cached.currency, balance=cached.balance,
                               points=cached.points, tier=tier, yearly_spend=cached.yearly_spend)
            after_seq = self._snapshot_seq(member_id)
        else:
            # The ledger never sent this member: everything this terminal recorded for them is all we know.
            base = MemberState(member_id=member_id, currency=currency, tier=tier_hint)
            after_seq = 0
        with self._lock:
            fold = self._folds.get(member_id)
        if fold is None or fold.base != base or fold.after_seq != after_seq:
            fold = MemberFold(base=base, after_seq=after_seq, last_seq=after_seq, state=base, folded_any=False)
        entries = self._store.journal.entries_for_member(member_id, limit=None, after_seq=fold.last_seq,
                                                         newest_first=False)
        if entries:
            state, notes, prefs = fold.state, fold.notes, fold.prefs
            for entry in entries:
                state = apply_entry(state, entry.kind, entry.payload)
                if entry.kind == EntryKind.MEMBER_UPDATE:
                    if "notes" in entry.payload:
                        notes = str(entry.payload["notes"])
                    if "prefs" in entry.payload:
                        prefs = dict(entry.payload["prefs"])
            # Notes and preferences move no figure: saving them leaves the figures the ledger's.
            moved = fold.folded_any or any(entry.kind != EntryKind.MEMBER_UPDATE for entry in entries)
            fold = MemberFold(base=base, after_seq=after_seq, last_seq=entries[-1].seq, state=state,
                              folded_any=moved, notes=notes, prefs=prefs)
        with self._lock:
            current = self._folds.get(member_id)
            # Another thread may have folded further meanwhile: keep the longer fold of the same snapshot.
            if (current is None or current.base != base or current.after_seq != after_seq
                    or current.last_seq <= fold.last_seq):
                self._folds[member_id] = fold
        return fold, cached

    def _snapshot_seq(self, member_id: str) -> int:
        """This terminal's last entry the member's cached snapshot counts: the seq a look-up answer named for a
        member looked up online, else the synced seq recorded when the pulled snapshot was applied."""
        looked_up = self._store.cache.looked_up_seq(member_id)
        if looked_up is not None:
            return looked_up
        recorded = self._store.sync_state.get(SNAPSHOT_SYNCED_SEQ)
        return int(recorded) if isinstance(recorded, int) else self._store.journal.synced_seq

    def member_use(self, member_id: str) -> CardUse:
        """All of this terminal's entries for the member, whichever card was used, oldest first (the offline limits
        count a member's cards together); read incrementally like ``card_use``."""
        return self._use("member:" + member_id, lambda after: self._store.journal.entries_for_member(
            member_id, limit=None, after_seq=after, newest_first=False))

    def card_use(self, card_id: str) -> CardUse:
        """All of this terminal's entries for the card, oldest first; only those appended since the last call are
        read from the journal (entries are append-only, so the ones read before stay as they were)."""
        return self._use(card_id, lambda after: self._store.journal.entries_for_card(
            card_id, limit=None, after_seq=after, newest_first=False))

    def _use(self, key: str, read_after: Callable[[int], list[JournalEntry]]) -> CardUse:
        with self._lock:
            use = self._card_use.get(key) or _CardUse(last_seq=0)
        new = read_after(use.last_seq)
        if new:
            use = _CardUse(last_seq=new[-1].seq,
                           entries=use.entries + tuple((e.wall_ms, e.kind, e.payload) for e in new))
            with self._lock:
                current = self._card_use.get(key)
                if current is None or current.last_seq < use.last_seq:
                    self._card_use[key] = use
        return use.entries
