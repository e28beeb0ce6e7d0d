"""The verifier: each reason, their order, rotation, validity times with skew, revocations, challenge-response."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from cardkit.cards.keys import IssuerKey, public_key_bytes
from cardkit.cards.revocation import RevocationDelta, RevocationList
from cardkit.cards.trust import TrustList
from cardkit.cards.verdict import RejectReason, Verdict
from cardkit.cards.verify import CardVerifier, check_challenge, needs_challenge, new_nonce, sign_challenge
from cardkit.errors import CardError
from tests.fixtures.cards import DAY, NOW, CardWorld, key_from_seed

R = RejectReason
FORGER = key_from_seed(bytes([66]) * 32)


def test_a_good_card_is_accepted(card_world: CardWorld) -> None:
    verdict = card_world.verifier().verify(card_world.token(), NOW)
    assert verdict.accepted and verdict.reason is None
    assert verdict == Verdict.accept(card_world.claims(), "k1")


def test_malformed_has_no_claims(card_world: CardWorld) -> None:
    verdict = card_world.verifier().verify(b"\xd2\x84garbage", NOW)
    assert verdict == Verdict.reject(R.MALFORMED)


@pytest.mark.parametrize(("make", "reason"), [
    (lambda w: w.token(issuer="other"), R.WRONG_ISSUER),
    (lambda w: w.token(kid="k9"), R.UNKNOWN_KEY),
    (lambda w: w.token(key=FORGER), R.BAD_SIGNATURE),
    (lambda w: w.token(not_before=NOW + 301, issued_at=NOW - DAY), R.NOT_YET_VALID),
    (lambda w: w.token(expires_at=NOW - 300), R.EXPIRED),
])
def test_each_reason_carries_the_claimed_card(card_world: CardWorld, make, reason: RejectReason) -> None:
    verdict = card_world.verifier().verify(make(card_world), NOW)
    assert verdict.reason is reason and not verdict.accepted
    assert verdict.claims is not None and verdict.claims.card_id == "0123456789abcdef"


def test_reason_order_first_failing_check_wins(card_world: CardWorld) -> None:
    v = card_world.verifier()
    card_world.revoke("0123456789abcdef")
    bad_times: dict[str, Any] = {"expires_at": NOW - 1000, "issued_at": NOW - 2 * DAY, "not_before": NOW - 2 * DAY}
    # everything wrong at once, peeled one layer at a time
    assert v.verify(card_world.token(key=FORGER, kid="k9", issuer="other", **bad_times), NOW).reason is R.WRONG_ISSUER
    assert v.verify(card_world.token(key=FORGER, kid="k9", **bad_times), NOW).reason is R.UNKNOWN_KEY
    assert v.verify(card_world.token(key=FORGER, **bad_times), NOW).reason is R.BAD_SIGNATURE
    assert v.verify(card_world.token(**bad_times), NOW).reason is R.EXPIRED
    assert v.verify(card_world.token(), NOW).reason is R.REVOKED


def test_clock_skew_window(card_world: CardWorld) -> None:
    v = card_world.verifier(skew=300)
    early = card_world.token(issued_at=NOW - DAY, not_before=NOW + 300)
    assert v.verify(early, NOW).accepted
    assert v.verify(early, NOW - 1).reason is R.NOT_YET_VALID
    late = card_world.token(expires_at=NOW - 299)
    assert v.verify(late, NOW).accepted
    assert v.verify(late, NOW + 1).reason is R.EXPIRED
    strict = card_world.verifier(skew=0)
    assert strict.verify(card_world.token(expires_at=NOW + 1), NOW).accepted
    assert strict.verify(card_world.token(expires_at=NOW), NOW).reason is R.EXPIRED
    assert strict.verify(card_world.token(not_before=NOW), NOW).accepted


def test_rotation_keeps_old_cards_until_the_old_key_is_retired(card_world: CardWorld) -> None:
    old_key, new_key = card_world.issuer_key, key_from_seed(bytes([3]) * 32)
    rotated_at = NOW + 10 * DAY
    old = IssuerKey("k1", "acme", public_key_bytes(old_key), NOW - 365 * DAY, rotated_at)
    new = IssuerKey("k2", "acme", public_key_bytes(new_key), rotated_at, rotated_at + 365 * DAY)
    trust = TrustList(2, "acme", (old, new))
    verifier = CardVerifier(trust, RevocationList(), issuer="acme")
    old_card = card_world.token()
    new_card = card_world.token(key=new_key, kid="k2", card_id="1111111111111111",
                                issued_at=rotated_at + DAY, not_before=rotated_at + DAY)
    later = rotated_at + 30 * DAY
    assert verifier.verify(old_card, later).accepted  # the old key's window ended but it is not retired
    assert verifier.verify(new_card, later).accepted
    # a card dated after the old key's window cannot be signed with the old key (e.g. a stolen retired key)
    backdated = card_world.token(issued_at=rotated_at + DAY, not_before=rotated_at + DAY)
    assert verifier.verify(backdated, later).reason is R.UNKNOWN_KEY
    # nor a new-key card dated before the new key's window
    assert verifier.verify(card_world.token(key=new_key, kid="k2"), later).reason is R.UNKNOWN_KEY
    retired = TrustList(3, "acme", (dataclasses.replace(old, retired_at=later + DAY), new))
    after = CardVerifier(retired, RevocationList(), issuer="acme")
    assert after.verify(old_card, later).accepted  # retirement is scheduled, not yet reached
    assert after.verify(old_card, later + DAY).reason is R.UNKNOWN_KEY
    assert after.verify(new_card, later + DAY).accepted


def test_a_key_of_another_issuer_in_the_trust_list_is_unknown(card_world: CardWorld) -> None:
    card_world.keys[0] = dataclasses.replace(card_world.keys[0], issuer="other")
    assert card_world.verifier().verify(card_world.token(), NOW).reason is R.UNKNOWN_KEY


def test_revoked_and_held_cards(card_world: CardWorld) -> None:
    rl = card_world.revocations
    v = card_world.verifier()
    card = card_world.token()
    rl.apply(RevocationDelta(0, 1, held=("0123456789abcdef",)))
    assert v.verify(card, NOW).reason is R.ON_HOLD
    rl.apply(RevocationDelta(1, 2, unheld=("0123456789abcdef",)))
    assert v.verify(card, NOW).accepted
    with pytest.raises(CardError):
        rl.apply(RevocationDelta(1, 3, revoked=(("0123456789abcdef", "lost"),)))
    assert v.verify(card, NOW).accepted  # the refused delta changed nothing
    rl.apply(RevocationDelta(2, 3, revoked=(("0123456789abcdef", "lost"),)))
    verdict = v.verify(card, NOW)
    assert verdict.reason is R.REVOKED and verdict.claims == card_world.claims()




def test_challenge_success_and_clone_failure(card_world: CardWorld) -> None:
    v = card_world.verifier()
    verdict = v.verify(card_world.challenge_token(), NOW)
    assert verdict.accepted and needs_challenge(verdict)
    nonce = new_nonce(lambda n: bytes(range(n)))
    answer = sign_challenge(card_world.card_key, nonce)
    assert check_challenge(verdict, nonce, answer) == verdict
    # a clone copied the static token but not the card's private key
    clone = key_from_seed(bytes([77]) * 32)
    failed = check_challenge(verdict, nonce, sign_challenge(clone, nonce))
    assert failed == Verdict.reject(R.CHALLENGE_FAILED, verdict.claims, "k1")
    # replaying an answer to an earlier nonce fails too
    assert check_challenge(verdict, new_nonce(lambda n: b"\x01" * n), answer).reason is R.CHALLENGE_FAILED
    for junk in (b"", answer[:63], answer + b"\x00", bytes(64)):
        assert check_challenge(verdict, nonce, junk).reason is R.CHALLENGE_FAILED


def test_challenge_is_domain_separated(card_world: CardWorld) -> None:
    verdict = card_world.verifier().verify(card_world.challenge_token(), NOW)
    nonce = bytes(16)
    raw_signature = card_world.card_key.sign(nonce)  # the card key signing the bare nonce is not an answer
    assert check_challenge(verdict, nonce, raw_signature).reason is R.CHALLENGE_FAILED


def test_no_challenge_for_plain_or_rejected_cards(card_world: CardWorld) -> None:
    v = card_world.verifier()
    plain = v.verify(card_world.token(), NOW)
    assert not needs_challenge(plain)
    assert check_challenge(plain, bytes(16), b"") == plain
    rejected = v.verify(card_world.challenge_token(key=FORGER), NOW)
    assert not needs_challenge(rejected)
    assert check_challenge(rejected, bytes(16), b"").reason is R.BAD_SIGNATURE


def test_nonce_sizes_are_enforced() -> None:
    with pytest.raises(CardError):
        new_nonce(lambda n: bytes(n - 1))
    with pytest.raises(CardError):
        sign_challenge(key_from_seed(bytes(32)), bytes(15))


def test_card_key_that_is_not_a_curve_point_fails_the_challenge(card_world: CardWorld) -> None:
    verdict = card_world.verifier().verify(card_world.token(card_public_key=b"\xff" * 32), NOW)
    assert needs_challenge(verdict)
    nonce = bytes(16)
    assert check_challenge(verdict, nonce, sign_challenge(card_world.card_key, nonce)).reason is R.CHALLENGE_FAILED
