"""Online authorization on the wire: the terminal's request and the ledger's signed answer (both sides use it).

Before a stored-value payment, a points redemption or a coupon use is shown as approved, the terminal asks the
ledger ``POST /v1/authorize`` (``cardkit.wire.AUTHORIZE_PATH``) with a JSON ``AuthorizationRequest``: the uuid of
the journal entry it will record, the member, the stored value and points it takes (negative: gives back, a
refund or void), the coupons it uses and a fresh nonce. The request is signed by the terminal's identity key over
``/v1/authorize?digest=<hex sha256 of the body>``; the answer is signed by the ledger's root key over the request
digest, the nonce and the decision (``cardkit.wire.authorization_signature_text``). Specification:
docs/sync-protocol.md, "Online authorization".
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid as uuid_mod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cardkit import json_bounds, wire
from cardkit.answers import UnauthenticAnswer
from cardkit.errors import CardposError

MAX_AUTHORIZE_BYTES = 2048
"""A request is about 300 bytes of JSON; 16 coupon ids of 40 characters still fit."""
AUTHORIZE_JSON_LIMITS = json_bounds.JsonLimits(max_bytes=MAX_AUTHORIZE_BYTES, max_depth=2, max_items=48)
MAX_COUPONS = 16
MAX_ID_CHARS = 40
MAX_AMOUNT = 10**13
"""Largest stored value or points one authorization moves (either way): far past any real sale, within int64."""

AUTH_FIELD = "auth"
"""Journal payload field naming the path an operation took: the ledger's auth id, or ``OFFLINE_PATH``."""
OFFLINE_PATH = "offline"

APPROVED = "approved"
DECLINED = "declined"
DECISIONS = (APPROVED, DECLINED)

DECLINE_REASONS = {
    "insufficient_balance": "the member's live balance at the ledger does not cover the payment",
    "insufficient_points": "the member's live points at the ledger do not cover the redemption",
    "coupon_used": "the coupon was already used",
    "coupon_held": "the coupon is being used at another terminal right now",
    "coupon_unknown": "the coupon is not one of the member's coupons",
    "unknown_member": "the ledger does not know this member",
    "currency": "the amount is not in the member's currency",
    "already_recorded": "an operation with this id is already recorded at the ledger",
}
"""Why the ledger declines (the answer's ``reason``), in English; the terminal's i18n tables say it for cashiers."""

_HEX = re.compile(r"(?:[0-9a-f]{2})*")
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,40}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_AUTH_ID = re.compile(r"[0-9a-f]{16}")


