"""What a detector concludes: a finding about one subject, with the operations that show it."""

from __future__ import annotations

import enum
from typing import NamedTuple

from cardkit.journal import JournalEntry


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS: dict[Severity, int] = {s: i for i, s in enumerate(Severity)}  # rank is read for every finding


class SubjectType(enum.StrEnum):
    CARD = "card"
    MEMBER = "member"
    TERMINAL = "terminal"
    STORE = "store"
    CASHIER = "cashier"
    SOURCE = "source"  # a network address that sent requests no terminal signed


class Finding(NamedTuple):
    """One detector's conclusion. Findings with the same ``rule`` + subject (+ ``window``) merge into one alert.

    ``count`` is how many occurrences this finding adds to the alert (a burst's first finding carries the
    taps that crossed the threshold, each later tap adds one). ``window`` pins the dedup window explicitly
    (a cashier's shift); without it the alert store merges findings closer than its dedup interval.

    A named tuple rather than a frozen dataclass: just as immutable, and a busy card makes one finding per
    operation, where a frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) cost three times
    as much to build.
    """

    rule: str
    severity: Severity
    subject_type: SubjectType
    subject_id: str
    at_ms: int
    evidence: tuple[str, ...]
    summary: str
    count: int = 1  # type: ignore[assignment]  # shadows tuple.count(): a finding is a record, not a sequence
    terminal_id: str | None = None
    window: str | None = None
    hold_card: str | None = None  # the card to put on hold (double spend)
    since_ms: int | None = None  # earliest occurrence counted in this finding (a burst's first hit)

    @property
    def first_ms(self) -> int:
        return self.at_ms if self.since_ms is None else min(self.since_ms, self.at_ms)


def op_id(entry: JournalEntry) -> str:
    """An operation's id as evidence: ``terminal:seq`` (unique at the ledger, readable by people)."""
    return f"{entry.terminal_id}:{entry.seq}"
