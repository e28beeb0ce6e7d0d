"""Offline card verification: one token in, one ``Verdict`` out, checks in a fixed order.

Order (the first failing check names the reason): malformed -> wrong_issuer -> unknown_key (kid not in the trust
list, key retired, key not for this issuer, or the card's issued-at outside the key's issuing window) ->
bad_signature -> not_yet_valid / expired (with clock skew) -> revoked / on_hold. Then, for cards with their own
key, the caller runs a challenge (``needs_challenge`` / ``check_challenge``).

On every reject after ``malformed`` the verdict carries the claims, so the journal can record the card id.
Before the signature check passes those claims are only *claimed* (wrong_issuer, unknown_key, bad_signature).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cardkit.cards.challenge import check_challenge, needs_challenge, new_nonce, sign_challenge
from cardkit.cards.keys import IssuerKey, public_key_from_bytes
from cardkit.cards.revocation import RevocationList
from cardkit.cards.token import TokenFormatError, decode_card_token
from cardkit.cards.trust import TrustList
from cardkit.cards.verdict import RejectReason, Verdict

__all__ = ["CardVerifier", "check_challenge", "needs_challenge", "new_nonce", "sign_challenge"]


class CardVerifier:
    """Verifies card tokens against one trust list and one revocation list (swap in a new verifier on update)."""

    def __init__(self, trust: TrustList, revocations: RevocationList, *, issuer: str,
                 clock_skew_s: int = 300) -> None:
        self.trust = trust
        self.revocations = revocations
        self.issuer = issuer
        self.clock_skew_s = clock_skew_s
        # Parsing a public key costs about as much as a hash; do it once per kid, not once per tap.
        self._keys: dict[str, tuple[IssuerKey, Ed25519PublicKey]] = {
            key.kid: (key, public_key_from_bytes(key.public_key)) for key in trust.keys
        }

    def verify(self, token: bytes, now: int) -> Verdict:
        try:
            decoded = decode_card_token(token)
        except TokenFormatError:
            return Verdict.reject(RejectReason.MALFORMED)
        claims, kid = decoded.claims, decoded.kid
        if claims.issuer != self.issuer:
            return Verdict.reject(RejectReason.WRONG_ISSUER, claims, kid)
        entry = self._keys.get(kid)
        if entry is None:
            return Verdict.reject(RejectReason.UNKNOWN_KEY, claims, kid)
        key, public_key = entry
        if key.issuer != claims.issuer or key.is_retired(now) or not key.may_issue(claims.issued_at):
            return Verdict.reject(RejectReason.UNKNOWN_KEY, claims, kid)
        try:
            public_key.verify(decoded.sign1.signature, decoded.sign1.to_be_signed())
        except InvalidSignature:
            return Verdict.reject(RejectReason.BAD_SIGNATURE, claims, kid)
        if now + self.clock_skew_s < claims.not_before:
            return Verdict.reject(RejectReason.NOT_YET_VALID, claims, kid)
        if now - self.clock_skew_s >= claims.expires_at:
            return Verdict.reject(RejectReason.EXPIRED, claims, kid)
        status = self.revocations.status(claims.card_id)
        if status is not None:
            return Verdict.reject(status, claims, kid)
        return Verdict.accept(claims, kid)
