"""Refusals of unauthenticated callers: counted in memory, summarized, alerted once per source and window.

A batch or pull that is not signed by an enrolled terminal (no valid signature, an unknown terminal, bytes that
are not an envelope at all) proves nothing about who sent it, so nothing it says is stored: not the terminal id
it claims, not a row per request. Each refusal is counted here per source address, in a bounded map (at most
``max_sources`` sources; the least recently seen one is summarized early to make room). Once a source's window
ends, one audit-log line summarizes it (how many refusals, for which reasons, how many bytes, and up to five of
the claimed ids in a cut, sanitized form). The first refusal of a source in a window raises one finding
(``unauthenticated_refusals``), which the alert store merges per source within its dedup interval: however many
requests or invented terminal ids arrive, a source makes at most one alert per window.

Settings (environment of ``ledger serve``): ``CARDPOS_LEDGER_NOISE_WINDOW_S`` (default 60) and
``CARDPOS_LEDGER_NOISE_SOURCES`` (default 1024).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

import peewee

from ledger import events, store
from ledger.env_settings import env_int

log = logging.getLogger("cardpos.ledger.noise")

WINDOW_ENV = "CARDPOS_LEDGER_NOISE_WINDOW_S"
SOURCES_ENV = "CARDPOS_LEDGER_NOISE_SOURCES"
DEFAULT_WINDOW_MS = 60_000
DEFAULT_MAX_SOURCES = 1024
MAX_SAMPLES = 5
SHOWN_LENGTH = 40
OVERFLOW_SOURCE = "(more sources)"
"""Summaries waiting to be written past ``max_sources`` merge into this one (memory stays bounded)."""
_NEVER = 2**63
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:@/[]")


def shown_id(value: object, limit: int = SHOWN_LENGTH) -> str:
    """What may be stored or echoed of an id nobody vouched for: letters, digits and ``-_.:@/[]`` (anything else
    becomes ``?``), at most ``limit`` characters plus ``…`` when it was longer; ``?`` when it is not text."""
    if not isinstance(value, str) or not value:
        return "?"
    head = "".join(c if c in _SAFE else "?" for c in value[:limit])
    return head + ("…" if len(value) > limit else "")


@dataclass
class SourceWindow:
    """What one source did in one window."""

    source: str
    start_ms: int
    last_ms: int
    count: int = 0
    bytes: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    claimed: list[str] = field(default_factory=list)

    def add(self, reason: str, claimed: str | None, size: int, at_ms: int) -> None:
        self.count += 1
        self.bytes += max(0, size)
        self.last_ms = max(self.last_ms, at_ms)
        self.reasons[reason] += 1
        if claimed is not None and len(self.claimed) < MAX_SAMPLES and claimed not in self.claimed:
            self.claimed.append(claimed)

    def merge(self, other: SourceWindow) -> None:
        self.count += other.count
        self.bytes += other.bytes
        self.start_ms = min(self.start_ms, other.start_ms)
        self.last_ms = max(self.last_ms, other.last_ms)
        self.reasons.update(other.reasons)
        for claimed in other.claimed:
            if len(self.claimed) < MAX_SAMPLES and claimed not in self.claimed:
                self.claimed.append(claimed)

    def details(self, window_ms: int) -> dict[str, Any]:
        return {"window_start_ms": self.start_ms, "window_ms": window_ms, "last_ms": self.last_ms,
                "count": self.count, "bytes": self.bytes, "reasons": dict(sorted(self.reasons.items())),
                "claimed": list(self.claimed)}


class NoiseCounter:
    """Counts refusals per source; thread safe; memory bounded by ``max_sources`` (open plus waiting windows)."""

    def __init__(self, window_ms: int = DEFAULT_WINDOW_MS, max_sources: int = DEFAULT_MAX_SOURCES) -> None:
        self.window_ms = max(1, window_ms)
        self.max_sources = max(1, max_sources)
        self._open: OrderedDict[str, SourceWindow] = OrderedDict()  # least recently seen first
        self._done: OrderedDict[str, SourceWindow] = OrderedDict()  # ended, summary not written yet
        self._lock = threading.Lock()
        self._next_end_ms = _NEVER  # when the earliest open window ends

    def count(self, source: str, reason: str, claimed: str | None, size: int, now_ms: int) -> bool:
        """Count one refusal; True when it is the source's first in its window (the one that may alert)."""
        source = shown_id(source, 64)
        claimed = None if claimed is None else shown_id(claimed)
        with self._lock:
            self._close_ended(now_ms)
            window = self._open.get(source)
            first = window is None
            if window is None:
                if len(self._open) >= self.max_sources:
                    _, oldest = self._open.popitem(last=False)
                    self._finish(oldest)
                window = self._open[source] = SourceWindow(source, now_ms, now_ms)
                self._next_end_ms = min(self._next_end_ms, now_ms + self.window_ms)
            else:
                self._open.move_to_end(source)
            window.add(reason, claimed, size, now_ms)
            return first

    def take_ended(self, now_ms: int, *, everything: bool = False) -> list[SourceWindow]:
        """The windows that ended by ``now_ms`` (all of them with ``everything``), removed from memory."""
        with self._lock:
            self._close_ended(now_ms)
            if everything:
                for window in list(self._open.values()):
                    self._finish(window)
                self._open.clear()
                self._next_end_ms = _NEVER
            ended = list(self._done.values())
            self._done.clear()
            return ended

    def summaries_due(self, now_ms: int) -> bool:
        """True when some window has ended by ``now_ms`` and is not written yet."""
        with self._lock:
            return bool(self._done) or now_ms >= self._next_end_ms

    def sources(self) -> int:
        with self._lock:
            return len(self._open) + len(self._done)

    def _close_ended(self, now_ms: int) -> None:
        if now_ms < self._next_end_ms:
            return
        next_end = _NEVER
        for source in list(self._open):
            window = self._open[source]
            if now_ms - window.start_ms >= self.window_ms:
                del self._open[source]
                self._finish(window)
            else:
                next_end = min(next_end, window.start_ms + self.window_ms)
        self._next_end_ms = next_end

    def _finish(self, window: SourceWindow) -> None:
        if window.source in self._done:
            self._done[window.source].merge(window)
            return
        if len(self._done) >= self.max_sources:
            overflow = self._done.setdefault(OVERFLOW_SOURCE, SourceWindow(OVERFLOW_SOURCE, window.start_ms,
                                                                           window.last_ms))
            overflow.merge(window)
            return
        self._done[window.source] = window


