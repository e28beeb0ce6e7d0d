"""The ledger API's edge: what every request must pass before the application sees a byte of its body.

``EdgeGuard`` wraps the ASGI application (outermost, around FastAPI's own error handling):

- **Request heads bounded**: request line and headers together at most ``MAX_HEAD_BYTES`` (431). h11 refuses an
  incomplete head past that size; a complete one that arrived in a single read is caught here.
- **Per-endpoint body limits, enforced while reading.** A ``Content-Length`` over the endpoint's limit is answered
  413 before any of the body is read; a body without one (chunked) is counted as it streams and cut off with 413
  the moment it passes the limit. Nothing larger than the limit is ever buffered, so a 200 MB body costs the server
  at most one limit's worth of memory (docs/security.md has the measured figure).
- **Content-Type checked** (415) on endpoints that take a body; endpoints without one take no body at all.
- **JSON bounded before parsing**: an endpoint's JSON is pre-scanned for size, depth and items
  (``cardkit.json_bounds``) before FastAPI's ``json.loads`` runs.
- **Slow bodies cut off**: each read of the body must bring bytes within ``BODY_IDLE_TIMEOUT_S`` and the whole
  body must arrive within ``BODY_TIMEOUT_S``, else 408 and the connection is closed. (Slow *headers* are the
  HTTP protocol's business: ``ledger.server`` gives the request head ``HEAD_TIMEOUT_S``.)
- **A client that goes away mid-body** is one log line, never a traceback.
- **No traceback, ever**: the application's own handlers answer ``{"error", "message"}`` and log the failure;
  an exception that still escapes (Starlette re-raises after answering 500) stops here, and anything before a
  response gets a JSON 500.
- **Every unauthenticated refusal is counted here, in one place** (``ledger.noise``: per source address, bounded,
  summarized once per window, at most one alert per source and window): the edge's own refusals, and every 4xx
  answer of the application to a request no enrolled terminal signed. The application tells the edge what it
  knows through the request's ``RequestNote`` (``note(scope)``): that a terminal's signature checked out (its
  refusals are the application's to record), that a refusal was already counted elsewhere (the enrollment
  guard's), or the reason and claimed terminal id of an unsigned refusal. ``EdgeH11Protocol`` (``ledger.server``)
  counts the refusals it makes before there is a request (not HTTP, a request head too slow) through
  ``count_connection_refusal``.

Every refusal from here is JSON ``{"error": code, "message": one sentence}`` like the API's own, with
``connection: close`` when the body was not read to its end.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from cardkit import authorization, json_bounds, wire
from cardkit.envelope import MAX_ENVELOPE_BYTES
from ledger import noise

log = logging.getLogger("cardpos.ledger.edge")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_HEAD_BYTES = 16 * 1024
"""Request line plus headers."""
BODY_IDLE_TIMEOUT_S = 10.0
"""Longest wait for the next piece of a request body."""
BODY_TIMEOUT_S = 60.0
"""Longest time for a whole request body (4 MiB at 560 kbit/s; a terminal's default batch is 256 KiB)."""
MAX_ENROLL_BYTES = 8 * 1024
"""An enrollment request is a few hundred bytes of JSON (about 3 KB with a hybrid post-quantum key)."""
ENROLL_JSON_LIMITS = json_bounds.JsonLimits(max_bytes=MAX_ENROLL_BYTES, max_depth=2, max_items=64)


@dataclass(frozen=True, slots=True)
class BodyRule:
    """What one endpoint accepts as a request body."""

    max_bytes: int
    content_types: frozenset[str] = frozenset()
    json_limits: json_bounds.JsonLimits | None = None


NO_BODY = BodyRule(max_bytes=0)
"""Every endpoint not listed (GET /v1/health, GET /v1/pull, unknown paths): no body at all."""

BODY_RULES: Mapping[tuple[str, str], BodyRule] = {
    ("POST", wire.BATCHES_PATH): BodyRule(MAX_ENVELOPE_BYTES, frozenset({wire.BATCH_CONTENT_TYPE})),
    ("POST", wire.ENROLL_PATH): BodyRule(MAX_ENROLL_BYTES, frozenset({"application/json"}), ENROLL_JSON_LIMITS),
    ("POST", wire.AUTHORIZE_PATH): BodyRule(authorization.MAX_AUTHORIZE_BYTES, frozenset({wire.AUTHORIZE_CONTENT_TYPE}),
                                            authorization.AUTHORIZE_JSON_LIMITS),
}


NOTE_KEY = "cardpos.edge.note"
"""Where the edge keeps a request's ``RequestNote`` in its ASGI scope."""
_WHAT = {wire.BATCHES_PATH: "batch", wire.PULL_PATH: "pull", wire.ENROLL_PATH: "enroll"}
_STATUS_REASONS = {400: "malformed", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
                   405: "method_not_allowed", 408: "timeout", 409: "conflict", 413: "too_large",
                   415: "unsupported_media_type", 429: "too_many_requests", 431: "header_too_large"}


@dataclass(slots=True)
class RequestNote:
    """What the application tells the edge about one request's refusal (see the module docs)."""

    authenticated: bool = False
    """An enrolled terminal's signature (or a valid enrollment proof) checked out: not the edge's to count."""
    accounted: bool = False
    """Refused and counted elsewhere already (failed enrollment attempts: ``ledger.enroll_guard``)."""
    reason: str | None = None
    """The refusal's error code, when the application refused an unauthenticated request."""
    claimed: str | None = None
    """The terminal id the request claimed (counted only in its cut, sanitized form)."""


def note(scope: Scope) -> RequestNote:
    """The request's note (made on first use, so the application also runs without the edge around it)."""
    found = scope.get(NOTE_KEY)
    if not isinstance(found, RequestNote):
        found = scope[NOTE_KEY] = RequestNote()
    return found


def _what(path: str) -> str:
    return _WHAT.get(path, "request")


def _system_now_ms() -> int:
    return time.time_ns() // 1_000_000


def _report_quietly(event: Any, now_ms: int) -> None:
    try:
        noise.report(event, now_ms)
    except Exception:  # a worker thread's: the refusal is answered whatever happens here
        log.exception("could not report refused requests")


def count_connection_refusal(loop: asyncio.AbstractEventLoop, host: str | None, reason: str,
                             now_ms: Callable[[], int] = _system_now_ms) -> None:
    """Count a refusal made before there was a request (``ledger.server``): in memory on the event loop, the
    alert and summaries (database writes) in a worker thread."""
    now = now_ms()
    event = noise.count(host or "unknown", "connection", reason, None, 0, now)
    if event is not None or noise.due(now):
        loop.run_in_executor(None, _report_quietly, event, now)


class _Refusal(Exception):
    """Answer the request with this JSON error and close the connection."""

    def __init__(self, status: int, code: str, message: str, received: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.received = received


class _Gone(Exception):
    """The client disconnected before its body arrived: there is no one left to answer."""


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _media_type(value: bytes | None) -> str:
    return (value or b"").split(b";", 1)[0].strip().lower().decode("latin-1")


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "?"


async def send_json_error(send: Send, status: int, code: str, message: str, *, close: bool) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class EdgeGuard:
    """ASGI middleware: body limits, content types, bounded JSON, body timeouts, no tracebacks (module docs)."""

    def __init__(self, app: ASGIApp, *, rules: Mapping[tuple[str, str], BodyRule] = BODY_RULES,
                 body_idle_timeout_s: float = BODY_IDLE_TIMEOUT_S, body_timeout_s: float = BODY_TIMEOUT_S,
                 now_ms: Callable[[], int] = _system_now_ms) -> None:
        self.app = app
        self.rules = rules
        self.body_idle_timeout_s = body_idle_timeout_s
        self.body_timeout_s = body_timeout_s
        self.now_ms = now_ms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: straight through
            await self.app(scope, receive, send)
            return
        started = False
        request_note = note(scope)
        size = 0

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if not started and message["type"] == "http.response.start" and 400 <= message["status"] < 500:
                await self._count_refusal(scope, request_note, int(message["status"]), size)
            started = True
            await send(message)

        try:
            try:
                body = await self._read_body(scope, receive)
            except _Refusal as refusal:
                size = refusal.received
                request_note.reason = refusal.code
                await send_json_error(tracked_send, refusal.status, refusal.code, refusal.message, close=True)
                return
            except _Gone:
                return
            size = len(body)
            await self.app(scope, _replay(body, receive), tracked_send)
        except Exception:  # already answered and logged by the API's handler, or a bug of ours: one line each
            if not started:
                log.exception("ledger request failed before an answer",
                              extra={"fields": {"path": scope.get("path"), "client": _client(scope)}})
                await send_json_error(tracked_send, 500, "internal",
                                      "the ledger failed to handle the request; see its log", close=True)

    async def _count_refusal(self, scope: Scope, request_note: RequestNote, status: int, size: int) -> None:
        """Count a 4xx answer unless a terminal's signature checked out or it was counted already; the alert and
        the summaries (database writes, rare) go to a worker thread before the answer goes out."""
        if request_note.authenticated or request_note.accounted:
            return
        now = self.now_ms()
        client = scope.get("client")
        reason = request_note.reason or _STATUS_REASONS.get(status, f"http_{status}")
        event = noise.count(client[0] if client else "unknown", _what(scope.get("path", "")), reason,
                            request_note.claimed, size, now)
        if event is not None or noise.due(now):
            await asyncio.get_running_loop().run_in_executor(None, _report_quietly, event, now)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        """The whole body within the endpoint's rule, or ``_Refusal`` / ``_Gone``; never more than the limit."""
        method, path = scope["method"], scope["path"]
        head = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + sum(
            len(key) + len(value) + 4 for key, value in scope.get("headers", ()))
        if head > MAX_HEAD_BYTES:
            raise _Refusal(431, "header_too_large", f"the request line and headers exceed {MAX_HEAD_BYTES} bytes")
        rule = self.rules.get((method, path), NO_BODY)
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit() or len(declared) > 18:
                raise _Refusal(400, "malformed", "the Content-Length header is not a number")
            if int(declared) > rule.max_bytes:
                raise _Refusal(413, "too_large", _too_large(method, path, rule))
        if rule.max_bytes and _media_type(_header(scope, b"content-type")) not in rule.content_types:
            raise _Refusal(415, "unsupported_media_type",
                           f"{method} {path} takes {' or '.join(sorted(rule.content_types))}")
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.body_timeout_s
        while True:
            wait_s = min(self.body_idle_timeout_s, deadline - time.monotonic())
            try:
                message = await asyncio.wait_for(receive(), timeout=max(wait_s, 0.0))
            except TimeoutError:
                log.info("request body too slow; connection closed", extra={"fields": {
                    "path": path, "client": _client(scope), "received_bytes": size}})
                raise _Refusal(408, "timeout", f"the request body did not arrive in time ({size} bytes in "
                                               f"{self.body_timeout_s:g} s at most, {self.body_idle_timeout_s:g} s "
                                               "between pieces)", size) from None
            if message["type"] == "http.disconnect":
                log.info("client disconnected before its request body arrived", extra={"fields": {
                    "path": path, "client": _client(scope), "received_bytes": size}})
                raise _Gone()
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > rule.max_bytes:
                    raise _Refusal(413, "too_large", _too_large(method, path, rule), size)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if rule.json_limits is not None:
            try:
                json_bounds.scan(body, rule.json_limits)
            except json_bounds.JsonRefused as exc:
                raise _Refusal(400, "malformed", f"the request is not well formed: {exc.reason}", size) from exc
        return body


def _too_large(method: str, path: str, rule: BodyRule) -> str:
    if not rule.max_bytes:
        return f"{method} {path} takes no request body"
    return f"{method} {path} takes at most {rule.max_bytes} bytes"


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the application the body already read, then waits for the disconnect."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
