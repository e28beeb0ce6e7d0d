"""The SMS gateway simulator: an HTTP gateway on 127.0.0.1 that the ledger sends SMS through.

It accepts messages, lists what it received, posts signed delivery receipts and inbound replies to a callback
URL, and misbehaves on request (500, 429 with ``Retry-After``, slow answers). The API (docs/sms-gateway.md)::

    POST /messages         {to, text, sender?, reference?}  -> 202 {id, status}   (same reference: 200, same id)
    GET  /messages                                           -> 200 {messages: [...], inbound: [...]}
    POST /inject/inbound   {from, text}                      -> 202 {id, status}   (a member's reply, forwarded)
    GET  /control                                            -> 200 the fault state
    POST /control          {mode, retry_after_s?, delay_s?, count?, receipt?} -> 200 the fault state

Every request carries the credentials given on the command line (bearer token or basic auth). Callbacks are
JSON, signed ``X-Sms-Signature: t=<unix>,v1=<hex>`` with HMAC-SHA256 over ``"{t}.{body}"``. The signature is
computed here on its own, not with the ledger's verifier: the simulator plays a third party, so a test that
verifies its callbacks checks the documented scheme rather than one function against itself.

``Gateway`` holds the behaviour and knows nothing of sockets; ``GatewayServer`` puts it on HTTP.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from hwsim.errors import SimulatorError

MAX_BODY = 64 * 1024
"""Request bodies over this many bytes are refused (413) before they are read."""
MAX_TEXT = 1600
"""Longest message text in characters (ten concatenated SMS; what large gateways accept)."""
SIGNATURE_HEADER = "X-Sms-Signature"
MODES = ("ok", "fail", "throttle", "slow")
RECEIPT_STATUSES = ("delivered", "failed")
CALLBACK_ATTEMPTS = 5
"""A callback the receiver does not take (error or unreachable) is tried this often, 0.5 s, 1 s, 2 s ... apart."""

_PHONE = re.compile(r"\+?[0-9]{6,15}")  # E.164 allows at most 15 digits
_SENDER = re.compile(r"[A-Za-z0-9 +._-]{1,16}")
_REFERENCE = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII, no spaces


# -- replies ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class Refused(SimulatorError):
    """A request the gateway answers with an error status and a reason code (never a traceback)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}

    def reply(self) -> Reply:
        return Reply(self.status, {"error": self.code, "message": self.message}, self.headers)


# -- settings and fault state -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GatewaySettings:
    token: str = ""
    """Bearer token a client must send (``Authorization: Bearer <token>``); empty: no bearer access."""
    basic: tuple[str, str] | None = None
    """(user, password) a client may send by basic auth instead."""
    callback_url: str = ""
    """Where delivery receipts and inbound replies are POSTed; empty: nowhere (they are only listed)."""
    callback_secrets: tuple[str, ...] = ()
    """HMAC keys; each adds a ``v1=`` to the signature header (two while a secret is being rotated)."""
    receipt_delay_s: float = 0.5
    """Seconds from accepting a message to its delivery receipt."""
    callback_timeout_s: float = 5.0
    keep: int = 10_000
    """Messages (and inbound replies) kept in memory for ``GET /messages``; the --out file keeps them all."""


@dataclass(slots=True)
class FaultState:
    mode: str = "ok"
    """ok, fail (500), throttle (429 + Retry-After) or slow (accept after ``delay_s``)."""
    retry_after_s: int = 1
    delay_s: float = 2.0
    count: int | None = None
    """Sends the mode still applies to before it returns to ok; None: until changed."""
    receipt: str = "delivered"
    """Status of the delivery receipts of messages accepted from now on."""

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "retry_after_s": self.retry_after_s, "delay_s": self.delay_s,
                "count": self.count, "receipt": self.receipt}


# -- the gateway ------------------------------------------------------------------------------------------

