"""Build a wallet with one card of every kind, signed for real, plus the trust and revocation lists that make
each card come out with its intended verdict. Used by the tests, the benchmark and demo set-ups.

Kinds and the verdict a terminal holding ``trust``/``revocations`` reaches:
valid (each tier) -> accepted; expired -> expired; revoked -> revoked; held -> on_hold;
forged (signed by an untrusted key that claims the trusted kid) -> bad_signature; malformed -> malformed;
challenge (carries a card key; the simulator answers challenges with it) -> accepted after the challenge;
cloned (the challenge card's token without its key) -> challenge_failed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.cards.keys import DAY_S, IssuerKey, private_key_to_bytes, public_key_bytes
from cardkit.cards.revocation import RevocationDelta, RevocationList
from cardkit.cards.textform import token_to_text
from cardkit.cards.token import TOKEN_VERSION, new_card_id, sign_card_token
from cardkit.cards.trust import TrustList
from cardkit.cards.verdict import CardClaims, RejectReason
from cardkit.core.members import Tier
from cardkit.wallet import Wallet, WalletCard


@dataclass
class IssuedWallet:
    wallet: Wallet
    trust: TrustList
    revocations: RevocationList
    issuer: str
    issuer_key: Ed25519PrivateKey
    expected: dict[int, RejectReason | None] = field(default_factory=dict)  # card number -> verdict reason


def make_test_wallet(*, now: int, issuer: str = "cardpos-test", kid: str = "test-1",
                     issuer_key: Ed25519PrivateKey | None = None, issued_at: int | None = None,
                     randbytes: Callable[[int], bytes] = os.urandom) -> IssuedWallet:
    """Cards issued at ``issued_at`` (default: a day before ``now``; pass a time inside the real issuer key's
    issuing window when signing with a ledger's key). The expired card is always issued 30 days before ``now``,
    so it needs a key whose issuing window reaches back that far, or it comes out ``unknown_key``."""
    key = issuer_key or Ed25519PrivateKey.generate()
    issued_default = now - DAY_S if issued_at is None else issued_at
    record = IssuerKey(kid=kid, issuer=issuer, public_key=public_key_bytes(key), not_before=now - 400 * DAY_S,
                       not_after=now + 400 * DAY_S)
    trust = TrustList(version=1, issuer=issuer, keys=(record,))
    wallet = Wallet()
    expected: dict[int, RejectReason | None] = {}
    revoked: list[tuple[str, str]] = []
    held: list[str] = []

    def claims(member: str, tier: Tier, *, expires: int = now + 365 * DAY_S, card_key: bytes | None = None,
               issued: int | None = None) -> CardClaims:
        issued = issued_default if issued is None else issued
        return CardClaims(version=TOKEN_VERSION, issuer=issuer, card_id=new_card_id(randbytes), member_id=member,
                          tier=tier, issued_at=issued, not_before=issued, expires_at=expires,
                          card_public_key=card_key)

    def add(label: str, kind: str, c: CardClaims, *, signer: Ed25519PrivateKey = key,
            card_key: Ed25519PrivateKey | None = None, reason: RejectReason | None = None) -> int:
        text = token_to_text(sign_card_token(c, signer, kid))
        number = wallet.add(WalletCard(label, kind, text,
                                       private_key_to_bytes(card_key).hex() if card_key is not None else None))
        expected[number] = reason
        return number

    for i, tier in enumerate(Tier):
        add(f"member {i + 1} ({tier.value})", "valid", claims(f"m-{i + 1:03d}", tier))
    add("expired card", "expired", claims("m-100", Tier.STANDARD, issued=now - 30 * DAY_S, expires=now - DAY_S),
        reason=RejectReason.EXPIRED)
    c = claims("m-101", Tier.GOLD)
    add("revoked card", "revoked", c, reason=RejectReason.REVOKED)
    revoked.append((c.card_id, "lost"))
    c = claims("m-102", Tier.PREFERRED)
    add("held card", "held", c, reason=RejectReason.ON_HOLD)
    held.append(c.card_id)
    add("forged card", "forged", claims("m-103", Tier.PLATINUM), signer=Ed25519PrivateKey.generate(),
        reason=RejectReason.BAD_SIGNATURE)
    card_key = Ed25519PrivateKey.generate()
    c = claims("m-104", Tier.GOLD, card_key=public_key_bytes(card_key))
    challenge_no = add("key card", "challenge", c, card_key=card_key)
    cloned_text = wallet.card(challenge_no).token_text
    wallet.add(WalletCard("copy of the key card", "cloned", cloned_text))
    expected[len(wallet.cards)] = RejectReason.CHALLENGE_FAILED
    wallet.add(WalletCard("not a card", "malformed", "hex:d28443a10126a0f6"))
    expected[len(wallet.cards)] = RejectReason.MALFORMED

    revocations = RevocationList()
    revocations.apply(RevocationDelta(from_version=0, to_version=1, revoked=tuple(revoked), held=tuple(held)))
    return IssuedWallet(wallet, trust, revocations, issuer, key, expected)
