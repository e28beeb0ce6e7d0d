"""The terminal's online authorization client: ask the ledger, within a short timeout, before approving.

``OnlineAuthorizer.authorize`` sends one signed ``POST /v1/authorize`` (``cardkit.authorization``) and returns the
ledger's verified decision, or raises ``AuthorizationUnavailable`` when there is no believable answer in time: no
connection, a reset, a timeout (``sync.authorize_timeout_s``, default 0.8 s), a busy ledger, an answer that is not
the ledger's signature over this request. The counter then decides offline under the offline limits, exactly as
without a ledger; the entry keeps the same uuid, so a hold the ledger did record settles when the entry syncs.
A request cut by a reset is sent again once while time is left (the same uuid and body: the ledger answers it
from its record, never holding twice).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit import answers, authorization, wire
from cardkit.authorization import AuthorizationAnswer, AuthorizationRequest
from cardkit.config import Settings
from cardkit.errors import CardposError, SyncError
from terminal import documents

log = logging.getLogger("cardpos.sync.authorize")

MAX_ATTEMPTS = 2


class AuthorizationUnavailable(SyncError):
    """No believable answer from the ledger in time: decide offline."""

    title = "Ledger did not authorize in time"


class OnlineAuthorizer:
    """Asks one ledger; thread-safe for one caller at a time (the counter's operation lock)."""

    def __init__(self, ledger_url: str, *, terminal_id: str, key: Ed25519PrivateKey, root_public_key: bytes,
                 timeout_s: float, session: requests.Session | None = None,
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.base_url = ledger_url.rstrip("/")
        self.terminal_id = terminal_id
        self.key = key
        self.root_public_key = root_public_key
        self.timeout_s = timeout_s
        self.session = session or requests.Session()
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)

    def close(self) -> None:
        self.session.close()

    def request(self, *, entry_uuid: str, member_id: str, card_id: str, currency: str, sv: int, points: int,
                coupons: tuple[str, ...]) -> AuthorizationRequest:
        return AuthorizationRequest(entry_uuid=entry_uuid, member_id=member_id, card_id=card_id, currency=currency,
                                    sv=sv, points=points, coupons=coupons, nonce=answers.new_nonce())

    def authorize(self, request: AuthorizationRequest) -> AuthorizationAnswer:
        """The ledger's verified decision on ``request``; ``AuthorizationUnavailable`` when there is none in time."""
        body = request.body()
        digest = authorization.request_digest(body)
        path = authorization.signed_path(body)
        deadline = time.monotonic() + self.timeout_s
        last: Exception | None = None
        for _ in range(MAX_ATTEMPTS):
            left = deadline - time.monotonic()
            if left <= 0.01:
                break
            now = int(self._clock_ms())
            headers = {**wire.signed_request_headers(self.terminal_id, now,
                                                     self.key.sign(wire.request_signature_text("POST", path, now))),
                       "Content-Type": wire.AUTHORIZE_CONTENT_TYPE}
            try:
                response = self.session.post(self.base_url + path, data=body, headers=headers, timeout=left)
                content = response.content
            except requests.Timeout as exc:
                raise AuthorizationUnavailable(
                    f"the ledger did not authorize within {self.timeout_s:g} s; decided offline", orig=exc) from exc
            except requests.RequestException as exc:
                last = exc  # a reset or a refused connection: once more while time is left
                continue
            if response.status_code != 200:
                raise AuthorizationUnavailable(
                    f"the ledger could not authorize (HTTP {response.status_code}); decided offline")
            try:
                data = json.loads(content)
                return authorization.verify_answer(data, self.root_public_key, terminal_id=self.terminal_id,
                                                   request=request, digest=digest)
            except (ValueError, CardposError) as exc:
                raise AuthorizationUnavailable(f"the ledger's authorization answer was not believed ({exc}); "
                                               "decided offline", orig=exc) from exc
        raise AuthorizationUnavailable(f"the ledger at {self.base_url} could not be reached to authorize; decided "
                                       "offline", orig=last)


def authorizer_for(settings: Settings, data_dir: Path) -> OnlineAuthorizer | None:
    """The authorizer of an enrolled terminal (None when it has no ledger URL or online authorization is off)."""
    if settings.sync.authorize_timeout_s <= 0:
        return None
    enrollment = documents.require_enrollment(data_dir)
    url = settings.sync.ledger_url or enrollment.ledger_url
    if not url:
        return None
    from terminal.sync.service import load_identity_key

    try:
        key = load_identity_key(data_dir)
    except SyncError as exc:  # cannot sign: every operation is decided offline (sync says what to do about it)
        log.warning("online authorization off: %s", exc)
        return None
    return OnlineAuthorizer(url, terminal_id=enrollment.terminal_id, key=key,
                            root_public_key=bytes.fromhex(enrollment.root_public_key),
                            timeout_s=settings.sync.authorize_timeout_s)