class Gateway:
    """What the gateway does with each request; the HTTP layer hands it decoded JSON and writes its Reply."""

    def __init__(self, settings: GatewaySettings, fault: FaultState | None = None, out: IO[str] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.fault = fault or FaultState()
        self._out = out
        self._clock = clock
        self._lock = threading.Lock()
        self._messages: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
        self._by_reference: dict[str, str] = {}
        self._inbound: collections.deque[dict[str, Any]] = collections.deque(maxlen=settings.keep)
        self._sent_ids = itertools.count(1)
        self._inbound_ids = itertools.count(1)
        self.refused = 0
        self.timeline = Timeline()
        self.callbacks = CallbackPoster(settings.callback_url, settings.callback_secrets,
                                        settings.callback_timeout_s, self.timeline, clock)

    def start(self) -> None:
        self.timeline.start()

    # -- authentication --

    def authorized(self, header: str | None) -> bool:
        """Constant-time check of the Authorization header against the bearer token or the basic credentials."""
        if not header:
            return False
        scheme, _, credential = header.strip().partition(" ")
        given = credential.strip().encode("utf-8", "replace")
        if scheme.lower() == "bearer" and self.settings.token:
            return hmac.compare_digest(given, self.settings.token.encode("utf-8"))
        if scheme.lower() == "basic" and self.settings.basic is not None:
            user, password = self.settings.basic
            expected = base64.b64encode(f"{user}:{password}".encode()).strip()
            return hmac.compare_digest(given, expected)
        return False

    def challenge(self) -> str:
        return 'Bearer realm="cardpos-sim-sms"' if self.settings.token else 'Basic realm="cardpos-sim-sms"'

    # -- POST /messages --

    def send(self, payload: Any) -> Reply:
        delay = self._take_fault()
        request = _fields(payload, required=("to", "text"), optional=("sender", "reference"))
        to = _phone(request["to"], "to")
        text = _text(request["text"])
        sender = request.get("sender")
        if sender is not None and (not isinstance(sender, str) or not _SENDER.fullmatch(sender)):
            raise Refused(400, "bad_sender", "sender must be 1 to 16 letters, digits, spaces or + . _ -")
        reference = request.get("reference")
        if reference is not None and (not isinstance(reference, str) or not _REFERENCE.fullmatch(reference)):
            raise Refused(400, "bad_reference", "reference must be 1 to 64 printable ASCII characters, no spaces")
        if delay:
            time.sleep(delay)  # slow mode: the message is accepted, the answer comes late (a client may time out)
        with self._lock:
            if reference is not None and reference in self._by_reference:
                # A client that timed out sends again with the same reference: the same message, not a second SMS.
                existing = self._messages.get(self._by_reference[reference])
                if existing is not None:
                    return Reply(200, {"id": existing["id"], "status": existing["status"], "duplicate": True})
            message_id = f"sms-{next(self._sent_ids):06d}"
            message = {"id": message_id, "to": to, "text": text, "sender": sender, "reference": reference,
                       "status": "queued", "received_at": int(self._clock()), "delivered_at": None,
                       "callback": "pending" if self.callbacks.enabled else "none",
                       "receipt": self.fault.receipt}
            self._messages[message_id] = message
            if reference is not None:
                self._by_reference[reference] = message_id
            while len(self._messages) > self.settings.keep:
                _, dropped = self._messages.popitem(last=False)
                if dropped["reference"] is not None:
                    self._by_reference.pop(dropped["reference"], None)
            self._record({"direction": "out", **{k: message[k] for k in ("id", "to", "text", "sender", "reference",
                                                                          "received_at")}})
        self.timeline.after(self.settings.receipt_delay_s, lambda: self._deliver(message_id))
        return Reply(202, {"id": message_id, "status": "queued"})

    def _take_fault(self) -> float:
        """Apply the fault mode to one send: raise its refusal, or return how long a slow answer waits."""
        with self._lock:
            fault = self.fault
            mode = fault.mode
            if mode != "ok" and fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    fault.mode, fault.count = "ok", None
            if mode in ("fail", "throttle"):
                self.refused += 1
        if mode == "fail":
            raise Refused(500, "gateway_error", "the gateway failed (simulated)")
        if mode == "throttle":
            raise Refused(429, "throttled", "too many requests (simulated)",
                          {"Retry-After": str(fault.retry_after_s)})
        return fault.delay_s if mode == "slow" else 0.0

    def _deliver(self, message_id: str) -> None:
        with self._lock:
            message = self._messages.get(message_id)
            if message is None:
                return
            message["status"] = message["receipt"]
            message["delivered_at"] = int(self._clock())
            receipt = {"type": "receipt", "id": message_id, "reference": message["reference"], "to": message["to"],
                       "status": message["status"], "at": message["delivered_at"],
                       "error": "undeliverable" if message["status"] == "failed" else None}
        if self.callbacks.enabled:
            self.callbacks.post(receipt, done=lambda ok: self._callback_done(message_id, ok))

    def _callback_done(self, message_id: str, ok: bool) -> None:
        with self._lock:
            if message_id in self._messages:
                self._messages[message_id]["callback"] = "sent" if ok else "failed"

    # -- GET /messages --

    def listing(self) -> Reply:
        with self._lock:
            return Reply(200, {"messages": [dict(m) for m in self._messages.values()],
                               "inbound": [dict(m) for m in self._inbound]})

    # -- POST /inject/inbound --

    def inject_inbound(self, payload: Any) -> Reply:
        request = _fields(payload, required=("from", "text"), optional=())
        sender = _phone(request["from"], "from")
        text = _text(request["text"])
        with self._lock:
            inbound_id = f"in-{next(self._inbound_ids):06d}"
            message = {"id": inbound_id, "from": sender, "text": text, "at": int(self._clock()),
                       "callback": "pending" if self.callbacks.enabled else "none"}
            self._inbound.append(message)
            self._record({"direction": "in", "id": inbound_id, "from": sender, "text": text, "at": message["at"]})
        if self.callbacks.enabled:
            def done(ok: bool) -> None:
                with self._lock:
                    message["callback"] = "sent" if ok else "failed"

            self.callbacks.post({"type": "inbound", "id": inbound_id, "from": sender, "text": text,
                                 "at": message["at"]}, done=done)
        return Reply(202, {"id": inbound_id, "status": "queued" if self.callbacks.enabled else "stored"})

    # -- GET/POST /control --

    def control(self, payload: Any | None) -> Reply:
        if payload is not None:
            request = _fields(payload, required=(), optional=("mode", "retry_after_s", "delay_s", "count", "receipt"))
            mode = request.get("mode")
            if mode is not None and mode not in MODES:
                raise Refused(400, "bad_mode", f"mode must be one of {', '.join(MODES)}")
            retry_after = request.get("retry_after_s")
            if retry_after is not None and (type(retry_after) is not int or not 0 <= retry_after <= 86_400):
                raise Refused(400, "bad_retry_after", "retry_after_s must be a whole number of seconds, 0 to 86400")
            delay = request.get("delay_s")
            if delay is not None and (type(delay) not in (int, float) or not 0 <= delay <= 300):
                raise Refused(400, "bad_delay", "delay_s must be a number of seconds, 0 to 300")
            count = request.get("count")
            if count is not None and (type(count) is not int or count < 1):
                raise Refused(400, "bad_count", "count must be a whole number of at least 1 (or null: until changed)")
            receipt = request.get("receipt")
            if receipt is not None and receipt not in RECEIPT_STATUSES:
                raise Refused(400, "bad_receipt", f"receipt must be one of {', '.join(RECEIPT_STATUSES)}")
            with self._lock:
                if mode is not None:
                    # a new mode starts a new count: "throttle twice" means the next two sends
                    self.fault.mode, self.fault.count = mode, count
                elif "count" in request:
                    self.fault.count = count
                if retry_after is not None:
                    self.fault.retry_after_s = retry_after
                if delay is not None:
                    self.fault.delay_s = float(delay)
                if receipt is not None:
                    self.fault.receipt = receipt
        with self._lock:
            return Reply(200, {**self.fault.as_dict(), "refused": self.refused})

    def _record(self, line: dict[str, Any]) -> None:
        """One JSON line per message in the --out file (called with the lock held, so lines never interleave)."""
        if self._out is not None:
            self._out.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
            self._out.flush()

    def close(self) -> None:
        """Stop the timeline and stop writing the --out file (a request still in flight records nothing more)."""
        self.timeline.stop()
        with self._lock:
            self._out = None


def _fields(payload: Any, required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, Any]:
    """The request object, checked against a fixed schema: required fields present, nothing unknown."""
    if not isinstance(payload, dict):
        raise Refused(400, "bad_request", "the body must be a JSON object")
    unknown = sorted(set(payload) - set(required) - set(optional))
    if unknown:
        raise Refused(400, "unknown_field", f"unknown field {unknown[0][:40]!r}")
    missing = [name for name in required if payload.get(name) is None]
    if missing:
        raise Refused(400, "missing_field", f"{missing[0]} is required")
    return {name: payload[name] for name in (*required, *optional) if payload.get(name) is not None}


def _phone(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _PHONE.fullmatch(value):
        raise Refused(400, f"bad_{name}", f"{name} must be a phone number: an optional + and 6 to 15 digits")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Refused(400, "bad_text", "text must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise Refused(400, "text_too_long", f"text is longer than {MAX_TEXT} characters")
    return value


# -- timed work: receipts and callback retries --------------------------------------------------------------

class Timeline(threading.Thread):
    """One thread running small jobs at their due time, in order (receipts after their delay, retries)."""

    def __init__(self) -> None:
        super().__init__(name="sim-sms timeline", daemon=True)
        self._jobs: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False

    def after(self, delay_s: float, job: Callable[[], None]) -> None:
        with self._wake:
            heapq.heappush(self._jobs, (time.monotonic() + delay_s, next(self._order), job))
            self._wake.notify()

    def run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._jobs or self._jobs[0][0] > time.monotonic()):
                    self._wake.wait(self._jobs[0][0] - time.monotonic() if self._jobs else None)
                if self._stopped:
                    return
                _, _, job = heapq.heappop(self._jobs)
            try:
                job()
            except Exception as exc:  # one bad job must not stop receipts for everyone else
                print(f"cardpos-sim-sms: job failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        if self.is_alive():
            self.join(timeout=5.0)


def sign(secrets: tuple[str, ...], timestamp: int, body: bytes) -> str:
    """``t=<unix>,v1=<hex>[,v1=<hex>]``: HMAC-SHA256 of ``"{t}.{body}"`` with each secret."""
    signed = f"{timestamp}.".encode("ascii") + body
    parts = [f"t={timestamp}"]
    parts += [f"v1={hmac.new(s.encode('utf-8'), signed, hashlib.sha256).hexdigest()}" for s in secrets]
    return ",".join(parts)


class CallbackPoster:
    """Posts signed JSON to the callback URL from the timeline thread, retrying with backoff."""

    def __init__(self, url: str, secrets: tuple[str, ...], timeout_s: float, timeline: Timeline,
                 clock: Callable[[], float]) -> None:
        self.url, self.secrets, self.timeout_s = url, secrets, timeout_s
        self.timeline, self.clock = timeline, clock
        self.enabled = bool(url)

    def post(self, payload: dict[str, Any], done: Callable[[bool], None] | None = None) -> None:
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
        self._attempt(body, 1, done)

    def _attempt(self, body: bytes, attempt: int, done: Callable[[bool], None] | None) -> None:
        if self._deliver_once(body):
            if done is not None:
                done(True)
        elif attempt >= CALLBACK_ATTEMPTS:
            print(f"cardpos-sim-sms: callback to {self.url} given up after {attempt} attempts", file=sys.stderr)
            if done is not None:
                done(False)
        else:
            self.timeline.after(0.5 * 2 ** (attempt - 1), lambda: self._attempt(body, attempt + 1, done))

    def _deliver_once(self, body: bytes) -> bool:
        parts = urlsplit(self.url)
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # signed at each attempt, like Stripe: a retry minutes later still carries a fresh timestamp
        headers = {"Content-Type": "application/json", "User-Agent": "cardpos-sim-sms",
                   SIGNATURE_HEADER: sign(self.secrets, int(self.clock()), body)}
        connection: http.client.HTTPConnection | None = None
        try:
            connection = connection_class(parts.hostname or "127.0.0.1", parts.port, timeout=self.timeout_s)
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(MAX_BODY)
            return 200 <= response.status < 300
        except (OSError, http.client.HTTPException, ValueError):
            return False
        finally:
            if connection is not None:
                connection.close()


# -- HTTP -------------------------------------------------------------------------------------------------

MAX_DRAIN = 1024 * 1024
"""A refused request's body is read and dropped up to this size, so the client reads the answer rather than a
connection reset (closing a socket with unread data resets it)."""

# (method, path) -> (what the gateway does, whether the request has a JSON body)
_ROUTES: dict[tuple[str, str], tuple[Callable[[Gateway, Any], Reply], bool]] = {
    ("POST", "/messages"): (lambda gateway, body: gateway.send(body), True),
    ("GET", "/messages"): (lambda gateway, body: gateway.listing(), False),
    ("POST", "/inject/inbound"): (lambda gateway, body: gateway.inject_inbound(body), True),
    ("GET", "/control"): (lambda gateway, body: gateway.control(None), False),
    ("POST", "/control"): (lambda gateway, body: gateway.control(body), True),
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    gateway: Gateway


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "cardpos-sim-sms"
    protocol_version = "HTTP/1.1"  # keep-alive, so a client's session reuses its connection
    timeout = 10  # a client that stops sending mid-request does not hold a thread for ever

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        try:
            reply = self._dispatch(method)
        except Refused as refusal:
            reply = refusal.reply()
        except Exception as exc:  # a simulator bug answers 500 with a reason, never a dropped connection
            print(f"cardpos-sim-sms: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
            reply = Reply(500, {"error": "internal", "message": "the simulator failed on this request"})
        self._write(reply)

    def _dispatch(self, method: str) -> Reply:
        path = urlsplit(self.path).path
        route = _ROUTES.get((method, path))
        if route is None:
            self._discard_body()
            allowed = sorted(m for m, p in _ROUTES if p == path)
            if allowed:
                raise Refused(405, "method_not_allowed", f"{path} takes {', '.join(allowed)}",
                              {"Allow": ", ".join(allowed)})
            raise Refused(404, "not_found", "no such endpoint")
        gateway = self.server.gateway
        # authenticate before reading the body: an unauthenticated caller gets nothing parsed
        if not gateway.authorized(self.headers.get("Authorization")):
            self._discard_body()
            raise Refused(401, "unauthorized", "missing or wrong credentials",
                          {"WWW-Authenticate": gateway.challenge()})
        action, has_body = route
        return action(gateway, self._read_json() if has_body else None)

    def _content_length(self) -> int | None:
        text = self.headers.get("Content-Length")
        if text is None or self.headers.get("Transfer-Encoding"):
            return None
        text = text.strip()
        return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else -1

    def _read_json(self) -> Any:
        length = self._content_length()
        if length is None:
            self.close_connection = True
            raise Refused(411, "length_required", "send the body with a Content-Length")
        if length < 0:
            self.close_connection = True
            raise Refused(400, "bad_length", "Content-Length is not a number")
        if length > MAX_BODY:
            self._discard_body()
            raise Refused(413, "too_large", f"the body is over {MAX_BODY} bytes")
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            raise Refused(400, "short_body", "the body ended before Content-Length bytes")
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise Refused(400, "bad_json", "the body is not UTF-8 JSON") from None

    def _discard_body(self) -> None:
        """Read and drop a body that will not be used (bounded), and end the connection after the answer."""
        self.close_connection = True
        length = self._content_length()
        left = min(length, MAX_DRAIN) if length is not None and length > 0 else 0
        try:
            while left > 0:
                chunk = self.rfile.read(min(left, 65536))
                if not chunk:
                    return
                left -= len(chunk)
        except OSError:
            return

    def _write(self, reply: Reply) -> None:
        data = json.dumps(reply.body, ensure_ascii=False, sort_keys=True).encode("utf-8")
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client went away; nothing to tell it

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # access lines would fill a pipe nobody reads
        pass


class GatewayServer:
    """The gateway on ``http://127.0.0.1:PORT`` (0: any free port), serving from its own threads."""

    def __init__(self, gateway: Gateway, port: int = 0) -> None:
        self.gateway = gateway
        try:
            self._server = _Server(("127.0.0.1", port), _Handler)
        except OSError as exc:
            raise SimulatorError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}", orig=exc) from exc
        self._server.gateway = gateway
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="sim-sms http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self.gateway.start()
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.gateway.close()


def open_record(path: Path) -> IO[str]:
    """The --out file, appended to; owner-only because it holds phone numbers and message texts."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "a", encoding="utf-8")
    except OSError as exc:
        raise SimulatorError(f"cannot open the message record {path}: {exc.strerror}", orig=exc) from exc


def parse_basic(value: str) -> tuple[str, str]:
    """``USER:PASS`` from the command line."""
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise SimulatorError("--basic takes USER:PASS, both non-empty")
    return checked_text(user, "--basic"), checked_text(password, "--basic")


def checked_callback_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number from 0 to 65535
    except ValueError:
        port, parts = None, None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise SimulatorError(f"--callback must be an http:// or https:// URL with a host, not {url!r}")
    return url


def checked_text(value: str, flag: str) -> str:
    """A credential or secret from the command line: printable, and encodable (argv may carry stray bytes)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SimulatorError(f"{flag} must be UTF-8 text") from None
    if not value.isprintable() or not value:
        raise SimulatorError(f"{flag} must be non-empty printable text")
    return value
