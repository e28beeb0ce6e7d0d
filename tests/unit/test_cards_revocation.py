"""Revocation deltas and the local revocation/hold list."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit.cards.revocation import (
    RevocationDelta,
    RevocationList,
    RevocationVersionError,
    load_revocation_delta,
    sign_revocation_delta,
)
from cardkit.cards.verdict import RejectReason
from cardkit.errors import CardError
from tests.fixtures.cards import CardWorld

A, B, C, ZERO = "00000000000000aa", "00000000000000bb", "ffffffffffffffff", "0000000000000000"


def test_delta_round_trip(card_world: CardWorld) -> None:
    delta = RevocationDelta(3, 5, revoked=((A, "lost"), (B, "stolen"), (C, "lost")), held=(ZERO,), unheld=("1" * 16,))
    loaded = load_revocation_delta(sign_revocation_delta(delta, card_world.root_key), card_world.root_public)
    assert loaded.from_version == 3 and loaded.to_version == 5
    assert sorted(loaded.revoked) == sorted(delta.revoked)
    assert (loaded.held, loaded.unheld) == (delta.held, delta.unheld)


def test_delta_refuses_a_wrong_key_and_tampering(card_world: CardWorld) -> None:
    data = sign_revocation_delta(RevocationDelta(0, 1, revoked=((A, "lost"),)), card_world.root_key)
    with pytest.raises(CardError, match="signature"):
        load_revocation_delta(data, card_world.keys[0].public_key)
    for pos in range(len(data)):
        with pytest.raises(CardError):
            load_revocation_delta(data[:pos] + bytes([data[pos] ^ 0x80]) + data[pos + 1:], card_world.root_public)


def test_delta_is_not_a_trust_list(card_world: CardWorld) -> None:
    with pytest.raises(CardError, match="not a revocation delta"):
        load_revocation_delta(card_world.signed_trust_list(), card_world.root_public)


@pytest.mark.parametrize("kwargs", [
    {"from_version": 2, "to_version": 1},
    {"from_version": -1, "to_version": 1},
    {"from_version": 0, "to_version": 1, "revoked": (("AA" * 8, "lost"),)},
    {"from_version": 0, "to_version": 1, "revoked": ((A, ""),)},
    {"from_version": 0, "to_version": 1, "revoked": ((A, "x" * 33),)},
    {"from_version": 0, "to_version": 1, "held": ("123",)},
    {"from_version": 0, "to_version": 1, "held": (A,), "unheld": (A,)},
])
def test_delta_refuses_bad_content(kwargs: dict[str, object]) -> None:
    with pytest.raises(CardError):
        RevocationDelta(**kwargs)  # type: ignore[arg-type]


def test_revoke_hold_unhold() -> None:
    rl = RevocationList()
    assert rl.version == 0 and rl.status(A) is None
    rl.apply(RevocationDelta(0, 1, revoked=((A, "stolen"),), held=(B, ZERO)))
    assert (rl.status(A), rl.status(B), rl.status(ZERO), rl.status(C)) == (
        RejectReason.REVOKED, RejectReason.ON_HOLD, RejectReason.ON_HOLD, None)
    assert rl.reason(A) == "stolen" and rl.reason(B) is None
    assert (rl.revoked_count, rl.held_count, rl.version) == (1, 2, 1)
    rl.apply(RevocationDelta(1, 2, unheld=(B, ZERO, C)))
    assert rl.status(B) is None and rl.status(ZERO) is None and rl.held_count == 0
    rl.apply(RevocationDelta(2, 3, held=(A,), unheld=()))
    rl.apply(RevocationDelta(3, 4, unheld=(A,)))
    assert rl.status(A) is RejectReason.REVOKED  # revocation is permanent
    rl.apply(RevocationDelta(4, 5, held=(B,)))
    rl.apply(RevocationDelta(5, 6, revoked=((B, "fraud"),)))
    assert rl.status(B) is RejectReason.REVOKED and rl.held_count == 0 and rl.revoked_count == 2


def test_version_mismatch_changes_nothing() -> None:
    rl = RevocationList()
    rl.apply(RevocationDelta(0, 4, revoked=((A, "lost"),)))
    with pytest.raises(RevocationVersionError, match="version 0"):
        rl.apply(RevocationDelta(3, 5, revoked=((B, "lost"),)))
    assert rl.version == 4 and rl.status(B) is None
    # the caller's recovery: fetch from 0 into a fresh list
    fresh = RevocationList()
    fresh.apply(RevocationDelta(0, 5, revoked=((A, "lost"), (B, "lost"))))
    assert fresh.version == 5 and fresh.status(B) is RejectReason.REVOKED


def test_status_refuses_non_card_ids() -> None:
    rl = RevocationList()
    for bad in ("0x00000000000000", "ABCDEF0123456789", "12", "-000000000000001"):
        with pytest.raises(CardError):
            rl.status(bad)


def test_storage_round_trip_and_damage() -> None:
    rl = RevocationList()
    rl.apply(RevocationDelta(0, 9, revoked=((A, "lost"), (C, "stolen")), held=(B, ZERO)))
    data = rl.to_bytes()
    back = RevocationList.from_bytes(data)
    assert back.version == 9
    assert [back.status(x) for x in (A, B, C, ZERO, "1" * 16)] == [rl.status(x) for x in (A, B, C, ZERO, "1" * 16)]
    assert back.reason(C) == "stolen" and (back.revoked_count, back.held_count) == (2, 2)
    back.apply(RevocationDelta(9, 10, revoked=(("2" * 16, "lost"),)))
    assert back.status("2" * 16) is RejectReason.REVOKED
    for damaged in (b"", data[:10], b"XXXX" + data[4:], data[:-1], data + b"\x00", data[:20] + bytes(len(data) - 20)):
        with pytest.raises(CardError, match="damaged"):
            RevocationList.from_bytes(damaged)


def test_growth_keeps_every_entry() -> None:
    rng = random.Random(7)
    ids = [f"{rng.getrandbits(64):016x}" for _ in range(5000)]
    sequential = [f"{i:016x}" for i in range(1, 3001)]  # sequential ids must hash well too
    rl = RevocationList()
    rl.apply(RevocationDelta(0, 1, revoked=tuple((i, "lost") for i in ids), held=tuple(sequential)))
    rl.apply(RevocationDelta(1, 2, unheld=tuple(sequential[:2000])))
    rl.apply(RevocationDelta(2, 3, revoked=tuple((f"{i:016x}", "r") for i in range(10_000, 14_000))))
    assert rl.revoked_count == 9000 and rl.held_count == 1000
    assert all(rl.status(i) is RejectReason.REVOKED for i in ids)
    assert all(rl.status(i) is None for i in sequential[:2000])
    assert all(rl.status(i) is RejectReason.ON_HOLD for i in sequential[2000:])
    assert rl.status(f"{rng.getrandbits(64):016x}") is None
    assert RevocationList.from_bytes(rl.to_bytes()).revoked_count == 9000


def test_many_distinct_reasons_fall_back_to_other() -> None:
    rl = RevocationList()
    ids = [f"{i + 1:016x}" for i in range(300)]
    rl.apply(RevocationDelta(0, 1, revoked=tuple((card_id, f"reason {i}") for i, card_id in enumerate(ids))))
    assert rl.reason(ids[0]) == "reason 0" and rl.reason(ids[-1]) == "other"
    assert all(rl.status(i) is RejectReason.REVOKED for i in ids)


ids = st.binary(min_size=8, max_size=8).map(bytes.hex)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["revoke", "hold", "unhold"]), st.lists(ids, max_size=40, unique=True)),
                max_size=12))
def test_matches_a_plain_model(steps: list[tuple[str, list[str]]]) -> None:
    rl = RevocationList()
    model: dict[str, RejectReason] = {}
    for version, (op, batch) in enumerate(steps):
        if op == "revoke":
            delta = RevocationDelta(version, version + 1, revoked=tuple((i, "lost") for i in batch))
            model.update({i: RejectReason.REVOKED for i in batch})
        elif op == "hold":
            delta = RevocationDelta(version, version + 1, held=tuple(batch))
            model.update({i: RejectReason.ON_HOLD for i in batch if model.get(i) is not RejectReason.REVOKED})
        else:
            delta = RevocationDelta(version, version + 1, unheld=tuple(batch))
            for i in batch:
                if model.get(i) is RejectReason.ON_HOLD:
                    del model[i]
        rl.apply(delta)
        if version % 3 == 2:
            rl = RevocationList.from_bytes(rl.to_bytes())
    every = {i for _, batch in steps for i in batch}
    assert {i: rl.status(i) for i in every if rl.status(i)} == model
    assert rl.revoked_count == sum(1 for s in model.values() if s is RejectReason.REVOKED)
    assert rl.held_count == sum(1 for s in model.values() if s is RejectReason.ON_HOLD)


def test_a_delta_too_big_for_the_table_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from cardkit.cards import revocation

    monkeypatch.setattr(revocation, "MAX_BITS", 12)  # 4096 slots: room for 2047 ids at half load
    rl = RevocationList()
    rl.apply(RevocationDelta(0, 1, revoked=tuple((f"{i:016x}", "lost") for i in range(1, 1001))))
    too_many = RevocationDelta(1, 2, revoked=tuple((f"{i:016x}", "lost") for i in range(5000, 6500)))
    with pytest.raises(CardError, match="larger than this terminal supports"):
        rl.apply(too_many)
    assert rl.version == 1 and rl.revoked_count == 1000 and rl.status(f"{5000:016x}") is None


def test_inconsistent_stored_tables_are_refused() -> None:
    import struct
    import zlib

    rl = RevocationList()
    rl.apply(RevocationDelta(0, 1, revoked=((A, "lost"),)))
    data = rl.to_bytes()
    head, body = data[:16], bytearray(zlib.decompress(data[16:]))
    reasons_len = struct.unpack_from("<I", body)[0]
    status_start = 4 + reasons_len + 8 * 1024
    body[status_start + 5] = 1  # a hold on an empty slot
    with pytest.raises(CardError, match="damaged"):
        RevocationList.from_bytes(head + zlib.compress(bytes(body)))
    bad_zero = head[:6] + bytes([200]) + head[7:]  # the all-zero id names a reason that does not exist
    with pytest.raises(CardError, match="damaged"):
        RevocationList.from_bytes(bad_zero + data[16:])
