"""Counting occurrences of something inside a sliding time window, in a JSON-able state dict.

Batches from different terminals arrive out of time order, so hits are kept sorted by their own time and a
window is any interval of the given length that contains the new hit. Once a window reaches its threshold the
burst is *firing*: each further hit within one window length adds one to the same alert instead of starting
a new count, which is how a burst of 1,000 taps becomes one alert with a count of 1,000.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ledger.anomaly.state import StateStore

MAX_EVIDENCE = 20
LATE_MS = 86_400_000


class Burst(NamedTuple):
    """What one hit adds to a burst (a named tuple: a firing card builds one per operation)."""

    count: int  # type: ignore[assignment]  # occurrences this hit adds (threshold-crossing hits, or 1 while firing)
    evidence: tuple[str, ...]
    first: bool  # True when this hit crossed the threshold
    since_ms: int  # time of the earliest hit counted here


_new_burst = tuple.__new__
"""``_new_burst(Burst, (count, evidence, first, since_ms))`` is ``Burst(...)`` without the named tuple's Python
``__new__``: a firing card makes two per operation."""


def hit(state: StateStore, key: str, at_ms: int, evidence: str, threshold: int, window_ms: int,
        accept: Callable[[list[str]], bool] | None = None) -> Burst | None:
    """Record one hit; return a Burst when the window reaches ``threshold`` (or is already firing).

    ``accept`` may veto a full window by its evidence (a store burst must span two terminals); a vetoed window
    keeps counting, so it fires as soon as a hit makes it acceptable.
    """
    return hits(state, key, ((at_ms, evidence),), threshold, window_ms, accept)[0]


def hits(state: StateStore, key: str, events: Sequence[tuple[int, str]], threshold: int, window_ms: int,
         accept: Callable[[list[str]], bool] | None = None) -> list[Burst | None]:
    """``hit`` for each ``(at_ms, evidence)`` in turn, reading and writing the state once: one Burst or None
    per hit, and the same state after them as after ``hit`` one hit at a time (a busy card's batch)."""
    if threshold <= 0:
        return [None] * len(events)
    data: dict[str, Any] | None = state.get(key)
    if not data:
        data = {"t": [], "e": [], "until": None}
    until = start_until = data.get("until")
    cap = 4 * threshold + 8  # hits kept at most: bounds the state; out-of-order stragglers beyond this are rare
    out: list[Burst | None] = []
    append = out.append
    for at_ms, evidence in events:
        if until is not None and until - 2 * window_ms <= at_ms <= until:  # firing: the common case of a burst
            if at_ms + window_ms > until:
                until = at_ms + window_ms
            append(_new_burst(Burst, (1, (evidence,), False, at_ms)))
            continue
        times: list[int] = data["t"]
        ids: list[str] = data["e"]
        if not times or at_ms >= times[-1]:  # in time order: where bisect_right would put it
            times.append(at_ms)
            ids.append(evidence)
        else:
            pos = bisect.bisect_right(times, at_ms)
            times.insert(pos, at_ms)
            ids.insert(pos, evidence)
        # keep the hits that can still share a window with a hit yet to arrive: a terminal that was offline
        # delivers its entries up to a day late (the offline spending limit), so the horizon is a day past the
        # window
        cutoff = times[-1] - window_ms - LATE_MS
        if times[0] < cutoff:
            drop = bisect.bisect_left(times, cutoff)
            del times[:drop]
            del ids[:drop]
        if len(times) > cap:
            del times[: len(times) - cap]
            del ids[: len(ids) - len(times)]
        # no window holding at_ms can hold more than the hits within one window length either side of it (nor
        # more than all the hits kept); below the threshold that bound settles it without the search (the common
        # case: a card used a few times a day)
        if len(times) < threshold:
            append(None)
            continue
        upper = at_ms + window_ms - 1
        within = (len(times) if times[-1] <= upper else bisect.bisect_right(times, upper)) \
            - bisect.bisect_left(times, at_ms - window_ms + 1)
        if within < threshold:
            append(None)
            continue
        best_lo, best_hi = _best_window(times, at_ms, window_ms)
        if best_hi - best_lo >= threshold and (accept is None or accept(ids[best_lo:best_hi])):
            chosen = ids[best_lo:best_hi]
            since = times[best_lo]
            del times[best_lo:best_hi]
            del ids[best_lo:best_hi]
            until = at_ms + window_ms
            append(Burst(len(chosen), tuple(chosen[-MAX_EVIDENCE:]), True, since))
        else:
            append(None)
    if until != start_until:
        data["until"] = until
    state.put(key, data)
    return out


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
