"""Pulled document versions only move forward (``terminal/sync/versions.py``): rules and their invariant."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from terminal.sync.versions import Freshness, Held, is_missing, judge, missing_text, refusal


def test_each_case_of_the_rule() -> None:
    held = Held(5, b"a")
    assert judge(None, 0, b"x") is Freshness.NEWER
    assert judge(held, 6, b"x") is Freshness.NEWER
    assert judge(held, 5, b"a") is Freshness.SAME
    assert judge(held, 5, b"b") is Freshness.CONFLICT
    assert judge(held, 4, b"a") is Freshness.OLDER
    assert judge(Held(5, None), 5, b"b") is Freshness.SAME  # applied before marks: its bytes are unknown
    assert refusal("revocations", Freshness.OLDER, 0, held) == \
        "the ledger sent revocation list version 0, older than version 5 held here; refused"
    assert "other content" in refusal("rules", Freshness.CONFLICT, 5, held)


def test_missing_means_the_ledger_holds_newer_than_here() -> None:
    assert not is_missing(0, None) and is_missing(1, None)
    assert not is_missing(5, Held(5, b"a")) and not is_missing(4, Held(5, b"a")) and is_missing(6, Held(5, b"a"))
    assert missing_text("members", 6, None) == \
        "the ledger's answer lacked the member snapshot (version 6 at the ledger, none here)"


offers = st.lists(st.tuples(st.integers(0, 20), st.sampled_from([b"a", b"b", b"c"])), max_size=40)


@given(offers)
def test_whatever_arrives_the_held_version_never_goes_back(sequence: list[tuple[int, bytes]]) -> None:
    held: Held | None = None
    for version, digest in sequence:
        verdict = judge(held, version, digest)
        if verdict is Freshness.NEWER:
            assert held is None or version > held.version
            held = Held(version, digest)
        else:
            assert held is not None and version <= held.version
            # Only the very document held may pass as "same"; anything else at or below it is refused.
            assert (verdict is Freshness.SAME) == (version == held.version and digest == held.digest)
    if sequence:
        assert held is not None and held.version == max(v for v, _ in sequence)
