"""Terminal enrollment and request authentication at the ledger.

Enrollment (``cardkit.enrollment``, docs/sync-protocol.md §1) trades a proof of a one-time code — made by
``cardpos ledger terminal add``; never sent, never stored: ``ledger.enroll_codes`` — for the ledger's public keys
and first documents, authenticated with the code and signed by the root key. It records the terminal's Ed25519
identity key and the HPKE key its member snapshots are sealed to. Order of checks: the source's failure count
(``ledger.enroll_guard``), the request's layout, the code id, the proof (constant time), the root key the
terminal expects; the code is used up only by a valid proof. Failed attempts are audited (one line each, no
secrets) and alerted past a threshold; a code is locked after ``MAX_BAD_PROOFS`` wrong proofs.

Pulls are signed by the identity key: ``Ed25519(GET\n{path?query}\n{time_ms})``.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cardkit import wire
from cardkit.enrollment import EnrollAnswer, EnrollProof, proof_matches, seal_answer
from cardkit.envelope import load_hpke_public_key
from cardkit.errors import SyncError
from ledger import enroll_codes, publish, store
from ledger.anomaly.model import Finding, Severity, SubjectType
from ledger.enroll_guard import MAX_BAD_PROOFS, AttemptGuard, guard
from ledger.errors import LedgerError
from ledger.home import Ledger
from ledger.keys import SUITES

log = logging.getLogger("cardpos.ledger.enroll")

MAX_CLOCK_DIFF_MS = 5 * 60 * 1000
CLEARTEXT_MEMBERS_ENV = "CARDPOS_LEDGER_ALLOW_CLEARTEXT_MEMBERS"
"""Set to 1 by ``ledger serve --allow-cleartext-members``: terminals enrolled before member snapshots were sealed
(no HPKE key registered) get them signed but in clear instead of a refusal."""
BAD_CODE_MESSAGE = "the enrollment code is unknown, used or expired"


class RequestRefused(LedgerError):
    """An API request refused with an error code and an HTTP status (and headers, e.g. ``Retry-After``)."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclasses.dataclass(frozen=True)
class _Outcome:
    """What checking a proof decided, acted on after its transaction commits."""

    terminal_id: str | None
    reason: str | None  # None: the proof holds; else unknown_code, expired, bad_proof, locked, unusable_code
    locked_now: bool = False
    mac_key: bytes = b""  # the code's MAC key once the proof matched (the answer is authenticated with it)
    store_id: str = ""


def enroll_terminal(ledger: Ledger, fields: Mapping[str, Any], *, source: str,
                    attempts: AttemptGuard = guard) -> dict[str, str]:
    """Check an enrollment proof (the JSON fields of ``POST /v1/enroll``) from ``source`` (an address) and
    answer it (``cardkit.enrollment.seal_answer``); raise ``RequestRefused``."""
    now = ledger.now_ms()
    throttled = attempts.throttled(source, now)
    if throttled is not None:
        retry_after_s, first = throttled
        if first:
            _audit(ledger, source, "terminal_enroll_throttled", "", retry_after_s=retry_after_s)
        raise RequestRefused(429, "too_many_attempts",
                             f"too many failed enrollment attempts from this address; try again in {retry_after_s} s",
                             headers={"Retry-After": str(retry_after_s)})
    proof = _parse(fields)
    outcome = _check_proof(ledger, proof, now)
    if outcome.reason is not None:
        _failed(ledger, source, outcome, now, attempts)
        raise RequestRefused(403, "bad_code", BAD_CODE_MESSAGE)
    terminal_id = outcome.terminal_id
    assert terminal_id is not None
    if proof.root_key is not None and proof.root_key != ledger.keys.root_public():  # only after a valid proof
        _audit(ledger, source, "terminal_enroll_refused", terminal_id, reason="root_key_mismatch")
        raise RequestRefused(409, "root_key_mismatch",
                             "this ledger's root key is not the one the terminal expects (--root-key); "
                             "the enrollment code was not used")
    # The documents before the code is used: if making them fails, the terminal can simply try again.
    answer = EnrollAnswer(
        terminal_id=terminal_id, store_id=outcome.store_id, issuer=ledger.issuer, suite=proof.suite,
        ledger_hpke_key=ledger.keys.hpke().public[proof.suite], root_key=ledger.keys.root_public(),
        identity_key=proof.identity_key, terminal_hpke_key=proof.terminal_hpke_key, nonce=proof.nonce,
        trust_list=publish.signed_trust_list(ledger), rules=publish.signed_rules(ledger, outcome.store_id),
        revocations=publish.signed_revocation_delta(ledger, 0))
    if not _consume(ledger, proof, terminal_id, now, source):
        # another request used the code, or it expired, or the terminal was disabled, since the check
        _failed(ledger, source, _Outcome(terminal_id, "expired"), now, attempts)
        raise RequestRefused(403, "bad_code", BAD_CODE_MESSAGE)
    return seal_answer(answer, outcome.mac_key, ledger.keys.root())


