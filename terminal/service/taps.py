"""A card presented at the counter: verify it, run the challenge for a card with its own key, journal any reject.

Every rejected tap is journaled as ``card_reject`` before ``tap`` returns; an accepted one is answered with the
member's view. A member this terminal was not sent is looked up online first (members at every store, issue 14):
the ledger's signed, sealed snapshot is cached and served; when the ledger does not answer in time the member is
served on the unknown-balance path (``terminal.service.limits``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from cardkit.cards.challenge import check_challenge, needs_challenge, new_nonce
from cardkit.cards.verdict import RejectReason, Verdict
from cardkit.errors import CardposError
from cardkit.journal import EntryKind
from terminal.service.desk import Desk
from terminal.service.lookups import member_view
from terminal.service.views import TapResult

log = logging.getLogger("cardpos.counter.taps")

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
    problem = look_up_member(desk, verdict.claims.member_id, verdict.claims.card_id)
    view = member_view(desk, verdict.claims)
    if problem:
        view = replace(view, lookup_problem=problem)
    return TapResult(verdict=verdict, member=view)


def look_up_member(desk: Desk, member_id: str, card_id: str) -> str:
    """Ask the ledger for a member this terminal was not sent (or, online, refresh one it looked up before) and
    cache the answer; the reason in one sentence when the ledger could not answer, else ""."""
    lookups = desk.lookups
    if lookups is None:
        return ""
    cache = desk.store.cache
    cached = cache.get(member_id) is not None
    if cached and (cache.looked_up_seq(member_id) is None or desk.offline):
        return ""  # pulled members stay current through pulls; a looked-up one is refreshed while online
    try:
        found = lookups.member(card_id)
    except CardposError as exc:  # unreachable, refused, not authentic: served from what is known here
        log.warning("member look-up failed", extra={"fields": {"card": card_id, "reason": str(exc)}})
        return "" if cached else str(exc)
    if found.snapshot.get("member_id") != member_id:
        log.warning("member look-up names another member", extra={"fields": {"card": card_id}})
        return "" if cached else "the ledger answered with another member for this card"
    try:
        cache.put_looked_up(found.snapshot, found.version, found.folded_seq)
    except CardposError as exc:  # a snapshot the cache refuses (a bad field) or a store that cannot write
        log.warning("looked-up member not cached", extra={"fields": {"card": card_id, "reason": str(exc)}})
        return "" if cached else str(exc)
    return ""


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
