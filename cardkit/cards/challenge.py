"""Challenge-response for cards that carry their own key (clone-proof, in the spirit of EMV DDA).

The card's Ed25519 public key is certified inside its signed token. The terminal sends a fresh 16-byte nonce
through the reader; the card signs ``b"cardpos-challenge-v1" + nonce`` with its private key, which never leaves
the card. A copy of the static token without that key cannot answer, and fails with ``challenge_failed``.
The domain prefix keeps a card's key from ever signing anything that could pass for another message.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cardkit.cards.verdict import RejectReason, Verdict
from cardkit.errors import CardError

CHALLENGE_DOMAIN = b"cardpos-challenge-v1"
NONCE_BYTES = 16
SIGNATURE_BYTES = 64


def needs_challenge(verdict: Verdict) -> bool:
    """True for an accepted card that carries its own key: the terminal must challenge it before going on."""
    return verdict.accepted and verdict.claims is not None and verdict.claims.card_public_key is not None


def new_nonce(randbytes: Callable[[int], bytes]) -> bytes:
    nonce = randbytes(NONCE_BYTES)
    if type(nonce) is not bytes or len(nonce) != NONCE_BYTES:
        raise CardError("the random source returned the wrong number of bytes")
    return nonce


def challenge_message(nonce: bytes) -> bytes:
    if len(nonce) != NONCE_BYTES:
        raise CardError(f"a challenge nonce is {NONCE_BYTES} bytes")
    return CHALLENGE_DOMAIN + nonce


def sign_challenge(card_key: Ed25519PrivateKey, nonce: bytes) -> bytes:
    """The card side: answer a terminal's nonce (the simulator's challenge-response cards do this)."""
    return card_key.sign(challenge_message(nonce))


def check_challenge(verdict: Verdict, nonce: bytes, signature: bytes) -> Verdict:
    """The verdict after the card's answer: unchanged if no challenge was needed, else accept or
    ``challenge_failed``. ``signature`` comes from the reader and may be anything."""
    message = challenge_message(nonce)
    if not needs_challenge(verdict):
        return verdict
    claims = verdict.claims
    assert claims is not None and claims.card_public_key is not None  # needs_challenge checked both
    if type(signature) is not bytes or len(signature) != SIGNATURE_BYTES:
        return Verdict.reject(RejectReason.CHALLENGE_FAILED, claims, verdict.kid)
    try:
        Ed25519PublicKey.from_public_bytes(claims.card_public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return Verdict.reject(RejectReason.CHALLENGE_FAILED, claims, verdict.kid)
    return verdict
