"""The committed card-token vectors (tests/vectors/card-tokens.json): today's code must reproduce every byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cardkit.cards.keys import private_key_from_bytes, public_key_bytes
from cardkit.cards.revocation import RevocationList, load_revocation_delta
from cardkit.cards.textform import token_from_text, token_to_text
from cardkit.cards.token import decode_card_token, sign_card_token
from cardkit.cards.trust import load_trust_list
from cardkit.cards.verdict import CardClaims
from cardkit.cards.verify import CardVerifier
from cardkit.core.members import Tier

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "card-tokens.json").read_text(encoding="utf-8"))
ROOT_PUBLIC = bytes.fromhex(VECTORS["public_keys"]["root"])


def _claims(data: dict[str, Any]) -> CardClaims:
    key = data["card_public_key"]
    return CardClaims(data["version"], data["issuer"], data["card_id"], data["member_id"], Tier(data["tier"]),
                      data["issued_at"], data["not_before"], data["expires_at"],
                      None if key is None else bytes.fromhex(key))


def _verifier() -> CardVerifier:
    trust = load_trust_list(bytes.fromhex(VECTORS["trust_list"]["cose_hex"]), ROOT_PUBLIC)
    revocations = RevocationList()
    revocations.apply(load_revocation_delta(bytes.fromhex(VECTORS["revocation_delta"]["cose_hex"]), ROOT_PUBLIC))
    return CardVerifier(trust, revocations, issuer=VECTORS["issuer"], clock_skew_s=VECTORS["clock_skew_s"])


def test_seeds_give_the_listed_public_keys() -> None:
    for name, seed in VECTORS["seeds"].items():
        assert public_key_bytes(private_key_from_bytes(bytes.fromhex(seed))).hex() == VECTORS["public_keys"][name]


def test_trust_list_vector() -> None:
    trust = load_trust_list(bytes.fromhex(VECTORS["trust_list"]["cose_hex"]), ROOT_PUBLIC)
    assert [k.to_dict() for k in trust.keys] == VECTORS["trust_list"]["keys"]
    assert trust.version == VECTORS["trust_list"]["version"] and trust.issuer == VECTORS["issuer"]


def test_revocation_delta_vector() -> None:
    delta = load_revocation_delta(bytes.fromhex(VECTORS["revocation_delta"]["cose_hex"]), ROOT_PUBLIC)
    assert [list(r) for r in delta.revoked] == VECTORS["revocation_delta"]["revoked"]
    assert list(delta.held) == VECTORS["revocation_delta"]["held"]


@pytest.mark.parametrize("vector", VECTORS["tokens"], ids=[v["name"] for v in VECTORS["tokens"]])
def test_token_vector(vector: dict[str, Any]) -> None:
    claims = _claims(vector["claims"])
    signer = private_key_from_bytes(bytes.fromhex(VECTORS["seeds"][vector["signer_seed"]]))
    token = bytes.fromhex(vector["token_hex"])
    assert sign_card_token(claims, signer, vector["kid"]) == token
    assert len(token) == vector["bytes"] <= 200
    assert token_to_text(token) == vector["text"] and token_from_text(vector["text"]) == token
    decoded = decode_card_token(token)
    assert decoded.claims == claims and decoded.kid == vector["kid"]
    verifier = _verifier()
    for check in vector["checks"]:
        verdict = verifier.verify(token, check["now"])
        assert (verdict.reason.value if verdict.reason else None) == check["reason"], check
        assert verdict.claims == claims


def test_the_vectors_cover_accepts_and_each_kind_of_reject() -> None:
    reasons = {c["reason"] for v in VECTORS["tokens"] for c in v["checks"]}
    assert reasons >= {None, "bad_signature", "expired", "not_yet_valid", "revoked", "on_hold", "wrong_issuer"}
