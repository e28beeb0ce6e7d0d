"""COSE_Sign1 layer: the COSE working group's Ed25519 example, and the strict decoder's refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cardkit.cards.cose import CoseError, Sign1, decode_sign1, sign1, verify_sign1
from cardkit.errors import CardError

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared" / "conformance" / "cose-wg" / "eddsa-sig-01.json"
COPY = REPO_ROOT / "tests" / "vectors" / "cose-wg" / "eddsa-sig-01.json"


def _vector() -> dict[str, Any]:
    # The shared conformance folder when it is there, else our unchanged copy: the test never skips.
    path = SHARED if SHARED.exists() else COPY
    return json.loads(path.read_text(encoding="utf-8"))


VECTOR = _vector()
MESSAGE = bytes.fromhex(VECTOR["output"]["cbor"])
KEY = VECTOR["input"]["sign0"]["key"]
PUBLIC = Ed25519PublicKey.from_public_bytes(bytes.fromhex(KEY["x_hex"]))
PRIVATE = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(KEY["d_hex"]))


def _accepted(data: bytes) -> bool:
    try:
        msg = decode_sign1(data, strict=False)
    except CoseError:
        return False
    return verify_sign1(msg, PUBLIC)


def test_the_copy_matches_the_shared_vector() -> None:
    if SHARED.exists():
        assert COPY.read_bytes() == SHARED.read_bytes()
    assert COPY.exists()


def test_cose_wg_example_is_accepted_with_its_key() -> None:
    msg = decode_sign1(MESSAGE, strict=False)
    assert msg.protected == {1: -8, 3: 0}
    assert msg.unprotected == {4: b"11"}
    assert msg.payload == VECTOR["input"]["plaintext"].encode()
    assert verify_sign1(msg, PUBLIC)


def test_cose_wg_example_rebuilds_exactly_its_to_be_signed_bytes() -> None:
    msg = decode_sign1(MESSAGE, strict=False)
    assert msg.to_be_signed().hex().upper() == VECTOR["intermediates"]["ToBeSign_hex"]


def test_signing_the_example_input_reproduces_the_example_message() -> None:
    # Ed25519 is deterministic, so our encoder must produce the working group's bytes exactly.
    ours = sign1(VECTOR["input"]["plaintext"].encode(), {1: -8, 3: 0}, PRIVATE, unprotected={4: b"11"})
    assert ours == MESSAGE


def test_cose_wg_example_is_refused_by_a_wrong_key() -> None:
    other = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    assert not verify_sign1(decode_sign1(MESSAGE, strict=False), other)


def _region(name: str) -> range:
    """Byte offsets of one part of the example message (content bytes, after its CBOR head)."""
    msg = decode_sign1(MESSAGE, strict=False)
    part = {"protected": msg.protected_bytes, "payload": msg.payload, "signature": msg.signature}[name]
    start = MESSAGE.index(part)
    return range(start, start + len(part))


@pytest.mark.parametrize("part", ["protected", "payload", "signature"])
def test_every_one_byte_change_in_a_signed_part_is_rejected(part: str) -> None:
    region = _region(part)
    assert len(region) > 0
    accepted = []
    for pos in region:
        for value in range(256):
            if value == MESSAGE[pos]:
                continue
            mutated = MESSAGE[:pos] + bytes([value]) + MESSAGE[pos + 1:]
            if _accepted(mutated):
                accepted.append((pos, value))
    assert accepted == []


def test_every_one_byte_change_to_the_envelope_is_rejected() -> None:
    # The CBOR heads around the parts (tag, array, lengths) are not signed; the parser must refuse changes.
    signed = set(_region("protected")) | set(_region("payload")) | set(_region("signature"))
    unprotected_map = set(range(MESSAGE.index(b"\xa1\x04\x42"), MESSAGE.index(b"\xa1\x04\x42") + 5))  # {4: h"3131"}
    accepted = []
    for pos in sorted(set(range(len(MESSAGE))) - signed - unprotected_map):
        for value in range(256):
            if value != MESSAGE[pos] and _accepted(MESSAGE[:pos] + bytes([value]) + MESSAGE[pos + 1:]):
                accepted.append((pos, value))
    assert accepted == []


def test_every_truncation_and_extension_is_rejected() -> None:
    assert not any(_accepted(MESSAGE[:n]) for n in range(len(MESSAGE)))
    assert not _accepted(MESSAGE + b"\x00")
    assert not _accepted(MESSAGE + MESSAGE)


def test_strict_mode_refuses_a_non_empty_unprotected_header() -> None:
    # This is why our tokens are strict: the example's unprotected kid could be changed without breaking the
    # signature, and strict mode does not let any such unsigned content through.
    with pytest.raises(CoseError, match="unprotected header must be empty"):
        decode_sign1(MESSAGE, strict=True)
    changed = MESSAGE.replace(b"\xa1\x04\x42\x31\x31", b"\xa1\x04\x42\x31\x32")
    assert _accepted(changed)  # non-strict: unsigned header content is not protected, by design of COSE
    with pytest.raises(CoseError):
        decode_sign1(changed, strict=True)


# -- our own messages, strict mode ----------------------------------------------------------------------------

KEY2 = Ed25519PrivateKey.from_private_bytes(bytes([5]) * 32)
OURS = sign1(b"hello", {1: -8, 4: b"k1"}, KEY2)


def test_strict_round_trip() -> None:
    msg = decode_sign1(OURS, strict=True)
    assert isinstance(msg, Sign1)
    assert msg.protected == {1: -8, 4: b"k1"}
    assert msg.unprotected == {}
    assert msg.payload == b"hello"
    assert verify_sign1(msg, KEY2.public_key())
    assert decode_sign1(OURS, strict=False) == msg


def _envelope(protected: bytes, unprotected: bytes, payload: bytes, signature: bytes,
              head: bytes = b"\xd2\x84") -> bytes:
    return head + cbor2.dumps(protected) + unprotected + cbor2.dumps(payload) + cbor2.dumps(signature)


GOOD = decode_sign1(OURS, strict=True)


@pytest.mark.parametrize(("name", "data", "message"), [
    ("untagged", OURS[1:], "tag 18"),
    ("tag 98 (COSE_Sign)", b"\xd8\x62" + OURS[1:], "tag 18"),
    ("array of three", _envelope(GOOD.protected_bytes, b"\xa0", GOOD.payload, GOOD.signature, b"\xd2\x83"), "four"),
    ("trailing byte", OURS + b"\x00", "unexpected bytes"),
    ("non-shortest payload length", OURS.replace(b"\xa0\x45hello", b"\xa0\x58\x05hello"), "non-shortest"),
    ("indefinite payload", OURS.replace(b"\xa0\x45hello", b"\xa0\x5f\x45hello\xff"), "indefinite"),
    ("nil payload (detached)", OURS.replace(b"\xa0\x45hello", b"\xa0\xf6"), "byte string"),
    ("unprotected map", OURS.replace(b"\xa0\x45hello", b"\xa1\x04\x41\x31\x45hello"), "must be empty"),
    ("short signature", _envelope(GOOD.protected_bytes, b"\xa0", b"hello", GOOD.signature[:63]), "64 bytes"),
    ("empty protected", _envelope(b"", b"\xa0", b"hello", GOOD.signature), "EdDSA"),
    ("alg ES256", _envelope(cbor2.dumps({1: -7}), b"\xa0", b"hello", GOOD.signature), "EdDSA"),
    ("alg as text", _envelope(cbor2.dumps({1: "EdDSA"}), b"\xa0", b"hello", GOOD.signature), "EdDSA"),
    ("critical parameters", _envelope(cbor2.dumps({1: -8, 2: [99], 99: 0}, canonical=True), b"\xa0", b"hello",
                                      GOOD.signature), "critical"),
    ("protected not a map", _envelope(cbor2.dumps([1, -8]), b"\xa0", b"hello", GOOD.signature), "map"),
    ("protected with trailing", _envelope(cbor2.dumps({1: -8}) + b"\x00", b"\xa0", b"hello", GOOD.signature),
     "unexpected bytes"),
    ("protected non-canonical", _envelope(b"\xa2\x04\x41\x31\x01\x27", b"\xa0", b"hello", GOOD.signature),
     "deterministically"),
    ("protected duplicate key", _envelope(b"\xa2\x01\x27\x01\x27", b"\xa0", b"hello", GOOD.signature), "CBOR"),
    ("protected deep nesting", _envelope(b"\xa2\x01\x27\x05" + b"\x81" * 10 + b"\x00", b"\xa0", b"hello",
                                         GOOD.signature), "CBOR"),
    ("not bytes", "text", "bytes"),
    ("empty", b"", "truncated"),
    ("length claims more than there is", b"\xd2\x84\x5b\x7f\xff\xff\xff\xff\xff\xff\xff", "truncated"),
])
def test_strict_decoder_refuses(name: str, data: bytes, message: str) -> None:
    with pytest.raises(CoseError, match=message):
        decode_sign1(data, strict=True)


def test_oversize_messages_are_refused_before_parsing() -> None:
    big = sign1(bytes(600), {1: -8}, KEY2)
    with pytest.raises(CoseError, match="too long"):
        decode_sign1(big, strict=True, max_bytes=512)


def test_cose_errors_are_card_errors() -> None:
    assert issubclass(CoseError, CardError)


def test_sign1_refuses_another_algorithm() -> None:
    with pytest.raises(CoseError):
        sign1(b"x", {1: -7}, KEY2)


def test_decoded_headers_are_independent_copies() -> None:
    first = decode_sign1(OURS, strict=True)
    first.protected[99] = "changed"
    assert decode_sign1(OURS, strict=True).protected == {1: -8, 4: b"k1"}
