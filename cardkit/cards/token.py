"""The cardpos card token: a COSE_Sign1 (EdDSA) over a CBOR claims map. Layout in docs/card-token.md.

Protected header ``{1: -8, 4: kid}`` (alg EdDSA, kid as UTF-8 bytes); unprotected header empty. Claims use the
CWT (RFC 8392) keys where one exists, so stock COSE/CWT tooling shows them, and small negative keys otherwise:

    1  iss  issuer            text, 1..32 printable characters
    2  sub  member id         text, 1..32 printable characters
    4  exp  expires at        uint, epoch seconds (the card is valid while now < exp)
    5  nbf  not before        uint, epoch seconds
    6  iat  issued at         uint, epoch seconds (must fall in the issuer key's issuing window)
    7  cti  card id           bstr, 8 bytes (shown as 16 lowercase hex characters)
   -1       format version    uint, 1
   -2       tier              text, a Tier value ("standard", "preferred", "gold", "platinum")
   -3       card public key   bstr, 32 bytes raw Ed25519 (only on challenge-response cards)

Decoding is strict: the payload must be exactly the deterministic encoding of these claims (so no unknown or
duplicate keys, no non-shortest integers, no trailing bytes), which means every byte of a token is signed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit import cbor_bounds
from cardkit.cards.cose import ALG_EDDSA, HDR_ALG, HDR_KID, CoseError, Sign1, decode_sign1, sign1
from cardkit.cards.verdict import CardClaims
from cardkit.core.members import Tier
from cardkit.errors import CardError

TOKEN_VERSION = 1
MAX_TOKEN_BYTES = 512  # real tokens are ~140 bytes (~175 with a card key); anything longer is not ours
MAX_TEXT_CHARS = 32
MAX_TIME = 2**40  # epoch seconds; far beyond any real date, keeps integers small and bounded
CARD_ID_BYTES = 8
CARD_KEY_BYTES = 32

CLAIM_ISSUER = 1
CLAIM_MEMBER = 2
CLAIM_EXPIRES = 4
CLAIM_NOT_BEFORE = 5
CLAIM_ISSUED_AT = 6
CLAIM_CARD_ID = 7
CLAIM_VERSION = -1
CLAIM_TIER = -2
CLAIM_CARD_KEY = -3

_KEY_ORDER = (CLAIM_ISSUER, CLAIM_MEMBER, CLAIM_EXPIRES, CLAIM_NOT_BEFORE, CLAIM_ISSUED_AT, CLAIM_CARD_ID,
              CLAIM_VERSION, CLAIM_TIER)
_KEY_ORDERS = {_KEY_ORDER, (*_KEY_ORDER, CLAIM_CARD_KEY)}
_TIERS = {tier.value: tier for tier in Tier}
_CARD_ID = re.compile(r"[0-9a-f]{16}")
_KID = re.compile(r"[!-~]{1,32}")  # printable ASCII without space
# A claims map (depth 1) of at most nine entries (depth 2): what a tapped card, a pasted text form or a scanned
# code can carry is pre-scanned within these bounds before cbor2 builds anything.
_CLAIMS_LIMITS = cbor_bounds.CborLimits(max_bytes=MAX_TOKEN_BYTES, max_depth=2, max_items=32, max_length=16)


class TokenFormatError(CardError):
    """The bytes are not a well-formed cardpos card token (the verifier's ``malformed``)."""


@dataclass(frozen=True, slots=True)
class DecodedToken:
    kid: str
    claims: CardClaims
    sign1: Sign1


def new_card_id(randbytes: Callable[[int], bytes]) -> str:
    """A fresh random card id: 16 lowercase hex characters."""
    raw = randbytes(CARD_ID_BYTES)
    if len(raw) != CARD_ID_BYTES:
        raise CardError("the random source returned the wrong number of bytes")
    return raw.hex()


def sign_card_token(claims: CardClaims, key: Ed25519PrivateKey, kid: str) -> bytes:
    """Encode and sign ``claims`` as a binary card token under issuer key ``kid``."""
    check_claims(claims)
    _check_kid(kid)
    return sign1(encode_claims(claims), {HDR_ALG: ALG_EDDSA, HDR_KID: kid.encode("ascii")}, key)


def encode_claims(claims: CardClaims) -> bytes:
    """The deterministic CBOR payload for ``claims`` (assumed checked)."""
    mapping: dict[int, Any] = {
        CLAIM_ISSUER: claims.issuer,
        CLAIM_MEMBER: claims.member_id,
        CLAIM_EXPIRES: claims.expires_at,
        CLAIM_NOT_BEFORE: claims.not_before,
        CLAIM_ISSUED_AT: claims.issued_at,
        CLAIM_CARD_ID: bytes.fromhex(claims.card_id),
        CLAIM_VERSION: claims.version,
        CLAIM_TIER: claims.tier.value,
    }
    if claims.card_public_key is not None:
        mapping[CLAIM_CARD_KEY] = claims.card_public_key
    return cbor2.dumps(mapping, canonical=True)


def decode_card_token(data: bytes) -> DecodedToken:
    """Parse a binary card token strictly, without checking its signature; raise ``TokenFormatError``."""
    try:
        msg = decode_sign1(data, strict=True, max_bytes=MAX_TOKEN_BYTES)
    except CoseError as exc:
        raise TokenFormatError(f"not a card token: {exc}", orig=exc) from exc
    if msg.protected.keys() != {HDR_ALG, HDR_KID}:
        raise TokenFormatError("card token protected header must hold exactly alg and kid")
    kid_raw = msg.protected[HDR_KID]
    if type(kid_raw) is not bytes or not _KID.fullmatch(kid_raw.decode("latin-1")):
        raise TokenFormatError("card token key id must be 1 to 32 printable ASCII characters")
    kid = kid_raw.decode("ascii")
    claims = _decode_claims(msg.payload)
    return DecodedToken(kid, claims, msg)


def _decode_claims(payload: bytes) -> CardClaims:
    try:
        raw = cbor_bounds.loads(payload, _CLAIMS_LIMITS)
    except cbor_bounds.CborRefused as exc:
        raise TokenFormatError(f"card token claims are not valid CBOR: {exc.reason}", orig=exc) from exc
    if not isinstance(raw, dict):
        raise TokenFormatError("card token claims must be a map")
    # Exactly the documented keys, as integers, in deterministic order (with or without a card key).
    if tuple(raw) not in _KEY_ORDERS or not all(type(k) is int for k in raw):
        raise TokenFormatError("card token claims are missing, unknown or out of order")
    card_id = raw[CLAIM_CARD_ID]
    tier = raw[CLAIM_TIER]
    if type(card_id) is not bytes or len(card_id) != CARD_ID_BYTES:
        raise TokenFormatError("card id must be 8 bytes")
    if type(tier) is not str or tier not in _TIERS:
        raise TokenFormatError("card tier is not a known tier")
    claims = CardClaims(
        version=raw[CLAIM_VERSION],
        issuer=raw[CLAIM_ISSUER],
        card_id=card_id.hex(),
        member_id=raw[CLAIM_MEMBER],
        tier=_TIERS[tier],
        issued_at=raw[CLAIM_ISSUED_AT],
        not_before=raw[CLAIM_NOT_BEFORE],
        expires_at=raw[CLAIM_EXPIRES],
        card_public_key=raw.get(CLAIM_CARD_KEY),
    )
    check_claims(claims)
    # Re-encoding must give back the payload byte for byte: with the key order checked above this rules out
    # non-shortest heads and trailing bytes, so no two encodings of one card exist. (cbor2 always writes
    # shortest heads; the canonical flag would only re-sort keys, which we already checked, at 3x the cost.)
    if cbor2.dumps(raw) != payload:
        raise TokenFormatError("card token claims are not deterministically encoded")
    return claims


def check_claims(claims: CardClaims) -> None:
    """Raise ``TokenFormatError`` unless every claim has the documented type and range."""
    if type(claims.version) is not int or claims.version != TOKEN_VERSION:
        raise TokenFormatError(f"card token version must be {TOKEN_VERSION}")
    _check_text(claims.issuer, "issuer")
    _check_text(claims.member_id, "member id")
    if type(claims.card_id) is not str or not _CARD_ID.fullmatch(claims.card_id):
        raise TokenFormatError("card id must be 16 lowercase hex characters")
    if not isinstance(claims.tier, Tier):
        raise TokenFormatError("card tier is not a known tier")
    for name, value in (("issued-at", claims.issued_at), ("not-before", claims.not_before),
                        ("expires-at", claims.expires_at)):
        if type(value) is not int or not 0 <= value < MAX_TIME:
            raise TokenFormatError(f"card {name} time must be a whole number of epoch seconds")
    if claims.expires_at <= claims.not_before or claims.expires_at <= claims.issued_at:
        raise TokenFormatError("card expires before it becomes valid")
    key = claims.card_public_key
    if key is not None and (type(key) is not bytes or len(key) != CARD_KEY_BYTES):
        raise TokenFormatError("card public key must be 32 bytes (raw Ed25519)")


def _check_text(value: object, what: str) -> None:
    if type(value) is not str or not 1 <= len(value) <= MAX_TEXT_CHARS or not value.isprintable():
        raise TokenFormatError(f"card {what} must be 1 to {MAX_TEXT_CHARS} printable characters")


def _check_kid(kid: str) -> None:
    if type(kid) is not str or not _KID.fullmatch(kid):
        raise TokenFormatError("key id must be 1 to 32 printable ASCII characters without spaces")
