"""Failed enrollment attempts, counted per source address in bounded memory.

An attempt fails when its code id names no pending enrollment (unknown, used, expired or locked code) or its
proof does not match the code. Per source and fixed window (``WINDOW_MS``):

- the first ``SOURCE_LIMIT`` failures are answered as usual and each writes one audit line;
- past that the source is refused at once (429 ``too_many_attempts`` with ``Retry-After``, no database work) and
  one audit line says so, until its window ends;
- at ``ALERT_AFTER`` failures the source raises one ``enroll_failures`` finding (the alert store merges findings
  about one source within its dedup interval: at most one alert per source per window).

At most ``MAX_SOURCES`` sources are remembered (the least recently seen is forgotten first), and at most
``AUDIT_BUDGET`` failure lines are written per window over all sources (then one ``terminal_enroll_audit_capped``
line), so an attacker with many addresses cannot grow the database without bound either. Counters live in each
server process (with ``--workers N`` a source gets up to N times the limit); the lockout of a code after
``MAX_BAD_PROOFS`` wrong proofs is kept in the database and holds across processes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

WINDOW_MS = 10 * 60 * 1000
SOURCE_LIMIT = 10
ALERT_AFTER = 5
MAX_SOURCES = 4096
AUDIT_BUDGET = 500
MAX_BAD_PROOFS = 5
"""Wrong proofs for one pending enrollment before its code is locked (the admin adds the terminal again)."""


@dataclass
class _Window:
    start_ms: int
    failures: int = 0
    throttled_noted: bool = False


@dataclass(frozen=True)
class Failure:
    """What to do about one failed attempt."""

    audit: bool  # write its audit line
    alert: bool  # raise the source's finding now
    audit_capped: bool  # write the one "audit capped" line of this window


class AttemptGuard:
    def __init__(self, *, window_ms: int = WINDOW_MS, source_limit: int = SOURCE_LIMIT,
                 alert_after: int = ALERT_AFTER, max_sources: int = MAX_SOURCES,
                 audit_budget: int = AUDIT_BUDGET) -> None:
        self.window_ms = window_ms
        self.source_limit = source_limit
        self.alert_after = alert_after
        self.max_sources = max_sources
        self.audit_budget = audit_budget
        self._sources: OrderedDict[str, _Window] = OrderedDict()
        self._audit_window_ms = -1
        self._audited = 0
        self._lock = threading.Lock()

    def _window(self, source: str, now_ms: int) -> _Window:
        window = self._sources.get(source)
        if window is None or now_ms - window.start_ms >= self.window_ms or now_ms < window.start_ms:
            window = _Window(start_ms=now_ms)
            self._sources[source] = window
        self._sources.move_to_end(source)
        while len(self._sources) > self.max_sources:
            self._sources.popitem(last=False)
        return window

    def throttled(self, source: str, now_ms: int) -> tuple[int, bool] | None:
        """``(retry_after_s, first_time)`` when ``source`` is over its limit, else None; ``first_time`` is True
        once per source and window (write one audit line for it)."""
        with self._lock:
            window = self._sources.get(source)
            if window is None or now_ms - window.start_ms >= self.window_ms or window.failures < self.source_limit:
                return None
            first = not window.throttled_noted
            window.throttled_noted = True
            return max(1, -(-(window.start_ms + self.window_ms - now_ms) // 1000)), first

    def failed(self, source: str, now_ms: int) -> Failure:
        with self._lock:
            window = self._window(source, now_ms)
            window.failures += 1
            bucket = now_ms // self.window_ms
            if bucket != self._audit_window_ms:
                self._audit_window_ms, self._audited = bucket, 0
            self._audited += 1
            return Failure(audit=self._audited <= self.audit_budget, alert=window.failures == self.alert_after,
                           audit_capped=self._audited == self.audit_budget + 1)


guard = AttemptGuard()
"""The server process's counters (tests make their own)."""
