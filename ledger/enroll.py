"""Terminal enrollment and request authentication at the ledger.

Enrollment trades a one-time code (made by ``cardpos ledger terminal add``; only its hash is stored; it expires
and works once) for the ledger's public keys and first documents, and records the terminal's own Ed25519
identity key. Pulls are signed by that key: ``Ed25519(GET\\n{path?query}\\n{time_ms})``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cardkit import wire
from ledger import admin, publish, store
from ledger.errors import LedgerError
from ledger.home import Ledger
from ledger.keys import SUITES

MAX_CLOCK_DIFF_MS = 5 * 60 * 1000


class RequestRefused(LedgerError):
    """An API request refused with an error code and an HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def enroll_terminal(ledger: Ledger, code: str, identity_key_hex: str, suite: str) -> dict[str, Any]:
    if suite not in SUITES:
        raise RequestRefused(400, "malformed", f"unknown HPKE suite {suite!r} (one of: {', '.join(SUITES)})")
    try:
        raw = bytes.fromhex(identity_key_hex)
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise RequestRefused(400, "malformed", "identity_key must be 64 hex characters of an Ed25519 public key") \
            from None
    now = ledger.now_ms()
    digest = admin.code_hash(code)
    with store.atomic_write():
        pending = store.Terminal.get_or_none(store.Terminal.enroll_code_hash == digest)
        # One conditional UPDATE both checks and consumes the code: two terminals racing with one code cannot
        # both win, and a used, expired or disabled terminal's code does nothing.
        won = pending is not None and (
            store.Terminal.update(status="active", identity_key=raw.hex(), hpke_suite=suite, enrolled_ms=now,
                                  last_seen_ms=now, enroll_code_hash=None)
            .where((store.Terminal.terminal_id == pending.terminal_id) & (store.Terminal.enroll_code_hash == digest)
                   & (store.Terminal.status == "pending") & (store.Terminal.code_expires_ms > now))
            .execute()) == 1
        if not won or pending is None:
            raise RequestRefused(403, "bad_code", "the enrollment code is unknown, used or expired")
        terminal = store.Terminal.get_by_id(pending.terminal_id)
        store.AuditLog.create(at_ms=now, actor=f"terminal:{terminal.terminal_id}", action="terminal_enroll",
                              subject=terminal.terminal_id, details={"suite": suite})
    return {
        "terminal_id": terminal.terminal_id,
        "store_id": terminal.store_id,
        "issuer": ledger.issuer,
        "ledger_hpke_public_key": ledger.keys.hpke().public[suite].hex(),
        "hpke_suite": suite,
        "root_public_key": ledger.keys.root_public().hex(),
        "trust_list": b64(publish.signed_trust_list(ledger)),
        "rules": b64(publish.signed_rules(ledger)),
        "revocations": b64(publish.signed_revocation_delta(ledger, 0)),
    }


@dataclass(frozen=True)
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
