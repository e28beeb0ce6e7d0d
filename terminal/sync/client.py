"""The terminal's HTTP client for the ledger API (docs/internals.md, docs/sync-protocol.md).

One ``requests.Session`` (keep-alive), a timeout on every call, every failure wrapped in ``SyncError`` with one
clear sentence. A refusal by the ledger carries its JSON ``error`` code in ``LedgerRefused.code``; a busy ledger
(503/429) raises ``LedgerBusy`` with its ``Retry-After`` in seconds, which the sync service honours.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit import wire
from cardkit.card_issue import new_card_query
from cardkit.errors import SyncError


class LedgerUnreachable(SyncError):
    """No answer: connection refused, reset, timed out, or the answer was cut short."""

    title = "Ledger unreachable"


class LedgerRefused(SyncError):
    """The ledger answered with an error. ``code`` is its JSON ``error`` field, ``status`` the HTTP status."""

    def __init__(self, message: str, *, code: str, status: int, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.body = body or {}


class LedgerBusy(LedgerRefused):
    """5xx or 429: try again later, not sooner than ``retry_after_s`` when the ledger said so."""

    def __init__(self, message: str, *, code: str, status: int, retry_after_s: float | None,
                 body: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=code, status=status, body=body)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class PushResult:
    """A batch answer as received: not believed until ``cardkit.answers.verify_ack`` checked ``answer``."""

    acked_seq: int
    applied: int
    duplicates: int
    answer: dict[str, Any] = field(default_factory=dict, repr=False)
    quarantined: tuple[int, ...] = ()
    """Seqs of the batch the ledger journaled without applying them (its semantic checks refused them)."""


@dataclass(frozen=True)
class TerminalSigner:
    """Who a pull comes from: the terminal id and its Ed25519 identity key (signs the request line)."""

    terminal_id: str
    key: Ed25519PrivateKey

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data)


def pull_message(path_and_query: str, time_ms: int, method: str = "GET") -> bytes:
    """The bytes a terminal signs for a pull (``cardkit.wire.request_signature_text``)."""
    return wire.request_signature_text(method, path_and_query, time_ms)


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now_s is None else now_s))


def _seqs(value: object) -> tuple[int, ...]:
    """The answer's ``quarantined`` list (absent: none); anything but a list of whole numbers is a bad answer."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(type(v) is int for v in value):
        raise ValueError("quarantined is not a list of seqs")
    return tuple(value)


class LedgerClient:
    def __init__(self, base_url: str, *, timeout_s: float, session: requests.Session | None = None,
                 clock_ms: Callable[[], int] | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise SyncError(f"ledger URL {base_url!r} must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = session or requests.Session()
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)

    def close(self) -> None:
        self.session.close()

    # -- plumbing ----------------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, what: str, **kwargs: Any) -> dict[str, Any]:
        url = self.base_url + path
        try:
            response = self.session.request(method, url, timeout=self.timeout_s, **kwargs)
            content = response.content  # read the whole body inside the try: a cut-short body raises here
        except requests.ConnectionError as exc:
            raise LedgerUnreachable(f"ledger unreachable at {self.base_url} while {what}", orig=exc) from exc
        except requests.Timeout as exc:
            raise LedgerUnreachable(
                f"ledger at {self.base_url} did not answer within {self.timeout_s:g} s while {what}", orig=exc
            ) from exc
        except requests.RequestException as exc:
            raise LedgerUnreachable(f"the connection to the ledger at {self.base_url} failed while {what}",
                                    orig=exc) from exc
        body: Any = None
        try:
            body = response.json() if content else None
        except ValueError:
            body = None
        if response.status_code < 400:
            if not isinstance(body, dict):
                # A 200 with a cut or garbled body: the call may or may not have happened; treat as no answer.
                raise LedgerUnreachable(f"the ledger at {self.base_url} sent an unreadable answer while {what}")
            return body
        fields = body if isinstance(body, dict) else {}
        code = str(fields.get("error") or f"http_{response.status_code}")
        message = str(fields.get("message") or response.reason)
        text = f"the ledger refused {what}: {message} ({code})"
        if response.status_code >= 500 or response.status_code == 429:
            raise LedgerBusy(text, code=code, status=response.status_code,
                             retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
                             body=fields)
        raise LedgerRefused(text, code=code, status=response.status_code, body=fields)

    # -- API ---------------------------------------------------------------------------------------------------
    def health(self) -> bool:
        return bool(self._request("GET", wire.HEALTH_PATH, what="checking its health").get("ok"))

    def enroll(self, proof: dict[str, str]) -> dict[str, Any]:
        """``POST /v1/enroll`` with a proof of the code (``cardkit.enrollment.EnrollProof.to_json``)."""
        return self._request("POST", wire.ENROLL_PATH, what="enrolling this terminal", json=proof)

    def push(self, envelope: bytes, nonce: bytes = b"") -> PushResult:
        """``POST /v1/batches`` with ``nonce`` in ``X-Cardpos-Nonce``; the caller verifies the signed answer."""
        headers = {"Content-Type": wire.BATCH_CONTENT_TYPE}
        if nonce:
            headers[wire.NONCE_HEADER] = nonce.hex()
        body = self._request("POST", wire.BATCHES_PATH, what="receiving a batch", data=envelope, headers=headers)
        try:
            return PushResult(acked_seq=int(body["acked_seq"]), applied=int(body.get("applied", 0)),
                              duplicates=int(body.get("duplicates", 0)), answer=body,
                              quarantined=_seqs(body.get("quarantined")))
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerUnreachable(f"the ledger at {self.base_url} sent a batch answer without acked_seq",
                                    orig=exc) from exc

    def pull(self, versions: dict[str, int], signer: TerminalSigner, nonce: bytes = b"",
             about: dict[str, str | int] | None = None) -> dict[str, Any]:
        """``GET /v1/pull`` signed with the terminal key, ``nonce`` in the signed query; returns the JSON (b64
        documents or null, the ledger's versions and signature), which the caller verifies."""
        params: list[tuple[str, str | int]] = [*versions.items(), *(about or {}).items()]
        if nonce:
            params.append((wire.NONCE_PARAM, nonce.hex()))
        return self._signed("GET", wire.PULL_PATH + "?" + urlencode(sorted(params)), signer, what="sending updates")

    def signed_get(self, path: str, params: dict[str, str], signer: TerminalSigner, *, what: str) -> dict[str, Any]:
        """``GET path?params`` signed with the terminal key like a pull (the look-ups of ``terminal.sync.lookup``);
        the caller verifies the signed answer."""
        return self._signed("GET", path + "?" + urlencode(sorted(params.items())), signer, what=what)

    def new_card(self, card_id: str, request: str, signer: TerminalSigner, nonce: bytes) -> dict[str, Any]:
        """``POST /v1/cards/new`` signed with the terminal key: the new card of the tier upgrade journaled as entry
        ``request`` (``cardkit.card_issue``); the caller verifies the signed answer."""
        return self._signed("POST", new_card_query(card_id, request, nonce), signer, what="issuing a new card")

    def _signed(self, method: str, path_query: str, signer: TerminalSigner, *, what: str) -> dict[str, Any]:
        now = int(self._clock_ms())
        signature = signer.sign(pull_message(path_query, now, method))
        return self._request(method, path_query, what=what,
                             headers=wire.signed_request_headers(signer.terminal_id, now, signature))
