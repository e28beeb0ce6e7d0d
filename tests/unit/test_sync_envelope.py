"""Sealed sync batches: round trip, compactness, and every way a batch must be refused."""

from __future__ import annotations

import random
import uuid
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit import envelope as ev
from cardkit.errors import SyncError
from cardkit.journal import GENESIS_HASH, JournalEntry, make_entry, verify_chain

TID = "T-0001"


def make_entries(n: int, *, seed: int = 1, first_seq: int = 1, prev: bytes = GENESIS_HASH,
                 terminal_id: str = TID) -> list[JournalEntry]:
    rng = random.Random(seed)
    out: list[JournalEntry] = []
    wall, mono = 1_760_000_000_000, 5_000_000_000
    for seq in range(first_seq, first_seq + n):
        wall += rng.randint(-50, 60_000)
        mono += rng.randint(1, 60_000) * 1_000_000
        m = rng.randint(1, 500)
        kind = rng.choice(["sale", "sale", "topup", "card_reject", "member_update"])
        payload: dict[str, Any]
        if kind == "sale":
            gross = rng.randint(100, 50_000)
            payload = {"card": f"C{m:06d}", "member": f"M{m:06d}", "cur": "CNY", "gross": gross, "tier_disc": 0,
                       "coupon_disc": 0, "pts_disc": 0, "net": gross, "tender": "cash", "sv": 0,
                       "pts_earn": gross // 100, "pts_redeem": 0, "coupons": ["K1"] if m % 7 == 0 else [],
                       "offline": rng.random() < 0.5}
        elif kind == "topup":
            payload = {"card": f"C{m:06d}", "member": f"M{m:06d}", "cur": "CNY", "amount": 10_000, "bonus": 500,
                       "tender": "cash", "offline": False}
        elif kind == "card_reject":
            payload = {"reason": "revoked", "card": None, "kid": None, "manual": True}
        else:
            payload = {"member": f"M{m:06d}", "notes": "likes tea ☕", "prefs": {"lang": "zh", "x": [1, b"\x00"]}}
        entry = make_entry(terminal_id=terminal_id, seq=seq, prev_hash=prev, wall_ms=wall, mono_ns=mono,
                           cashier_id=rng.choice(["c1", "c2", None]), kind=kind, payload=payload,
                           entry_uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        out.append(entry)
        prev = entry.hash
    return out


class Keys:
    def __init__(self, suite: str = "x25519") -> None:
        self.suite = suite
        self.terminal = Ed25519PrivateKey.generate()
        self.hpke_private = ev.generate_hpke_private_key(suite)
        self.hpke_public = ev.hpke_public_key_bytes(suite, self.hpke_private)

    def seal(self, entries: list[JournalEntry], batch_id: str = "b-1", terminal_id: str = TID) -> bytes:
        return ev.seal_batch(entries, terminal_id=terminal_id, batch_id=batch_id, terminal_key=self.terminal,
                             ledger_public_key=self.hpke_public, suite=self.suite)

    def lookup(self, terminal_id: str) -> bytes | None:
        return self.terminal.public_key().public_bytes_raw() if terminal_id == TID else None

    def open(self, envelope: bytes) -> ev.OpenedBatch:
        return ev.open_batch(envelope, terminal_key_lookup=self.lookup,
                             hpke_private_keys={self.suite: self.hpke_private})


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.mark.parametrize("suite", ["x25519", "mlkem768x25519"])
def test_round_trip_restores_every_entry_and_hash(suite: str) -> None:
    k = Keys(suite)
    entries = make_entries(300)
    opened = k.open(k.seal(entries))
    assert (opened.terminal_id, opened.batch_id, opened.suite) == (TID, "b-1", suite)
    assert opened.entries == entries
    assert verify_chain(opened.entries) is None


def test_batch_in_the_middle_of_the_chain_keeps_its_links(keys: Keys) -> None:
    entries = make_entries(50)
    opened = keys.open(keys.seal(entries[20:]))
    assert opened.entries == entries[20:]
    assert opened.entries[0].prev_hash == entries[19].hash


def test_typical_sales_cost_well_under_64_bytes_each_on_the_wire(keys: Keys) -> None:
    entries = make_entries(2000, seed=7)
    envelope = keys.seal(entries)
    assert len(envelope) / len(entries) <= 64


def test_every_flipped_byte_is_refused(keys: Keys) -> None:
    envelope = keys.seal(make_entries(5))
    for i in range(len(envelope)):
        for bit in (0x01, 0x80):
            tampered = bytearray(envelope)
            tampered[i] ^= bit
            with pytest.raises(ev.BatchRejected) as info:
                keys.open(bytes(tampered))
            assert info.value.reason in {"malformed", "bad_signature", "unknown_terminal"}


def test_truncated_or_extended_envelopes_are_malformed(keys: Keys) -> None:
    envelope = keys.seal(make_entries(3))
    for bad in (envelope[:-1], envelope[: len(envelope) // 2], envelope + b"\x00", b"", b"\xa0"):
        with pytest.raises(ev.BatchRejected) as info:
            keys.open(bad)
        assert info.value.reason == "malformed"


def test_signed_by_another_key_is_bad_signature(keys: Keys) -> None:
    other = Keys()
    other.hpke_public = keys.hpke_public  # encrypted correctly, signed by a stranger claiming our id
    with pytest.raises(ev.BatchRejected) as info:
        keys.open(other.seal(make_entries(3)))
    assert info.value.reason == "bad_signature"
    assert info.value.terminal_id == TID


def test_unknown_terminal_is_refused_before_anything_else(keys: Keys) -> None:
    envelope = keys.seal(make_entries(3, terminal_id="T-9999"), terminal_id="T-9999")
    with pytest.raises(ev.BatchRejected) as info:
        keys.open(envelope)
    assert info.value.reason == "unknown_terminal"


def test_encrypted_to_another_ledger_does_not_decrypt(keys: Keys) -> None:
    stranger = ev.hpke_public_key_bytes("x25519", ev.generate_hpke_private_key("x25519"))
    envelope = ev.seal_batch(make_entries(3), terminal_id=TID, batch_id="b", terminal_key=keys.terminal,
                             ledger_public_key=stranger)
    with pytest.raises(ev.BatchRejected) as info:
        keys.open(envelope)
    assert info.value.reason == "decrypt_failed"


def test_suite_the_ledger_does_not_hold_is_decrypt_failed(keys: Keys) -> None:
    hybrid = Keys("mlkem768x25519")
    hybrid.terminal = keys.terminal
    with pytest.raises(ev.BatchRejected) as info:
        keys.open(hybrid.seal(make_entries(2)))
    assert info.value.reason == "decrypt_failed"


def test_ciphertext_moved_to_another_batch_id_does_not_decrypt(keys: Keys) -> None:
    """info binds terminal and batch id: a re-signed body with a new batch id still fails HPKE."""
    envelope = keys.seal(make_entries(3), batch_id="b-1")
    body, _sig = cbor2.loads(envelope)
    version, tid, _bid, suite, ct = cbor2.loads(body)
    new_body = cbor2.dumps([version, tid, "b-2", suite, ct])
    forged = cbor2.dumps([new_body, keys.terminal.sign(ev.SIGNATURE_CONTEXT + new_body)])
    with pytest.raises(ev.BatchRejected) as info:
        keys.open(forged)
    assert info.value.reason == "decrypt_failed"


def test_plaintext_that_breaks_its_own_chain_is_refused(keys: Keys) -> None:
    entries = make_entries(4)
    doc = cbor2.loads(__import__("zlib").decompress(ev.encode_entries(entries, TID)))
    doc[3] = bytes(32)  # claimed last hash no longer matches
    with pytest.raises(ev.BatchRejected) as info:
        ev.decode_entries(__import__("zlib").compress(cbor2.dumps(doc)), TID)
    assert info.value.reason == "broken_chain"


@pytest.mark.parametrize("mutate", [
    lambda d: d.__setitem__(0, 2),                       # unknown plaintext version
    lambda d: d.__setitem__(4, d[4][:-1]),                # uuid column not a multiple of 16
    lambda d: d.__setitem__(5, d[5][:-1]),                # wall_ms column short
    lambda d: d.__setitem__(6, [1.5] * len(d[6])),        # float where an int belongs
    lambda d: d.__setitem__(8, [["sale"], [3] * len(d[5])]),  # kind index out of range
    lambda d: d[9][2][0][0].pop(),                        # payload column short
    lambda d: d.append(1),                                # extra field
])
def test_malformed_plaintexts_are_refused(mutate: Any) -> None:
    import zlib

    doc = cbor2.loads(zlib.decompress(ev.encode_entries(make_entries(4), TID)))
    mutate(doc)
    with pytest.raises(ev.BatchRejected) as info:
        ev.decode_entries(zlib.compress(cbor2.dumps(doc)), TID)
    assert info.value.reason == "malformed"


def test_compression_bomb_is_refused() -> None:
    import zlib

    with pytest.raises(ev.BatchRejected) as info:
        ev.decode_entries(zlib.compress(b"\x00" * (ev.MAX_PLAINTEXT_BYTES + 10)), TID)
    assert info.value.reason == "malformed"


def test_sealing_refuses_gaps_foreign_entries_and_empty_batches(keys: Keys) -> None:
    entries = make_entries(5)
    with pytest.raises(SyncError, match="contiguous"):
        keys.seal([entries[0], entries[2]])
    with pytest.raises(SyncError, match="belongs to terminal"):
        keys.seal(make_entries(2, terminal_id="T-2"))
    with pytest.raises(SyncError, match="empty"):
        keys.seal([])


def test_bad_ledger_key_is_a_clear_sync_error(keys: Keys) -> None:
    with pytest.raises(SyncError, match="HPKE public key is not valid"):
        ev.seal_batch(make_entries(1), terminal_id=TID, batch_id="b", terminal_key=keys.terminal,
                      ledger_public_key=b"short")
    with pytest.raises(SyncError, match="unknown HPKE suite"):
        ev.seal_batch(make_entries(1), terminal_id=TID, batch_id="b", terminal_key=keys.terminal,
                      ledger_public_key=keys.hpke_public, suite="rot13")


def test_peek_terminal_id(keys: Keys) -> None:
    assert ev.peek_terminal_id(keys.seal(make_entries(1))) == TID
    assert ev.peek_terminal_id(b"junk") is None


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=12),
                         st.binary(max_size=8))
payloads = st.dictionaries(st.text(min_size=1, max_size=6),
                           st.recursive(json_scalars, lambda c: st.lists(c, max_size=3)
                                        | st.dictionaries(st.text(max_size=4), c, max_size=3), max_leaves=6),
                           max_size=6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["sale", "refund", "x"]), payloads, st.integers(-(2**40), 2**40),
                          st.integers(0, 2**62), st.one_of(st.none(), st.text(max_size=5))),
                min_size=1, max_size=20),
       st.integers(1, 2**40))
def test_any_payloads_round_trip_exactly(rows: list[tuple[str, dict[str, Any], int, int, str | None]],
                                         first_seq: int) -> None:
    prev = bytes(range(32))
    entries = []
    for i, (kind, payload, wall, mono, cashier) in enumerate(rows):
        e = make_entry(terminal_id=TID, seq=first_seq + i, prev_hash=prev, wall_ms=wall, mono_ns=mono,
                       cashier_id=cashier, kind=kind, payload=payload, entry_uuid=str(uuid.UUID(int=i, version=4)))
        entries.append(e)
        prev = e.hash
    assert ev.decode_entries(ev.encode_entries(entries, TID), TID) == entries


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_are_refused_with_a_reason(data: bytes) -> None:
    """The outer layout is read by hand: whatever the bytes, a BatchRejected naming why, nothing else."""
    with pytest.raises(ev.BatchRejected) as info:
        ev.open_batch(data, terminal_key_lookup=lambda _tid: None, hpke_private_keys={})
    assert info.value.reason in {"malformed", "unknown_terminal"}
    assert str(info.value).startswith(("the batch envelope is not valid: ", "terminal "))
