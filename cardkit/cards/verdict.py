"""What a card check concludes. Shared by the verifier, the journal, the UI and the ledger's alerts."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cardkit.core.members import Tier


class RejectReason(enum.StrEnum):
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"  # forged
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REVOKED = "revoked"
    ON_HOLD = "on_hold"
    WRONG_ISSUER = "wrong_issuer"
    CHALLENGE_FAILED = "challenge_failed"  # cloned challenge-response card

    @property
    def words(self) -> str:
        return REASON_WORDS[self]


REASON_WORDS: dict[RejectReason, str] = {
    RejectReason.MALFORMED: "Card data is unreadable or not a cardpos card",
    RejectReason.UNKNOWN_KEY: "Card was signed by a key this terminal does not trust",
    RejectReason.BAD_SIGNATURE: "Forged card: the signature does not match",
    RejectReason.EXPIRED: "Card has expired",
    RejectReason.NOT_YET_VALID: "Card is not valid yet",
    RejectReason.REVOKED: "Card has been revoked",
    RejectReason.ON_HOLD: "Card is on hold",
    RejectReason.WRONG_ISSUER: "Card belongs to another issuer",
    RejectReason.CHALLENGE_FAILED: "Card failed its anti-copy check (possible clone)",
}


@dataclass(frozen=True, slots=True)
class CardClaims:
    """The signed content of a card token (see docs/card-token.md for the CBOR layout)."""

    version: int
    issuer: str
    card_id: str
    member_id: str
    tier: Tier
    issued_at: int  # epoch seconds
    not_before: int
    expires_at: int
    card_public_key: bytes | None = None  # raw Ed25519 key of a challenge-response card


@dataclass(frozen=True, slots=True)
class Verdict:
    """Accept (``reason is None`` and ``claims`` set) or reject with one reason."""

    claims: CardClaims | None
    reason: RejectReason | None = None
    kid: str | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None and self.claims is not None

    @classmethod
    def accept(cls, claims: CardClaims, kid: str) -> Verdict:
        return cls(claims=claims, reason=None, kid=kid)

    @classmethod
    def reject(cls, reason: RejectReason, claims: CardClaims | None = None, kid: str | None = None) -> Verdict:
        return cls(claims=claims, reason=reason, kid=kid)
