"""The ledger's signed answers (``cardkit.answers``, texts in ``cardkit.wire``): vectors, round trips, forgeries.

The vectors are the ones printed in docs/sync-protocol.md ("Signed answers"); a change to either text breaks them.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit import answers, wire
from cardkit.answers import Ack, UnauthenticAnswer

ROOT = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ROOT_PUBLIC = ROOT.public_key().public_bytes_raw()
NONCE = bytes(range(16))
LAST_HASH = hashlib.sha256(b"entry 7").digest()

ACK_TEXT_HEX = ("876e63617264706f732d61636b2d763162743163622d3150000102030405060708090a0b0c0d0e0f0758201218017b88f38"
                "38d00aac097dcb8ebe897d403ab9ea4aea973389e0bd7cbabc58105")
ACK_SIGNATURE_HEX = ("61f9883ae422c8373b9f0d49b4932114e3762f349d9c40de55381fc0fa7a5aa42f36845a7a8f0fdf1c07797e8e747b5d"
                     "ca4606f006d9bd682f3d57c9148fb904")
PULL_TEXT_HEX = ("856f63617264706f732d70756c6c2d763162743150000102030405060708090a0b0c0d0e0fa46572756c6573016574727573"
                 "7403676d656d62657273096b7265766f636174696f6e7302a46572756c6573f6676d656d62657273582017373ca1c7634a4b"
                 "e4a13861a891abd975ec916caab8f3dcf5142fa4997d0b966a74727573745f6c6973745820f796e2f28ae5811737ccb8233f"
                 "34e09f8bb75d2511a135543d1ca37be0199a1d6b7265766f636174696f6e73f6")
PULL_SIGNATURE_HEX = ("568c1173bb7493b072e1d6a33fc4b0a60d3cf4c42cd479aa95e73da0b8e0c0498d529c5f4f4b2b2ba188e1a4d962ad64"
                      "5d2617386ddb7742a92593c72f5c0d07")
VERSIONS = {"trust": 3, "revocations": 2, "rules": 1, "members": 9}
DOCUMENTS: dict[str, bytes | None] = {"trust_list": b"trust", "revocations": None, "rules": None,
                                      "members": b"members"}


def test_ack_text_and_signature_match_the_documented_vector() -> None:
    text = wire.ack_signature_text("t1", "b-1", NONCE, 7, LAST_HASH, [5])
    assert text.hex() == ACK_TEXT_HEX
    fields = answers.ack_fields(Ack("t1", "b-1", 7, LAST_HASH, (5,)), NONCE, ROOT)
    assert fields == {"last_hash": LAST_HASH.hex(), "signature": ACK_SIGNATURE_HEX}
    # A missing quarantined list is the empty list, not another text.
    assert wire.ack_signature_text("t1", "b-1", NONCE, 7, LAST_HASH) == \
        wire.ack_signature_text("t1", "b-1", NONCE, 7, LAST_HASH, [])


def test_pull_text_and_signature_match_the_documented_vector() -> None:
    digests = {name: None if doc is None else hashlib.sha256(doc).digest() for name, doc in DOCUMENTS.items()}
    assert wire.pull_answer_signature_text("t1", NONCE, VERSIONS, digests).hex() == PULL_TEXT_HEX
    assert answers.pull_fields("t1", NONCE, VERSIONS, DOCUMENTS, ROOT) == {"versions": VERSIONS,
                                                                           "signature": PULL_SIGNATURE_HEX}


def signed_ack(signed_quarantined: list[int] | None = None, **changes: Any) -> dict[str, Any]:
    """Entry 7 acked and signed (with ``signed_quarantined`` in the answer and its text), then ``changes`` made."""
    ack = Ack("t1", "b-1", 7, LAST_HASH, tuple(signed_quarantined or ()))
    body: dict[str, Any] = {"acked_seq": 7, "applied": 1, "duplicates": 0, **answers.ack_fields(ack, NONCE, ROOT)}
    if signed_quarantined is not None:
        body["quarantined"] = signed_quarantined
    body.update(changes)
    return body


def test_a_signed_ack_verifies_for_its_own_request_only() -> None:
    ack = answers.verify_ack(signed_ack([5]), ROOT_PUBLIC, terminal_id="t1", batch_id="b-1", nonce=NONCE)
    assert (ack.acked_seq, ack.last_hash, ack.quarantined) == (7, LAST_HASH, (5,))
    for terminal_id, batch_id, nonce in (("t2", "b-1", NONCE), ("t1", "b-2", NONCE), ("t1", "b-1", bytes(16)),
                                         ("t1", "b-1", b"")):
        with pytest.raises(UnauthenticAnswer, match="not signed by the ledger for this request"):
            answers.verify_ack(signed_ack(), ROOT_PUBLIC, terminal_id=terminal_id, batch_id=batch_id, nonce=nonce)


@pytest.mark.parametrize("changes", [
    {"acked_seq": 8}, {"quarantined": [5]}, {"last_hash": "00" * 32}, {"signature": "00" * 64},
    {"signature": None}, {"last_hash": None}, {"acked_seq": "7"}, {"acked_seq": True}, {"acked_seq": -1},
    {"quarantined": "5"}, {"quarantined": [0]}, {"signature": "zz" * 64}, {"last_hash": "AB" * 32},
])
def test_any_change_to_a_signed_ack_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(UnauthenticAnswer):
        answers.verify_ack(signed_ack(**changes), ROOT_PUBLIC, terminal_id="t1", batch_id="b-1", nonce=NONCE)


def test_another_key_cannot_sign_an_ack() -> None:
    stranger = Ed25519PrivateKey.generate()
    body = {"acked_seq": 7, **answers.ack_fields(Ack("t1", "b-1", 7, LAST_HASH), NONCE, stranger)}
    with pytest.raises(UnauthenticAnswer):
        answers.verify_ack(body, ROOT_PUBLIC, terminal_id="t1", batch_id="b-1", nonce=NONCE)


def pull_answer(**changes: Any) -> dict[str, Any]:
    import base64

    body: dict[str, Any] = {name: None if doc is None else base64.b64encode(doc).decode()
                            for name, doc in DOCUMENTS.items()}
    body.update(answers.pull_fields("t1", NONCE, VERSIONS, DOCUMENTS, ROOT))
    body.update(changes)
    return body


def test_a_signed_pull_answer_verifies_and_gives_the_documents_bytes() -> None:
    verified = answers.verify_pull_answer(pull_answer(), ROOT_PUBLIC, terminal_id="t1", nonce=NONCE)
    assert verified.documents == DOCUMENTS and verified.versions == VERSIONS
    with pytest.raises(UnauthenticAnswer):
        answers.verify_pull_answer(pull_answer(), ROOT_PUBLIC, terminal_id="t1", nonce=bytes(16))  # a replay


@pytest.mark.parametrize("changes", [
    {"trust_list": None}, {"revocations": "cmV2b2NhdGlvbnM="}, {"members": "bWVtYmVyczI="},
    {"versions": {**VERSIONS, "members": 10}}, {"versions": {"trust": 3}}, {"signature": "00" * 64},
    {"members": "%%%"}, {"members": 5}, {"versions": None}, {"versions": {**VERSIONS, "rules": -1}},
])
def test_any_change_to_a_signed_pull_answer_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(UnauthenticAnswer):
        answers.verify_pull_answer(pull_answer(**changes), ROOT_PUBLIC, terminal_id="t1", nonce=NONCE)


def test_the_ledger_reads_nonces_strictly() -> None:
    assert answers.parse_nonce(None) == b"" and answers.parse_nonce("") == b""
    assert answers.parse_nonce("00ff" * 8) == bytes.fromhex("00ff" * 8)
    for bad in ("0", "GG" * 16, "AB" * 16, "ab" * (wire.MAX_NONCE_BYTES + 1), " ab"):
        assert answers.parse_nonce(bad) is None
    assert len(answers.new_nonce()) == wire.NONCE_BYTES and answers.new_nonce() != answers.new_nonce()


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=70),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                       max_size=4), max_leaves=12)
ack_like = st.fixed_dictionaries({}, optional={"acked_seq": json_values, "quarantined": json_values,
                                               "last_hash": json_values, "signature": json_values})
pull_like = st.fixed_dictionaries({}, optional={"versions": json_values, "signature": json_values,
                                                **{name: json_values for name in wire.PULL_DOCUMENT_FIELDS}})


@settings(max_examples=300, deadline=None)
@given(ack_like)
def test_verify_ack_refuses_any_json_with_one_error(body: dict[str, Any]) -> None:
    with pytest.raises(UnauthenticAnswer):
        answers.verify_ack(body, ROOT_PUBLIC, terminal_id="t1", batch_id="b-1", nonce=NONCE)


@settings(max_examples=300, deadline=None)
@given(pull_like)
def test_verify_pull_answer_refuses_any_json_with_one_error(body: dict[str, Any]) -> None:
    with pytest.raises(UnauthenticAnswer):
        answers.verify_pull_answer(body, ROOT_PUBLIC, terminal_id="t1", nonce=NONCE)
