"""A card presented at the counter: verify it, run the challenge for a card with its own key, journal any reject.

Every rejected tap is journaled as ``card_reject`` before ``tap`` returns; an accepted one is answered with the
member's view.
"""

from __future__ import annotations

from collections.abc import Callable

from cardkit.cards.challenge import check_challenge, needs_challenge, new_nonce
from cardkit.cards.verdict import RejectReason, Verdict
from cardkit.journal import EntryKind
from terminal.service.desk import Desk
from terminal.service.lookups import member_view
from terminal.service.views import TapResult

Challenge = Callable[[bytes], bytes]
"""Sends a nonce to the card (through the reader) and returns the card's signature of it."""


def tap(desk: Desk, token: bytes, *, manual: bool = False, challenge: Challenge | None = None) -> TapResult:
    """The verdict on a presented card; a card that needs a challenge fails with ``challenge_failed`` when there
    is no ``challenge`` or it raises."""
    verdict = desk.verifier.verify(token, desk.clock())
    if needs_challenge(verdict):
        verdict = _run_challenge(desk, verdict, challenge)
    if not verdict.accepted:
        claims = verdict.claims
        reason = verdict.reason or RejectReason.MALFORMED
        with desk.operation_lock.hold():
            entry = desk.store.journal.append(EntryKind.CARD_REJECT, {
                "reason": reason.value, "card": claims.card_id if claims else None, "kid": verdict.kid,
                "manual": bool(manual),
            })
        return TapResult(verdict=verdict, member=None, reject_entry=entry)
    assert verdict.claims is not None  # accepted verdicts carry claims
    return TapResult(verdict=verdict, member=member_view(desk, verdict.claims))


def _run_challenge(desk: Desk, verdict: Verdict, challenge: Challenge | None) -> Verdict:
    failed = Verdict.reject(RejectReason.CHALLENGE_FAILED, verdict.claims, verdict.kid)
    if challenge is None:
        return failed
    nonce = new_nonce(desk.randbytes)
    try:
        signature = challenge(nonce)
    except Exception:  # a reader timeout or a card that cannot answer: treated as a failed challenge
        return failed
    return check_challenge(verdict, nonce, signature)
