"""Card token profile: encoding, sizes, strict decoding, and mutation/truncation properties."""

from __future__ import annotations

import dataclasses
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardkit.cards.cose import sign1
from cardkit.cards.keys import private_key_from_bytes, public_key_bytes
from cardkit.cards.token import (
    CLAIM_CARD_ID,
    CLAIM_TIER,
    TokenFormatError,
    decode_card_token,
    encode_claims,
    new_card_id,
    sign_card_token,
)
from cardkit.cards.verdict import CardClaims, RejectReason
from cardkit.core.members import Tier
from cardkit.errors import CardError
from tests.fixtures.cards import DAY, NOW, CardWorld


def test_round_trip(card_world: CardWorld) -> None:
    token = card_world.token()
    decoded = decode_card_token(token)
    assert decoded.kid == "k1"
    assert decoded.claims == card_world.claims()
    assert decoded.sign1.protected == {1: -8, 4: b"k1"}
    assert decoded.sign1.unprotected == {}


def test_round_trip_with_card_key(card_world: CardWorld) -> None:
    decoded = decode_card_token(card_world.challenge_token())
    assert decoded.claims.card_public_key == public_key_bytes(card_world.card_key)


def test_sizes_stay_under_200_bytes(card_world: CardWorld) -> None:
    # Realistic worst case: long member id, longest tier name, 6-character kid.
    claims: dict[str, Any] = {"member_id": "M" * 16, "tier": Tier.PLATINUM}
    plain = card_world.token(kid="k2026a", **claims)
    with_key = card_world.token(kid="k2026a", card_public_key=bytes(32), **claims)
    assert len(plain) <= 160
    assert len(with_key) == len(plain) + 35  # key 0x22, bstr head 0x58 0x20, 32 bytes
    assert len(with_key) <= 200


def test_payload_uses_cwt_claim_keys(card_world: CardWorld) -> None:
    payload = cbor2.loads(decode_card_token(card_world.token()).sign1.payload)
    assert list(payload) == [1, 2, 4, 5, 6, 7, -1, -2]
    assert payload[1] == "acme"
    assert payload[7] == bytes.fromhex("0123456789abcdef")


def test_signing_is_deterministic(card_world: CardWorld) -> None:
    assert card_world.token() == card_world.token()


def test_new_card_id() -> None:
    assert new_card_id(lambda n: bytes(range(n))) == "0001020304050607"
    with pytest.raises(CardError):
        new_card_id(lambda n: b"\x00")


@pytest.mark.parametrize(("change", "message"), [
    ({"version": 2}, "version"),
    ({"version": True}, "version"),
    ({"issuer": ""}, "issuer"),
    ({"issuer": "x" * 33}, "issuer"),
    ({"member_id": "a\nb"}, "member id"),
    ({"card_id": "0123456789ABCDEF"}, "card id"),
    ({"card_id": "0123"}, "card id"),
    ({"tier": "gold"}, "tier"),
    ({"issued_at": -1}, "issued-at"),
    ({"expires_at": 2**40}, "expires-at"),
    ({"not_before": 1.5}, "not-before"),
    ({"expires_at": NOW - 2 * DAY}, "expires before"),
    ({"card_public_key": bytes(31)}, "public key"),
])
def test_sign_refuses_bad_claims(card_world: CardWorld, change: dict[str, Any], message: str) -> None:
    with pytest.raises(TokenFormatError, match=message):
        card_world.token(**change)


@pytest.mark.parametrize("kid", ["", "has space", "k" * 33, "ключ"])
def test_sign_refuses_bad_kid(card_world: CardWorld, kid: str) -> None:
    with pytest.raises(TokenFormatError):
        sign_card_token(card_world.claims(), card_world.issuer_key, kid)


def _resign(card_world: CardWorld, payload: object, protected: dict[object, object] | None = None) -> bytes:
    """A correctly signed message around a payload we build by hand: only the decoder's checks stand in the way."""
    body = payload if isinstance(payload, bytes) else cbor2.dumps(payload)
    return sign1(body, protected or {1: -8, 4: b"k1"}, card_world.issuer_key)


def _claims_map(card_world: CardWorld) -> dict[Any, Any]:
    return dict(cbor2.loads(encode_claims(card_world.claims())))


def test_a_hand_built_but_exact_token_decodes(card_world: CardWorld) -> None:
    assert _resign(card_world, _claims_map(card_world)) == card_world.token()