def _parse(fields: Mapping[str, Any]) -> EnrollProof:
    try:
        proof = EnrollProof.from_json(fields)
    except SyncError as exc:
        raise RequestRefused(400, "malformed", f"the enrollment request is not well formed: {exc}") from None
    if proof.suite not in SUITES:
        raise RequestRefused(400, "malformed", f"unknown HPKE suite {proof.suite!r} (one of: {', '.join(SUITES)})")
    try:
        Ed25519PublicKey.from_public_bytes(proof.identity_key)
    except ValueError:
        raise RequestRefused(400, "malformed", "identity_key must be 64 hex characters of an Ed25519 public key") \
            from None
    try:
        load_hpke_public_key(proof.suite, proof.terminal_hpke_key)
    except SyncError:
        raise RequestRefused(400, "malformed", f"terminal_hpke_key is not a {proof.suite} HPKE public key") from None
    return proof


def _check_proof(ledger: Ledger, proof: EnrollProof, now: int) -> _Outcome:
    """Find the pending enrollment the code id names and check the proof in constant time, in one write
    transaction that also counts a wrong proof (and locks the code at ``MAX_BAD_PROOFS``); the caller raises
    after it commits."""
    with store.atomic_write():
        pending = store.Terminal.get_or_none(store.Terminal.enroll_code_hash == proof.code_id.hex())
        secret = (store.PendingEnrollment.get_or_none(store.PendingEnrollment.terminal_id == pending.terminal_id)
                  if pending is not None else None)
        if pending is None or secret is None:
            return _Outcome(None, "unknown_code")
        terminal_id = str(pending.terminal_id)
        if pending.status != "pending" or int(pending.code_expires_ms or 0) <= now:
            return _Outcome(terminal_id, "expired")
        if int(secret.failures) >= MAX_BAD_PROOFS:
            return _Outcome(terminal_id, "locked")
        try:
            mac_key = enroll_codes.mac_key(ledger, secret)
        except LedgerError as exc:  # the ledger's own fault (another root key): say so in its log, not to callers
            log.error("enrollment code unusable: %s", exc.message)
            return _Outcome(terminal_id, "unusable_code")
        if proof_matches(mac_key, proof):
            return _Outcome(terminal_id, None, mac_key=mac_key, store_id=str(pending.store_id))
        store.PendingEnrollment.update(failures=store.PendingEnrollment.failures + 1).where(
            store.PendingEnrollment.terminal_id == terminal_id).execute()
        if int(store.PendingEnrollment.get_by_id(terminal_id).failures) < MAX_BAD_PROOFS:
            return _Outcome(terminal_id, "bad_proof")
        # The code is void from now on, and its wrapped key goes: the admin adds the terminal again.
        store.Terminal.update(enroll_code_hash=None).where(store.Terminal.terminal_id == terminal_id).execute()
        store.PendingEnrollment.delete().where(store.PendingEnrollment.terminal_id == terminal_id).execute()
        return _Outcome(terminal_id, "bad_proof", locked_now=True)


def _consume(ledger: Ledger, proof: EnrollProof, terminal_id: str, now: int, source: str) -> bool:
    """Use the code up for this proof: record the identity key, register the member key, audit. False when the
    code is no longer usable."""
    with store.atomic_write():
        # One conditional UPDATE both checks and consumes the code: two terminals racing with one code cannot
        # both win, and a used, expired or disabled terminal's code does nothing.
        won = store.Terminal.update(
            status="active", identity_key=proof.identity_key.hex(), hpke_suite=proof.suite, enrolled_ms=now,
            last_seen_ms=now, enroll_code_hash=None,
        ).where((store.Terminal.terminal_id == terminal_id)
                & (store.Terminal.enroll_code_hash == proof.code_id.hex())
                & (store.Terminal.status == "pending") & (store.Terminal.code_expires_ms > now)).execute() == 1
        if not won:
            return False
        store.PendingEnrollment.delete().where(store.PendingEnrollment.terminal_id == terminal_id).execute()
        store.TerminalSealKey.create(terminal_id=terminal_id, suite=proof.suite, public_key=proof.terminal_hpke_key,
                                     registered_ms=now)
        store.AuditLog.create(at_ms=now, actor=f"terminal:{terminal_id}", action="terminal_enroll",
                              subject=terminal_id, details={"suite": proof.suite, "source": source})
    return True


def _audit(ledger: Ledger, source: str, action: str, subject: str, **details: Any) -> None:
    """One audit line about an attempt from ``source``: never the code, its id or the proof."""
    store.AuditLog.create(at_ms=ledger.now_ms(), actor=f"source:{source}", action=action, subject=subject,
                          details=details)