class AuthorizationRefused(CardposError):
    """An authorization request that is not well formed; ``reason`` is the ledger's error code."""

    title = "Malformed authorization"

    def __init__(self, message: str, *, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """What a terminal asks the ledger to hold for one journal entry it is about to record."""

    entry_uuid: str
    member_id: str
    card_id: str
    currency: str
    sv: int
    """Stored value the entry takes from the balance (minor units); negative gives it back (refund, void)."""
    points: int
    """Points the entry takes; negative gives them back."""
    coupons: tuple[str, ...]
    nonce: bytes

    def body(self) -> bytes:
        """The request body: compact JSON with sorted keys (its SHA-256 goes into the signed path)."""
        return json.dumps({"uuid": self.entry_uuid, "member": self.member_id, "card": self.card_id,
                           "cur": self.currency, "sv": self.sv, "pts": self.points, "coupons": list(self.coupons),
                           "nonce": self.nonce.hex()}, sort_keys=True, separators=(",", ":")).encode()

    @property
    def is_credit(self) -> bool:
        """Gives back and takes nothing (a refund or void): always approved for a known member."""
        return self.sv <= 0 and self.points <= 0 and not self.coupons


def request_digest(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def signed_path(body: bytes) -> str:
    """The path and query a terminal signs for this body."""
    return f"{wire.AUTHORIZE_PATH}?{wire.DIGEST_PARAM}={request_digest(body).hex()}"


def _text(data: Mapping[str, Any], key: str, pattern: re.Pattern[str], what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise AuthorizationRefused(f"the authorization's {key} is not {what}")
    return value


def _amount(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if type(value) is not int or not -MAX_AMOUNT <= value <= MAX_AMOUNT:
        raise AuthorizationRefused(f"the authorization's {key} is not a whole number within ±{MAX_AMOUNT}")
    return value


def parse_request(body: bytes) -> AuthorizationRequest:
    """Decode an untrusted request body with fixed limits; raise ``AuthorizationRefused``."""
    try:
        data = json_bounds.loads(body, AUTHORIZE_JSON_LIMITS)
    except json_bounds.JsonRefused as exc:
        raise AuthorizationRefused(f"the authorization is refused: {exc.reason}") from exc
    if not isinstance(data, dict):
        raise AuthorizationRefused("the authorization is not a JSON object")
    unknown = set(data) - {"uuid", "member", "card", "cur", "sv", "pts", "coupons", "nonce"}
    if unknown:
        raise AuthorizationRefused(f"the authorization has unknown fields: {', '.join(sorted(unknown))[:200]}")
    entry_uuid = data.get("uuid")
    try:
        if not isinstance(entry_uuid, str) or str(uuid_mod.UUID(entry_uuid)) != entry_uuid:
            raise ValueError
    except ValueError:
        raise AuthorizationRefused("the authorization's uuid is not a canonical UUID") from None
    coupons = data.get("coupons")
    if (not isinstance(coupons, list) or len(coupons) > MAX_COUPONS
            or not all(isinstance(c, str) and _ID.fullmatch(c) for c in coupons) or len(set(coupons)) != len(coupons)):
        raise AuthorizationRefused(f"the authorization's coupons are not up to {MAX_COUPONS} distinct coupon ids")
    nonce = _text(data, "nonce", _HEX, "hex")
    if not 0 < len(nonce) <= 2 * wire.MAX_NONCE_BYTES:
        raise AuthorizationRefused(f"the authorization's nonce is 1 to {wire.MAX_NONCE_BYTES} bytes of hex")
    return AuthorizationRequest(
        entry_uuid=entry_uuid, member_id=_text(data, "member", _ID, "a member id"),
        card_id=_text(data, "card", _ID, "a card id"), currency=_text(data, "cur", _CURRENCY, "a currency code"),
        sv=_amount(data, "sv"), points=_amount(data, "pts"), coupons=tuple(coupons), nonce=bytes.fromhex(nonce))


@dataclass(frozen=True, slots=True)
class AuthorizationAnswer:
    """The ledger's decision on one request: ``auth_id`` names the hold (or the recorded decline)."""

    entry_uuid: str
    decision: str
    reason: str
    auth_id: str

    @property
    def approved(self) -> bool:
        return self.decision == APPROVED


def answer_fields(answer: AuthorizationAnswer, *, terminal_id: str, nonce: bytes, digest: bytes,
                  root_key: Ed25519PrivateKey) -> dict[str, str]:
    """The JSON answer, signed by the root key over this request (``wire.authorization_signature_text``)."""
    text = wire.authorization_signature_text(terminal_id, nonce, digest, answer.entry_uuid, answer.decision,
                                             answer.reason, answer.auth_id)
    return {"uuid": answer.entry_uuid, "decision": answer.decision, "reason": answer.reason,
            "auth_id": answer.auth_id, "signature": root_key.sign(text).hex()}


def verify_answer(data: Any, root_public_key: bytes, *, terminal_id: str, request: AuthorizationRequest,
                  digest: bytes) -> AuthorizationAnswer:
    """Check an answer against the request it answers; raise ``UnauthenticAnswer`` unless the ledger signed
    exactly this decision for this terminal, body and nonce."""
    if not isinstance(data, Mapping):
        raise UnauthenticAnswer("the ledger's authorization answer is not a JSON object; nothing was approved")
    decision, reason, auth_id = data.get("decision"), data.get("reason"), data.get("auth_id")
    signature = data.get("signature")
    if (decision not in DECISIONS or not isinstance(reason, str) or len(reason) > 64
            or not isinstance(auth_id, str) or not _AUTH_ID.fullmatch(auth_id) or data.get("uuid") != request.entry_uuid
            or not isinstance(signature, str) or len(signature) != 128 or not _HEX.fullmatch(signature)):
        raise UnauthenticAnswer("the ledger's authorization answer is malformed; nothing was approved")
    text = wire.authorization_signature_text(terminal_id, request.nonce, digest, request.entry_uuid, str(decision),
                                             reason, auth_id)
    try:
        Ed25519PublicKey.from_public_bytes(root_public_key).verify(bytes.fromhex(signature), text)
    except (InvalidSignature, ValueError) as exc:
        raise UnauthenticAnswer("the authorization answer is not signed by the ledger for this request; nothing "
                                "was approved", orig=exc) from exc
    return AuthorizationAnswer(entry_uuid=request.entry_uuid, decision=str(decision), reason=reason,
                               auth_id=auth_id)
