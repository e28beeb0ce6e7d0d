"""The sliding-window burst counter against properties: every hit of a burst is counted exactly once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger.anomaly import MemoryState, window

W = 600_000


@given(st.lists(st.integers(min_value=0, max_value=W - 1), min_size=1, max_size=80), st.integers(1, 20))
def test_hits_inside_one_window_in_any_order(times: list[int], threshold: int) -> None:
    state = MemoryState()
    bursts = [window.hit(state, "k", t, f"T:{i}", threshold, W) for i, t in enumerate(times)]
    counted = sum(b.count for b in bursts if b)
    assert counted == (len(times) if len(times) >= threshold else 0)
    assert sum(1 for b in bursts if b and b.first) == (1 if len(times) >= threshold else 0)


@given(st.lists(st.integers(min_value=0, max_value=50 * W), min_size=1, max_size=120), st.integers(2, 10))
def test_never_counts_more_than_the_hits(times: list[int], threshold: int) -> None:
    state = MemoryState()
    bursts = [window.hit(state, "k", t, f"T:{i}", threshold, W) for i, t in enumerate(sorted(times))]
    assert sum(b.count for b in bursts if b) <= len(times)
    for b in bursts:
        if b and b.first:
            assert b.count >= threshold


@given(st.integers(2, 10))
def test_spread_out_hits_never_fire(threshold: int) -> None:
    state = MemoryState()
    assert all(window.hit(state, "k", i * W, f"T:{i}", threshold, W) is None for i in range(50))


def test_zero_threshold_disables_the_rule() -> None:
    assert window.hit(MemoryState(), "k", 0, "T:1", 0, W) is None