def _failed(ledger: Ledger, source: str, outcome: _Outcome, now: int, attempts: AttemptGuard) -> None:
    """Count, audit and (past the thresholds) alert one failed attempt."""
    verdict = attempts.failed(source, now)
    with store.atomic_write():
        if verdict.audit:
            _audit(ledger, source, "terminal_enroll_failed", outcome.terminal_id or "", reason=outcome.reason)
        if verdict.audit_capped:
            _audit(ledger, "*", "terminal_enroll_audit_capped", "", window_ms=attempts.window_ms)
        if outcome.locked_now:
            _audit(ledger, source, "terminal_enroll_locked", outcome.terminal_id or "", bad_proofs=MAX_BAD_PROOFS)
    if outcome.locked_now and outcome.terminal_id is not None:
        _raise(ledger, Finding(
            "enroll_code_locked", Severity.CRITICAL, SubjectType.TERMINAL, outcome.terminal_id, now, (source,),
            f"the enrollment code of terminal {outcome.terminal_id} was locked after {MAX_BAD_PROOFS} wrong "
            f"proofs (last from {source}); add the terminal again for a new code", terminal_id=outcome.terminal_id))
    if verdict.alert:
        _raise(ledger, Finding(
            "enroll_failures", Severity.WARNING, SubjectType.SOURCE, source, now, (source,),
            f"{attempts.alert_after} failed enrollment attempts from {source} within "
            f"{attempts.window_ms // 60_000} minutes", count=attempts.alert_after))


def _raise(ledger: Ledger, finding: Finding) -> None:
    """Record a finding as an alert through the installed alert service (``ledger serve`` installs it); without
    one (a bare library use) the finding is only logged."""
    from ledger import alert_store, alerts  # alerts imports the admin module, which must not import this one

    service = alerts.service()
    log.warning("enrollment alert", extra={"fields": {"rule": finding.rule, "subject": finding.subject_id}})
    if service is None:
        return
    with store.atomic_write():
        recorded = alert_store.record_findings([finding], ledger.now_ms(),
                                               service.engine.thresholds.alert_dedup_s * 1000,
                                               service.config.channels())
    if any(r.created for r in recorded) and service.worker is not None:
        service.worker.wake()


# -- member snapshots for a terminal ----------------------------------------------------------------------------
def cleartext_members_allowed() -> bool:
    return os.environ.get(CLEARTEXT_MEMBERS_ENV) == "1"


def members_document(ledger: Ledger, caller: Caller, since: int, current: int) -> tuple[bytes | None, list[str]]:
    """The pull's ``members`` document for ``caller`` (None when ``since`` is the ``current`` members version) and
    the ids of the members whose personal data it carries (for the audit log): sealed to the HPKE key the terminal
    registered at enrollment. A terminal enrolled before that has none: its pulls are refused with
    ``reenroll_required``, unless the ledger runs with ``--allow-cleartext-members``."""
    key = store.TerminalSealKey.get_or_none(store.TerminalSealKey.terminal_id == caller.terminal_id)
    if key is None and not cleartext_members_allowed():
        raise RequestRefused(403, "reenroll_required",
                             f"terminal {caller.terminal_id} was enrolled before member data was sealed to "
                             "terminals; enroll it again ('cardpos ledger terminal add', then 'cardpos terminal "
                             "enroll')")
    if current == since:
        return None, []
    snapshot = publish.members_delta(caller.store_id, since, ledger.now_s())
    seal_to = None if key is None else (caller.terminal_id, str(key.suite), bytes(key.public_key))
    shown = [str(m["member_id"]) for m in snapshot.members if not m.get("deleted")]
    return publish.members_document(ledger, snapshot, seal_to), shown


@dataclasses.dataclass(frozen=True)
class Caller:
    terminal_id: str
    store_id: str
    time_ms: int


def authenticate(ledger: Ledger, method: str, path_query: str, terminal_id: str | None, time_text: str | None,
                 signature_hex: str | None) -> Caller:
    """Check the terminal signature headers of a request; raise ``RequestRefused``."""
    if not terminal_id or not time_text or not signature_hex:
        raise RequestRefused(401, "unauthenticated",
                             f"the request lacks the {', '.join(wire.SIGNED_REQUEST_HEADERS)} header")
    try:
        time_ms = int(time_text)
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        raise RequestRefused(401, "unauthenticated",
                             f"{wire.TIME_HEADER} or {wire.SIGNATURE_HEADER} is not well formed") \
            from None
    row = store.Terminal.get_or_none(store.Terminal.terminal_id == terminal_id)
    if row is None or not row.identity_key or row.status == "internal":
        raise RequestRefused(403, "unknown_terminal", f"terminal {terminal_id} is not enrolled with this ledger")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(str(row.identity_key))).verify(
            signature, wire.request_signature_text(method, path_query, time_text))
    except (InvalidSignature, ValueError):
        raise RequestRefused(403, "bad_signature", f"the request is not signed by terminal {terminal_id}'s key") \
            from None
    if row.status != "active":
        raise RequestRefused(403, "disabled_terminal", f"terminal {terminal_id} is {row.status}")
    if abs(ledger.now_ms() - time_ms) > MAX_CLOCK_DIFF_MS:
        raise RequestRefused(403, "stale_request",
                             "the request time is more than 5 minutes away from the ledger's clock")
    return Caller(terminal_id=terminal_id, store_id=str(row.store_id), time_ms=time_ms)