_counter: NoiseCounter | None = None
_counter_lock = threading.Lock()


def counter() -> NoiseCounter:
    """This process's counter, made from the environment on first use."""
    global _counter
    with _counter_lock:
        if _counter is None:
            _counter = NoiseCounter(env_int(WINDOW_ENV, DEFAULT_WINDOW_MS // 1000, 1, 86_400) * 1000,
                                    env_int(SOURCES_ENV, DEFAULT_MAX_SOURCES, 1, 1_000_000))
        return _counter


def reset(window_ms: int = DEFAULT_WINDOW_MS, max_sources: int = DEFAULT_MAX_SOURCES) -> NoiseCounter:
    """Start over with new settings (tests)."""
    global _counter
    with _counter_lock:
        _counter = NoiseCounter(window_ms, max_sources)
        return _counter


UNSIGNED_PULL_CODES = frozenset({"unauthenticated", "unknown_terminal", "bad_signature"})
"""Pull refusals made before a terminal's signature checked out (counted here, never stored per request)."""
_PULL_MESSAGES = {
    "unauthenticated": "the request lacks the terminal signature headers or they are not well formed",
    "unknown_terminal": "terminal {terminal} is not enrolled with this ledger",
    "bad_signature": "the request is not signed by the key of terminal {terminal}",
}


def unsigned_pull_message(code: str, claimed: object) -> str:
    """The answer to an unsigned pull: no more of the claimed terminal id than its shown form."""
    return _PULL_MESSAGES.get(code, "the request was refused").format(terminal=shown_id(claimed))


def count(source: str, what: str, reason: str, claimed: object, size: int,
          now_ms: int) -> events.UnauthenticatedRefused | None:
    """Count one refused unauthenticated request (``what``: batch, pull, enroll or request) in memory only, so the
    server's event loop may call it; returns the alert event when it is the first of the source's window."""
    shown = shown_id(claimed) if claimed is not None else None
    if counter().count(source, f"{what}:{reason}", shown, size, now_ms):
        return events.UnauthenticatedRefused(shown_id(source, 64), what, reason, shown, now_ms)
    return None


def due(now_ms: int) -> bool:
    """True when a window has ended and its summary waits to be written (``report`` writes it)."""
    return counter().summaries_due(now_ms)


def report(event: events.UnauthenticatedRefused | None, now_ms: int) -> None:
    """The blocking half of a count (a worker thread's): publish the alert event, if any, and write the
    summaries of the windows that ended."""
    if event is not None:
        events.publish(event)
    flush(now_ms)


def refused(source: str, what: str, reason: str, claimed: object, size: int, now_ms: int) -> None:
    """``count`` and ``report`` in one call (for callers already off the event loop)."""
    report(count(source, what, reason, claimed, size, now_ms), now_ms)


def flush(now_ms: int, *, everything: bool = False) -> int:
    """Write one audit line per ended source window; returns how many. A failed write is logged, not raised
    (the request being refused must still get its answer), and those summaries are lost, never retried forever."""
    ended = counter().take_ended(now_ms, everything=everything)
    if not ended:
        return 0
    window_ms = counter().window_ms
    try:
        with store.atomic_write():
            for window in ended:
                store.AuditLog.create(at_ms=now_ms, actor=f"source:{window.source}",
                                      action="unauthenticated_refused", subject=window.source,
                                      details=window.details(window_ms))
    except peewee.PeeweeException:
        log.exception("could not write the summary of refused requests",
                      extra={"fields": {"sources": len(ended), "requests": sum(w.count for w in ended)}})
        return 0
    return len(ended)
