"""A hypothesis state machine over a real journal file: appends, sync acks (in and out of order), member updates
with PII, wall-clock jumps and reopening the store, checked against a plain in-memory model after every step."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from cardkit.errors import JournalError
from cardkit.journal import JournalEntry, verify_chain
from terminal.offline.store import TerminalStore
from tests.fixtures.offline import ManualClock, SeqUuids

cards = st.sampled_from(["card-a", "card-b", "card-c"])
members = st.sampled_from(["m-1", "m-2"])


class JournalMachine(RuleBasedStateMachine):
    @initialize()
    def open_fresh(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cardpos-journal-sm-"))
        self.clock = ManualClock()
        self.uuids = SeqUuids("stateful")
        self.store = self._open()
        self.model: list[JournalEntry] = []
        self.synced = 0

    def _open(self) -> TerminalStore:
        return TerminalStore.open(self.dir, "T-SM", clock_ms=self.clock.now_ms, mono_ns=self.clock.mono_ns,
                                  new_uuid=self.uuids)

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.store.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    @rule(card=cards, member=members, net=st.integers(0, 10**9))
    def sale(self, card: str, member: str, net: int) -> None:
        self.model.append(self.store.journal.append("sale", {"card": card, "member": member, "net": net}, "c-1"))

    @rule(member=members, notes=st.text(max_size=40), prefs=st.dictionaries(st.text(max_size=5), st.text(max_size=5),
                                                                            max_size=3))
    def member_update(self, member: str, notes: str, prefs: dict[str, Any]) -> None:
        self.model.append(self.store.journal.append("member_update", {"member": member, "notes": notes,
                                                                      "prefs": prefs}, None))

    @rule(jump=st.integers(-86_400_000, 86_400_000))
    def wall_clock_jumps(self, jump: int) -> None:
        self.clock.jump_wall(jump)

    @precondition(lambda self: len(self.model) > 0)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        upto = data.draw(st.integers(0, len(self.model)))
        assert self.store.journal.mark_synced(upto) == max(self.synced, upto)
        self.synced = max(self.synced, upto)

    @rule(extra=st.integers(1, 5))
    def ack_beyond_the_end_is_refused(self, extra: int) -> None:
        try:
            self.store.journal.mark_synced(len(self.model) + extra)
        except JournalError:
            return
        raise AssertionError("acknowledging entries that do not exist must fail")

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = self._open()

    @invariant()
    def journal_matches_the_model(self) -> None:
        journal = self.store.journal
        assert journal.last_seq == len(self.model)
        assert journal.synced_seq == self.synced
        assert journal.queue_depth == len(self.model) - self.synced
        assert journal.unsynced(max_bytes=1 << 30) == self.model[self.synced :]
        assert journal.entries() == self.model
        assert verify_chain(self.model) is None and journal.verify_chain() is None

    @invariant()
    def history_is_newest_first_per_card_and_member(self) -> None:
        for card in ("card-a", "card-b"):
            expected = [e for e in reversed(self.model) if e.payload.get("card") == card][:3]
            assert self.store.journal.entries_for_card(card, limit=3) == expected
        for member in ("m-1", "m-2"):
            expected = [e for e in self.model if e.payload.get("member") == member and e.seq > self.synced]
            got = self.store.journal.entries_for_member(member, None, after_seq=self.synced, newest_first=False)
            assert got == expected


TestJournalMachine = JournalMachine.TestCase
TestJournalMachine.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
