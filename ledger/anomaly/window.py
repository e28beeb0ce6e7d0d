"""Counting occurrences of something inside a sliding time window, in a JSON-able state dict.

Batches from different terminals arrive out of time order, so hits are kept sorted by their own time and a
window is any interval of the given length that contains the new hit. Once a window reaches its threshold the
burst is *firing*: each further hit within one window length adds one to the same alert instead of starting
a new count, which is how a burst of 1,000 taps becomes one alert with a count of 1,000.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledger.anomaly.state import StateStore

MAX_EVIDENCE = 20
LATE_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Burst:
    count: int  # occurrences this hit adds to the alert (threshold-crossing hits, or 1 while firing)
    evidence: tuple[str, ...]
    first: bool  # True when this hit crossed the threshold
    since_ms: int  # time of the earliest hit counted here


def hit(state: StateStore, key: str, at_ms: int, evidence: str, threshold: int, window_ms: int,
        accept: Callable[[list[str]], bool] | None = None) -> Burst | None:
    """Record one hit; return a Burst when the window reaches ``threshold`` (or is already firing).

    ``accept`` may veto a full window by its evidence (a store burst must span two terminals); a vetoed window
    keeps counting, so it fires as soon as a hit makes it acceptable.
    """
    if threshold <= 0:
        return None
    data: dict[str, Any] = state.get(key) or {"t": [], "e": [], "until": None}
    until = data.get("until")
    if until is not None and at_ms <= until and at_ms >= until - 2 * window_ms:
        data["until"] = max(until, at_ms + window_ms)
        state.put(key, data)
        return Burst(1, (evidence,), first=False, since_ms=at_ms)
    times: list[int] = data["t"]
    ids: list[str] = data["e"]
    pos = bisect.bisect_right(times, at_ms)
    times.insert(pos, at_ms)
    ids.insert(pos, evidence)
    # keep the hits that can still share a window with a hit yet to arrive: a terminal that was offline
    # delivers its entries up to a day late (the offline spending limit), so the horizon is a day past the window
    cutoff = times[-1] - window_ms - LATE_MS
    drop = bisect.bisect_left(times, cutoff)
    if drop:
        del times[:drop]
        del ids[:drop]
    if len(times) > 4 * threshold + 8:  # bound the state; out-of-order stragglers beyond this are rare
        del times[: len(times) - (4 * threshold + 8)]
        del ids[: len(ids) - len(times)]
    # no window holding at_ms can hold more than the hits within one window length either side of it; below the
    # threshold that bound settles it without the search (the common case: a card used a few times a day)
    if bisect.bisect_right(times, at_ms + window_ms - 1) - bisect.bisect_left(times, at_ms - window_ms + 1) \
            < threshold:
        state.put(key, data)
        return None
    best_lo, best_hi = _best_window(times, at_ms, window_ms)
    if best_hi - best_lo >= threshold and (accept is None or accept(ids[best_lo:best_hi])):
        chosen = ids[best_lo:best_hi]
        since = times[best_lo]
        count = len(chosen)
        del times[best_lo:best_hi]
        del ids[best_lo:best_hi]
        data["until"] = at_ms + window_ms
        state.put(key, data)
        return Burst(count, tuple(chosen[-MAX_EVIDENCE:]), first=True, since_ms=since)
    state.put(key, data)
    return None


def _best_window(times: list[int], at_ms: int, window_ms: int) -> tuple[int, int]:
    """Slice bounds of the fullest window of length ``window_ms`` that contains ``at_ms``."""
    best = (0, 0)
    start = bisect.bisect_left(times, at_ms - window_ms + 1)
    end = bisect.bisect_right(times, at_ms)
    for lo in range(start, end):
        hi = bisect.bisect_right(times, times[lo] + window_ms - 1)
        if hi - lo > best[1] - best[0]:
            best = (lo, hi)
    return best
