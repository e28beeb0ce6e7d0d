"""The enrollment proof and answer (``cardkit.enrollment``), sealed member snapshots (``cardkit.pulldocs``) and the
ledger's attempt counters (``ledger.enroll_guard``): the documented test vector, every field bound, and bounds."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit.enrollment import (
    ANSWER_SIGNATURE_CONTEXT,
    EnrollAnswer,
    EnrollProof,
    derive_code_keys,
    make_proof,
    normalise_code,
    open_answer,
    proof_matches,
    seal_answer,
)
from cardkit.envelope import generate_hpke_private_key, hpke_public_key_bytes
from cardkit.errors import CardError, SyncError
from cardkit.pulldocs import (
    MemberSnapshot,
    load_member_snapshot,
    open_sealed_member_snapshot,
    seal_member_snapshot,
    sign_member_snapshot,
)
from ledger.enroll_guard import AttemptGuard

# docs/sync-protocol.md §1, "Test vector"
CODE = "AB3K-9QXZ-7MTP"
CODE_ID = "b6506fb6fc2326584fb9f2b7b76ef30c"
MAC_KEY = "4dceb98c3f666df5e01c6e5e5c986b45bb558c28cf990740e069cfd983be2726"
IDENTITY = Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32).public_key().public_bytes_raw()
TERMINAL_HPKE = X25519PrivateKey.from_private_bytes(bytes([2]) * 32).public_key().public_bytes_raw()
NONCE = bytes([3]) * 32
PROOF = "0ed2a5845723ea55a63d5e7f6c475b7a9a0f66e127a4c5e440d861e1a3594a48"


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 written out, to check the derivation against the construction the docs name."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
    return out[:length]


def test_the_documented_vector() -> None:
    keys = derive_code_keys(CODE)
    assert keys.code_id.hex() == CODE_ID == hkdf_sha256(b"AB3K9QXZ7MTP", b"cardpos-enroll-v2",
                                                        b"cardpos-enroll-v2 code-id", 16).hex()
    assert keys.mac_key.hex() == MAC_KEY == hkdf_sha256(b"AB3K9QXZ7MTP", b"cardpos-enroll-v2",
                                                        b"cardpos-enroll-v2 mac-key", 32).hex()
    proof = make_proof(keys, IDENTITY, "x25519", TERMINAL_HPKE, randbytes=lambda n: NONCE)
    assert proof.text() == cbor2.dumps(["cardpos-enroll-proof-v2", keys.code_id, IDENTITY, "x25519", TERMINAL_HPKE,
                                        NONCE, None])
    assert proof.proof.hex() == PROOF == hmac.new(keys.mac_key, proof.text(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("typed", ["ab3k 9qxz 7mtp", "AB3K9QXZ7MTP", " ab3k-9qxz-7mtp\n", "ÄB3K-9QXZ-7MTP"])
def test_codes_are_typed_loosely(typed: str) -> None:
    same = typed != "ÄB3K-9QXZ-7MTP"  # a non-ASCII letter is dropped, so that code is another one
    assert (derive_code_keys(typed) == derive_code_keys(CODE)) is same
    assert normalise_code(typed).isascii()


def test_a_code_without_letters_or_digits_is_refused() -> None:
    with pytest.raises(SyncError):
        derive_code_keys("-- --")


FIELDS = ("code_id", "identity_key", "suite", "terminal_hpke_key", "nonce", "root_key")


@pytest.mark.parametrize("field", FIELDS)
def test_the_proof_covers_every_field(field: str) -> None:
    keys = derive_code_keys(CODE)
    proof = make_proof(keys, IDENTITY, "x25519", TERMINAL_HPKE, randbytes=lambda n: NONCE)
    assert proof_matches(keys.mac_key, proof)
    fields = proof.to_json()
    fields[field] = "mlkem768x25519" if field == "suite" else ("aa" * (len(fields.get(field, "")) // 2 or 32))
    assert not proof_matches(keys.mac_key, EnrollProof.from_json(fields))
    assert not proof_matches(derive_code_keys("AB3K-9QXZ-7MTQ").mac_key, proof)  # one character off


@settings(max_examples=200, deadline=None)
@given(fields=st.dictionaries(st.sampled_from([*FIELDS, "proof", "other"]),
                              st.one_of(st.none(), st.integers(), st.text(max_size=80),
                                        st.binary(max_size=40).map(bytes.hex))))
def test_proof_fields_from_the_network_never_raise_anything_but_our_error(fields: dict[str, object]) -> None:
    with contextlib.suppress(SyncError):
        EnrollProof.from_json(fields)


# -- the answer -------------------------------------------------------------------------------------------------
ROOT = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)


def sent_and_answer() -> tuple[bytes, EnrollProof, dict[str, str]]:
    keys = derive_code_keys(CODE)
    proof = make_proof(keys, IDENTITY, "x25519", TERMINAL_HPKE, randbytes=lambda n: NONCE)
    answer = EnrollAnswer(terminal_id="t1", store_id="store-1", issuer="acme", suite="x25519",
                          ledger_hpke_key=bytes(32), root_key=ROOT.public_key().public_bytes_raw(),
                          identity_key=IDENTITY, terminal_hpke_key=TERMINAL_HPKE, nonce=NONCE, trust_list=b"t",
                          rules=b"r", revocations=b"v")
    return keys.mac_key, proof, seal_answer(answer, keys.mac_key, ROOT)


def test_an_answer_opens_with_the_code_and_the_root_key_it_names() -> None:
    mac_key, proof, body = sent_and_answer()
    answer = open_answer(mac_key, proof, body)
    assert (answer.terminal_id, answer.store_id, answer.trust_list) == ("t1", "store-1", b"t")


def test_every_changed_byte_of_an_answer_is_refused() -> None:
    mac_key, proof, body = sent_and_answer()
    data = base64.b64decode(body["answer"])
    for i in range(len(data)):
        changed = bytearray(data)
        changed[i] ^= 0x01
        with pytest.raises(SyncError, match="not authenticated with the enrollment code"):
            open_answer(mac_key, proof, {**body, "answer": base64.b64encode(bytes(changed)).decode()})


def test_an_answer_made_without_the_code_or_for_another_request_is_refused() -> None:
    mac_key, proof, body = sent_and_answer()
    with pytest.raises(SyncError, match="not authenticated"):  # the attacker signs with its own root, no code
        open_answer(derive_code_keys("ZZZZ-ZZZZ-ZZZZ").mac_key, proof, body)
    other = make_proof(derive_code_keys(CODE), IDENTITY, "x25519", TERMINAL_HPKE)  # another nonce
    with pytest.raises(SyncError, match="not authenticated"):
        open_answer(mac_key, other, body)
    forged = {**body, "signature": Ed25519PrivateKey.generate().sign(
        ANSWER_SIGNATURE_CONTEXT + base64.b64decode(body["answer"])).hex()}
    with pytest.raises(SyncError, match="not signed by the root key"):
        open_answer(mac_key, proof, forged)
    for broken in ({}, {**body, "mac": "zz" * 32}, {**body, "answer": "%%%"}, {**body, "signature": 5}):
        with pytest.raises(SyncError):
            open_answer(mac_key, proof, broken)
    assert json.dumps(body)  # the JSON answer is plain strings


# -- sealed member snapshots ------------------------------------------------------------------------------------
SNAPSHOT = MemberSnapshot(version=4, since=1, store_id="store-1",
                          members=[{"member_id": "M1", "name": "Ann Lee", "phone": "555-0100", "notes": "nuts"}])


@pytest.mark.parametrize("suite", ["x25519", "mlkem768x25519"])
def test_a_sealed_snapshot_opens_only_for_its_terminal(suite: str) -> None:
    private = generate_hpke_private_key(suite)
    root_public = ROOT.public_key().public_bytes_raw()
    doc = seal_member_snapshot(SNAPSHOT, ROOT, terminal_id="t1", suite=suite,
                               terminal_public_key=hpke_public_key_bytes(suite, private))
    assert b"Ann Lee" not in doc and b"555-0100" not in doc and b"nuts" not in doc
    assert open_sealed_member_snapshot(doc, root_public, terminal_id="t1", suite=suite,
                                       private_key=private) == SNAPSHOT
    with pytest.raises(CardError, match="sealed to terminal 't1', not t2"):
        open_sealed_member_snapshot(doc, root_public, terminal_id="t2", suite=suite, private_key=private)
    with pytest.raises(CardError, match="does not open"):
        open_sealed_member_snapshot(doc, root_public, terminal_id="t1", suite=suite,
                                    private_key=generate_hpke_private_key(suite))
    with pytest.raises(CardError, match="signature"):
        open_sealed_member_snapshot(doc, Ed25519PrivateKey.generate().public_key().public_bytes_raw(),
                                    terminal_id="t1", suite=suite, private_key=private)
    with pytest.raises(CardError):  # a sealed snapshot is no cleartext one, and the reverse
        load_member_snapshot(doc, root_public)
    with pytest.raises(CardError, match="not a sealed member snapshot"):
        open_sealed_member_snapshot(sign_member_snapshot(SNAPSHOT, ROOT), root_public, terminal_id="t1",
                                    suite=suite, private_key=private)


# -- the ledger's attempt counters ------------------------------------------------------------------------------
def test_a_source_is_throttled_past_its_limit_until_its_window_ends() -> None:
    guard = AttemptGuard(window_ms=60_000, source_limit=3, alert_after=2)
    verdicts = [guard.failed("10.0.0.1", 1_000 + i) for i in range(3)]
    assert [v.alert for v in verdicts] == [False, True, False]
    assert guard.throttled("10.0.0.2", 2_000) is None  # another source is not
    assert guard.throttled("10.0.0.1", 2_000) == (59, True)
    assert guard.throttled("10.0.0.1", 3_000) == (58, False)  # noted once per window
    assert guard.throttled("10.0.0.1", 61_000) is None


def test_the_counters_and_the_audit_lines_are_bounded() -> None:
    guard = AttemptGuard(window_ms=60_000, max_sources=100, audit_budget=50)
    verdicts = [guard.failed(f"10.0.{i // 256}.{i % 256}", 1_000) for i in range(1_000)]
    assert len(guard._sources) == 100
    assert sum(v.audit for v in verdicts) == 50 and sum(v.audit_capped for v in verdicts) == 1
    assert guard.failed("10.9.9.9", 61_000).audit  # a new window, a new budget
