"""The terminal's online authorization client: ask the ledger, within a short timeout, before approving.

``OnlineAuthorizer.authorize`` sends one signed ``POST /v1/authorize`` (``cardkit.authorization``) and returns the
ledger's verified decision, or raises ``AuthorizationUnavailable`` when there is no believable answer in time: no
connection, a reset, a timeout (``sync.authorize_timeout_s``, default 0.8 s), a busy ledger, an answer that is not
the ledger's signature over this request. The counter then decides offline under the offline limits, exactly as
without a ledger; the entry keeps the same uuid, so a hold the ledger did record settles when the entry syncs.
A request cut by a reset is sent again once while time is left (the same uuid and body: the ledger answers it
from its record, never holding twice).

The request goes over one kept-alive connection (``LedgerChannel``, plain ``http.client``) rather than
``requests``, which spent about 2 ms of the terminal's CPU per authorization on its adapters and hooks (p50 5.6 →
3.7 ms per authorization in a same-run comparison, docs/benchmarks.md, #14). A connection the ledger closed while
idle (its keep-alive timeout) fails the first attempt at once; the second opens a new one.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import requests.utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit import answers, authorization, wire
from cardkit.authorization import AuthorizationAnswer, AuthorizationRequest
from cardkit.config import Settings
from cardkit.errors import CardposError, SyncError
from terminal import documents

log = logging.getLogger("cardpos.sync.authorize")

MAX_ATTEMPTS = 2
MAX_ANSWER_BYTES = 16 * 1024
"""An answer is a few hundred bytes of JSON; more is not read (a hostile or broken answer)."""


class AuthorizationUnavailable(SyncError):
    """No believable answer from the ledger in time: decide offline."""

    title = "Ledger did not authorize in time"


class LedgerChannel:
    """One kept-alive HTTP/1.1 connection to the ledger, opened when first needed and again after any failure.
    For one caller at a time."""

    def __init__(self, ledger_url: str) -> None:
        parts = urlsplit(ledger_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SyncError(f"ledger URL {ledger_url!r} must start with http:// or https://")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._connection: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> tuple[int, bytes]:
        """Status and whole body of the answer. Raises ``TimeoutError`` when ``timeout_s`` passes on a connect,
        write or read, ``OSError`` or ``http.client.HTTPException`` when the connection fails or is cut."""
        connection = self._connection
        if connection is None:
            connection = self._connection = self._connect(timeout_s)
        connection.timeout = timeout_s
        try:
            if connection.sock is None:
                connection.connect()
            connection.sock.settimeout(timeout_s)
            connection.request("POST", self._prefix + path, body=body, headers=dict(headers))
            response = connection.getresponse()
            content = response.read(MAX_ANSWER_BYTES + 1)
        except BaseException:
            self.close()  # half a request or answer may be on it: never reuse it
            raise
        if response.will_close or not response.isclosed():  # closed, or more left than we read
            self.close()
        return response.status, content

    def _connect(self, timeout_s: float) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout_s,
                                               context=ssl.create_default_context(cafile=_ca_bundle()))
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout_s)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class OnlineAuthorizer:
    """Asks one ledger; thread-safe for one caller at a time (the counter's operation lock)."""

    def __init__(self, ledger_url: str, *, terminal_id: str, key: Ed25519PrivateKey, root_public_key: bytes,
                 timeout_s: float, clock_ms: Callable[[], int] | None = None) -> None:
        self.base_url = ledger_url.rstrip("/")
        self.terminal_id = terminal_id
        self.key = key
        self.root_public_key = root_public_key
        self.timeout_s = timeout_s
        self.channel = LedgerChannel(self.base_url)
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)

    def close(self) -> None:
        self.channel.close()

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
                status, content = self.channel.post(path, body, headers, left)
            except TimeoutError as exc:
                raise AuthorizationUnavailable(
                    f"the ledger did not authorize within {self.timeout_s:g} s; decided offline", orig=exc) from exc
            except (OSError, http.client.HTTPException) as exc:
                last = exc  # a reset, a refused or idle-closed connection: once more while time is left
                continue
            if len(content) > MAX_ANSWER_BYTES:
                raise AuthorizationUnavailable(f"the ledger's authorization answer is larger than "
                                               f"{MAX_ANSWER_BYTES} bytes; decided offline")
            if status != 200:
                raise AuthorizationUnavailable(
                    f"the ledger could not authorize (HTTP {status}); decided offline")
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
        return OnlineAuthorizer(url, terminal_id=enrollment.terminal_id, key=key,
                                root_public_key=bytes.fromhex(enrollment.root_public_key),
                                timeout_s=settings.sync.authorize_timeout_s)
    except SyncError as exc:  # cannot sign or no usable URL: every operation is decided offline (sync says why)
        log.warning("online authorization off: %s", exc)
        return None


def _ca_bundle() -> str:
    """The CA bundle the rest of the sync client (requests) trusts, so both paths accept the same ledger certificate."""
    return (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            or requests.utils.DEFAULT_CA_BUNDLE_PATH)
