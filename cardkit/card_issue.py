"""A new card issued online for a tier upgrade: the request a terminal signs and the answer the ledger signs.

The terminal journals the upgrade, pushes it, then sends ``POST /v1/cards/new?card=OLD&nonce=N&request=UUID``
signed like a pull (``cardkit.wire.request_signature_text``; the query carries every argument, so the signature
covers them all). ``request`` is the uuid of the terminal's ``tier_upgrade`` entry: the ledger issues at most one
card per request, and the same request asked again gets the same card back (a retry after a lost answer, a failed
card write). The answer is signed by the root key over ``new_card_signature_text`` and bound to the nonce. A
challenge card's private key travels sealed to the terminal's HPKE member key (``seal_card_key``), never in clear.
Specification: docs/sync-protocol.md, "New card for a tier upgrade".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit import answers, wire
from cardkit.envelope import SUITES, HpkePrivateKey, load_hpke_private_key, load_hpke_public_key
from cardkit.errors import CardError, SyncError

NEW_CARD_CONTEXT = "cardpos-new-card-v1"
CARD_KEY_INFO = b"cardpos-card-key-v1"
MAX_ID_CHARS = 40
MAX_TOKEN_BYTES = 991  # what one WRITE_CARD frame carries (cardkit.frames.MAX_WRITE_TOKEN)


@dataclass(frozen=True)
class NewCard:
    """A verified answer: the new card of upgrade ``request``; ``sealed_key`` only for a challenge card."""

    request: str
    old_card: str
    card_id: str
    member_id: str
    tier: str
    token: bytes
    sealed_key: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        return {"request": self.request, "old_card": self.old_card, "card_id": self.card_id,
                "member_id": self.member_id, "tier": self.tier, "token": base64.b64encode(self.token).decode(),
                "sealed_key": base64.b64encode(self.sealed_key).decode() if self.sealed_key else None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NewCard:
        """Read back a verified answer this terminal stored (its own file: no signature to check again)."""
        try:
            sealed = data.get("sealed_key")
            return cls(request=str(data["request"]), old_card=str(data["old_card"]), card_id=str(data["card_id"]),
                       member_id=str(data["member_id"]), tier=str(data["tier"]),
                       token=base64.b64decode(str(data["token"]), validate=True),
                       sealed_key=base64.b64decode(str(sealed), validate=True) if sealed else None)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise SyncError("the stored new card is unreadable", orig=exc) from exc


def new_card_query(card_id: str, request: str, nonce: bytes) -> str:
    """The signed ``path?query`` of a new-card request (parameters in sorted order)."""
    from urllib.parse import urlencode

    params = sorted([("card", card_id), ("request", request), *([(wire.NONCE_PARAM, nonce.hex())] if nonce else [])])
    return wire.NEW_CARD_PATH + "?" + urlencode(params)


def new_card_signature_text(terminal_id: str, nonce: bytes, card: NewCard) -> bytes:
    """Canonical CBOR ``["cardpos-new-card-v1", terminal_id, nonce, request, old card, new card, member, tier,
    token, SHA-256 of the sealed key or null]``."""
    sealed_digest = hashlib.sha256(card.sealed_key).digest() if card.sealed_key else None
    return cbor2.dumps([NEW_CARD_CONTEXT, terminal_id, bytes(nonce), card.request, card.old_card, card.card_id,
                        card.member_id, card.tier, bytes(card.token), sealed_digest], canonical=True)


def new_card_fields(card: NewCard, terminal_id: str, nonce: bytes, root_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The JSON answer: the card's fields and the root signature (hex)."""
    return {**card.to_json(), "signature": root_key.sign(new_card_signature_text(terminal_id, nonce, card)).hex()}


def verify_new_card(answer: Mapping[str, Any], root_public_key: bytes, *, terminal_id: str, nonce: bytes,
                    request: str, old_card: str) -> NewCard:
    """Check the ledger's answer to this request; raise ``UnauthenticAnswer`` (nothing believed) otherwise."""
    try:
        card = NewCard.from_json(answer)
    except SyncError as exc:
        raise answers.UnauthenticAnswer("the ledger's new card answer is malformed; nothing in it was believed",
                                        orig=exc) from exc
    if card.request != request or card.old_card != old_card:
        raise answers.UnauthenticAnswer("the ledger's new card answer is for another request; nothing in it was "
                                        "believed")
    if not 0 < len(card.token) <= MAX_TOKEN_BYTES or not 0 < len(card.card_id) <= MAX_ID_CHARS:
        raise answers.UnauthenticAnswer("the ledger's new card answer carries no usable card")
    signature = answers._hex_field(answer, "signature", answers.SIGNATURE_BYTES, "new card answer")
    answers._check(signature, new_card_signature_text(terminal_id, nonce, card), root_public_key, "new card answer")
    return card


# -- a challenge card's private key, sealed to one terminal -------------------------------------------------------
def _key_info(terminal_id: str, request: str) -> bytes:
    return b"\x00".join((CARD_KEY_INFO, terminal_id.encode(), request.encode()))


def seal_card_key(card_key: bytes, *, terminal_id: str, request: str, suite: str, terminal_public_key: bytes) -> bytes:
    """The new card's 32-byte private key sealed to the terminal's HPKE member key, for this request only."""
    public = load_hpke_public_key(suite, terminal_public_key)
    try:
        return bytes(SUITES[suite].encrypt(card_key, public, info=_key_info(terminal_id, request)))
    except (TypeError, ValueError) as exc:
        raise SyncError(f"cannot seal a card key to terminal {terminal_id}", orig=exc) from exc


def open_card_key(sealed: bytes, *, terminal_id: str, request: str, suite: str,
                  private_key: HpkePrivateKey | bytes) -> bytes:
    """Open a sealed card key with the terminal's member key; raise ``CardError``."""
    try:
        private = load_hpke_private_key(suite, private_key) if isinstance(private_key, bytes) else private_key
        key = bytes(SUITES[suite].decrypt(sealed, private, info=_key_info(terminal_id, request)))
    except (InvalidTag, ValueError, TypeError, SyncError) as exc:
        raise CardError("the new card's key does not open with this terminal's member key", orig=exc) from exc
    if len(key) != 32:
        raise CardError("the new card's key is not a 32-byte card key")
    return key
