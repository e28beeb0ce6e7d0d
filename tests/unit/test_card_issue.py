"""The new-card request and answer (cardkit.card_issue): the documented vector, tampering refused, sealed keys."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.answers import UnauthenticAnswer
from cardkit.card_issue import (
    NewCard,
    new_card_fields,
    new_card_query,
    new_card_signature_text,
    open_card_key,
    seal_card_key,
    verify_new_card,
)
from cardkit.envelope import generate_hpke_private_key, hpke_public_key_bytes
from cardkit.errors import CardError

ROOT = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ROOT_PUBLIC = ROOT.public_key().public_bytes_raw()
NONCE = bytes(range(16))
REQUEST = "0190f3a2-0000-7000-8000-000000000001"
CARD = NewCard(request=REQUEST, old_card="c-old", card_id="c-new", member_id="M001", tier="preferred",
               token=bytes.fromhex("d28443a10126a0f6"))

# As printed in docs/sync-protocol.md, "3c. New card for a tier upgrade or a sign-up".
TEXT_HEX = ("8a7363617264706f732d6e65772d636172642d763162743150000102030405060708090a0b0c0d0e0f78243031393066336132"
            "2d303030302d373030302d383030302d30303030303030303030303165632d6f6c6465632d6e6577644d3030316970726566"
            "657272656448d28443a10126a0f6f6")
SIGNATURE_HEX = ("fac44ab84f6c985c9eb0ff56732c4f0dbd441c72f8b71c0f30b236712f1b71e4695dc7b9465cf812c21c23507367c098"
                 "94a394c01fd403384f33d1d050539a02")


def test_documented_vector() -> None:
    assert new_card_signature_text("t1", NONCE, CARD).hex() == TEXT_HEX
    assert new_card_fields(CARD, "t1", NONCE, ROOT)["signature"] == SIGNATURE_HEX
    assert new_card_query("c-old", REQUEST, NONCE) == (
        "/v1/cards/new?card=c-old&nonce=000102030405060708090a0b0c0d0e0f&request=" + REQUEST)


def test_a_signed_answer_verifies_for_its_request_only() -> None:
    answer = new_card_fields(CARD, "t1", NONCE, ROOT)
    assert verify_new_card(answer, ROOT_PUBLIC, terminal_id="t1", nonce=NONCE, request=REQUEST,
                           old_card="c-old") == CARD
    for terminal, nonce, request, old in (("t2", NONCE, REQUEST, "c-old"), ("t1", bytes(16), REQUEST, "c-old"),
                                          ("t1", NONCE, "other", "c-old"), ("t1", NONCE, REQUEST, "c-other")):
        with pytest.raises(UnauthenticAnswer):
            verify_new_card(answer, ROOT_PUBLIC, terminal_id=terminal, nonce=nonce, request=request, old_card=old)
    for field, value in (("card_id", "c-evil"), ("member_id", "M002"), ("tier", "platinum"), ("token", "AAAA"),
                         ("signature", "00" * 64), ("token", "not base64!"), ("signature", None)):
        with pytest.raises(UnauthenticAnswer):
            verify_new_card({**answer, field: value}, ROOT_PUBLIC, terminal_id="t1", nonce=NONCE,
                            request=REQUEST, old_card="c-old")


@pytest.mark.parametrize("suite", ["x25519", "mlkem768x25519"])
def test_a_challenge_cards_key_opens_only_at_its_terminal_for_its_request(suite: str) -> None:
    private = generate_hpke_private_key(suite)
    public = hpke_public_key_bytes(suite, private)
    key = bytes(range(32, 64))
    sealed = seal_card_key(key, terminal_id="t1", request=REQUEST, suite=suite, terminal_public_key=public)
    assert key not in sealed
    assert open_card_key(sealed, terminal_id="t1", request=REQUEST, suite=suite, private_key=private) == key
    with pytest.raises(CardError):
        open_card_key(sealed, terminal_id="t1", request="another", suite=suite, private_key=private)
    with pytest.raises(CardError):
        open_card_key(sealed, terminal_id="t1", request=REQUEST, suite=suite,
                      private_key=generate_hpke_private_key(suite))
    signed = NewCard(**{**CARD.__dict__, "sealed_key": sealed})
    answer = new_card_fields(signed, "t1", NONCE, ROOT)
    with pytest.raises(UnauthenticAnswer):  # the sealed key is covered by the signature too
        verify_new_card({**answer, "sealed_key": new_card_fields(CARD, "t1", NONCE, ROOT)["token"]}, ROOT_PUBLIC,
                        terminal_id="t1", nonce=NONCE, request=REQUEST, old_card="c-old")