@pytest.mark.parametrize("case", [
    "unknown claim", "missing claim", "float key", "text key", "unsorted", "trailing byte", "long int",
    "tier unknown", "card id 9 bytes", "card id text", "kid in text", "extra protected", "no kid", "list payload",
    "bad cbor", "float time", "bool version",
])
def test_decoder_refuses_signed_but_off_tokens(card_world: CardWorld, case: str) -> None:
    m = _claims_map(card_world)
    protected: dict[object, object] | None = None
    payload: object = m
    if case == "unknown claim":
        m[8] = b"x"
    elif case == "missing claim":
        del m[CLAIM_TIER]
    elif case == "float key":
        payload = cbor2.dumps(m).replace(b"\x01\x64acme", b"\xfb\x3f\xf0\x00\x00\x00\x00\x00\x00\x64acme")
    elif case == "text key":
        payload = {("1" if k == 1 else k): v for k, v in m.items()}
    elif case == "unsorted":
        payload = {k: m[k] for k in reversed(list(m))}
    elif case == "trailing byte":
        payload = cbor2.dumps(m) + b"\x00"
    elif case == "long int":
        payload = cbor2.dumps(m).replace(b"\x20\x01", b"\x20\x18\x01")
    elif case == "tier unknown":
        m[CLAIM_TIER] = "diamond"
    elif case == "card id 9 bytes":
        m[CLAIM_CARD_ID] = bytes(9)
    elif case == "card id text":
        m[CLAIM_CARD_ID] = "0123456789abcdef"
    elif case == "kid in text":
        protected = {1: -8, 4: "k1"}
    elif case == "extra protected":
        protected = {1: -8, 3: 0, 4: b"k1"}
    elif case == "no kid":
        protected = {1: -8}
    elif case == "list payload":
        payload = list(m.values())
    elif case == "bad cbor":
        payload = b"\xff\xff"
    elif case == "float time":
        m[4] = float(m[4])
    elif case == "bool version":
        m[-1] = True
    token = _resign(card_world, payload, protected)
    with pytest.raises(TokenFormatError):
        decode_card_token(token)
    assert card_world.verifier().verify(token, NOW).reason is RejectReason.MALFORMED


def test_token_format_error_is_a_card_error() -> None:
    assert issubclass(TokenFormatError, CardError)


@pytest.mark.parametrize("data", [b"", b"\x00", "CP1:abc", bytes(1000), None])
def test_decoder_refuses_junk(data: object) -> None:
    with pytest.raises(TokenFormatError):
        decode_card_token(data)  # type: ignore[arg-type]


# -- properties ------------------------------------------------------------------------------------------------

WORLD = CardWorld()
VERIFIER = WORLD.verifier()
claims_strategy = st.builds(
    CardClaims,
    version=st.just(1),
    issuer=st.just("acme"),
    card_id=st.binary(min_size=8, max_size=8).map(bytes.hex),
    member_id=st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF, categories=["L", "N", "P"]),
                      min_size=1, max_size=32),
    tier=st.sampled_from(list(Tier)),
    issued_at=st.integers(NOW - 300 * DAY, NOW),
    not_before=st.integers(NOW - 300 * DAY, NOW),
    expires_at=st.integers(NOW + 1000, NOW + 3000 * DAY),
    card_public_key=st.one_of(st.none(), st.binary(min_size=32, max_size=32)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claims=claims_strategy, replacement=st.integers(1, 255))
def test_every_single_byte_mutation_is_rejected(claims: CardClaims, replacement: int) -> None:
    token = sign_card_token(claims, WORLD.issuer_key, "k1")
    assert VERIFIER.verify(token, NOW).accepted
    for pos in range(len(token)):
        mutated = token[:pos] + bytes([token[pos] ^ replacement]) + token[pos + 1:]
        assert not VERIFIER.verify(mutated, NOW).accepted, (pos, replacement)


@settings(max_examples=40, deadline=None)
@given(claims=claims_strategy, extra=st.binary(min_size=1, max_size=8))
def test_every_truncation_and_extension_is_rejected(claims: CardClaims, extra: bytes) -> None:
    token = sign_card_token(claims, WORLD.issuer_key, "k1")
    for n in range(len(token)):
        assert VERIFIER.verify(token[:n], NOW).reason is RejectReason.MALFORMED
    assert VERIFIER.verify(token + extra, NOW).reason is RejectReason.MALFORMED


def test_every_one_byte_change_of_one_token_exhaustively() -> None:
    token = WORLD.challenge_token()
    accepted = [(pos, value) for pos in range(len(token)) for value in range(256)
                if value != token[pos]
                and VERIFIER.verify(token[:pos] + bytes([value]) + token[pos + 1:], NOW).accepted]
    assert accepted == []


@settings(max_examples=200, deadline=None)
@given(claims=claims_strategy)
def test_decode_inverts_sign(claims: CardClaims) -> None:
    decoded = decode_card_token(sign_card_token(claims, WORLD.issuer_key, "k1"))
    assert decoded.claims == claims


def test_claims_change_changes_token(card_world: CardWorld) -> None:
    a = card_world.token()
    b = card_world.token(tier=Tier.PLATINUM)
    assert a != b
    assert decode_card_token(b).claims == dataclasses.replace(card_world.claims(), tier=Tier.PLATINUM)


def test_private_key_helpers_round_trip() -> None:
    key = private_key_from_bytes(bytes([9]) * 32)
    assert len(public_key_bytes(key)) == 32
