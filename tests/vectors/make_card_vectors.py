"""Writes tests/vectors/card-tokens.json from fixed seeds. Run it only when the token format changes on purpose:

    .venv/bin/python -m tests.vectors.make_card_vectors

tests/unit/test_cards_vectors.py checks that today's code reproduces every byte and every verdict in the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cardkit.cards.keys import IssuerKey, private_key_from_bytes, public_key_bytes
from cardkit.cards.revocation import RevocationDelta, sign_revocation_delta
from cardkit.cards.textform import token_to_text
from cardkit.cards.token import sign_card_token
from cardkit.cards.trust import TrustList, sign_trust_list
from cardkit.cards.verdict import CardClaims
from cardkit.core.members import Tier

OUT = Path(__file__).with_name("card-tokens.json")
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
SEEDS = {  # name -> 32-byte Ed25519 seed (hex); test keys only, never used anywhere real
    "root": "01" * 32,
    "issuer-k2026": "02" * 32,
    "issuer-k2027": "03" * 32,
    "card-1": "04" * 32,
    "forger": "42" * 32,
}


def _key(name: str) -> Any:
    return private_key_from_bytes(bytes.fromhex(SEEDS[name]))


def _claims_json(c: CardClaims) -> dict[str, Any]:
    return {"version": c.version, "issuer": c.issuer, "card_id": c.card_id, "member_id": c.member_id,
            "tier": c.tier.value, "issued_at": c.issued_at, "not_before": c.not_before, "expires_at": c.expires_at,
            "card_public_key": None if c.card_public_key is None else c.card_public_key.hex()}


def build() -> dict[str, Any]:
    k2026 = IssuerKey("k2026", "acme", public_key_bytes(_key("issuer-k2026")), T0, T0 + 365 * DAY)
    k2027 = IssuerKey("k2027", "acme", public_key_bytes(_key("issuer-k2027")), T0 + 365 * DAY, T0 + 730 * DAY)
    trust = TrustList(1, "acme", (k2026, k2027))
    delta = RevocationDelta(0, 1, revoked=(("00000000000000d1", "stolen"),), held=("00000000000000d2",))
    cards = [
        ("plain gold card", "issuer-k2026", "k2026",
         CardClaims(1, "acme", "a1b2c3d4e5f60718", "M000123", Tier.GOLD, T0 + 10 * DAY, T0 + 10 * DAY,
                    T0 + 1105 * DAY)),
        ("challenge-response platinum card", "issuer-k2026", "k2026",
         CardClaims(1, "acme", "0f1e2d3c4b5a6978", "M000456", Tier.PLATINUM, T0 + 20 * DAY, T0 + 20 * DAY,
                    T0 + 1115 * DAY, public_key_bytes(_key("card-1")))),
        ("card under the rotated key", "issuer-k2027", "k2027",
         CardClaims(1, "acme", "1122334455667788", "M000789", Tier.STANDARD, T0 + 400 * DAY, T0 + 400 * DAY,
                    T0 + 1495 * DAY)),
        ("forged card (signed by a key not in the trust list, under a trusted kid)", "forger", "k2026",
         CardClaims(1, "acme", "a1b2c3d4e5f60718", "M000123", Tier.PLATINUM, T0 + 10 * DAY, T0 + 10 * DAY,
                    T0 + 1105 * DAY)),
        ("revoked card", "issuer-k2026", "k2026",
         CardClaims(1, "acme", "00000000000000d1", "M000900", Tier.STANDARD, T0, T0, T0 + 1095 * DAY)),
        ("held card", "issuer-k2026", "k2026",
         CardClaims(1, "acme", "00000000000000d2", "M000901", Tier.PREFERRED, T0, T0, T0 + 1095 * DAY)),
        ("card of another issuer", "issuer-k2026", "k2026",
         CardClaims(1, "other", "00000000000000e1", "X1", Tier.GOLD, T0, T0, T0 + 1095 * DAY)),
    ]
    checks: dict[str, list[tuple[int, str | None]]] = {  # name -> [(now, expected reason, None = accept)]
        "plain gold card": [(T0 + 30 * DAY, None), (T0 + 5 * DAY, "not_yet_valid"), (T0 + 1106 * DAY, "expired")],
        "challenge-response platinum card": [(T0 + 30 * DAY, None)],
        "card under the rotated key": [(T0 + 400 * DAY, None), (T0 + 399 * DAY, "not_yet_valid")],
        "forged card (signed by a key not in the trust list, under a trusted kid)": [(T0 + 30 * DAY, "bad_signature")],
        "revoked card": [(T0 + 30 * DAY, "revoked")],
        "held card": [(T0 + 30 * DAY, "on_hold")],
        "card of another issuer": [(T0 + 30 * DAY, "wrong_issuer")],
    }
    tokens = []
    for name, signer, kid, claims in cards:
        token = sign_card_token(claims, _key(signer), kid)
        tokens.append({"name": name, "signer_seed": signer, "kid": kid, "claims": _claims_json(claims),
                       "token_hex": token.hex(), "text": token_to_text(token), "bytes": len(token),
                       "checks": [{"now": now, "reason": reason} for now, reason in checks[name]]})
    return {
        "description": "cardpos card token test vectors (docs/card-token.md). Seeds are Ed25519 private keys "
                       "(RFC 8032 32-byte seeds); signatures are deterministic, so every byte is reproducible. "
                       "Verify with issuer 'acme', clock skew 300 s, the trust list and the revocation delta below.",
        "seeds": SEEDS,
        "public_keys": {name: public_key_bytes(_key(name)).hex() for name in SEEDS},
        "issuer": "acme",
        "clock_skew_s": 300,
        "trust_list": {"signed_by": "root", "keys": [k.to_dict() for k in trust.keys], "version": trust.version,
                       "cose_hex": sign_trust_list(trust, _key("root")).hex()},
        "revocation_delta": {"signed_by": "root", "from_version": 0, "to_version": 1,
                             "revoked": [list(r) for r in delta.revoked], "held": list(delta.held),
                             "cose_hex": sign_revocation_delta(delta, _key("root")).hex()},
        "tokens": tokens,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
