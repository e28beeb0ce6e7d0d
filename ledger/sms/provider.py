"""Sending one SMS: the ``SmsProvider`` interface and ``HttpSmsProvider``, a gateway reached over HTTP.

``send(to, text, reference)`` never raises: every way an HTTP call can go wrong comes back as a ``SendResult``,
so a caller (a campaign, an alert) keeps its outbox row and decides when to try again:

- ``accepted(message_id)``: the gateway took the message; its receipt comes later by callback.
- ``retry_after(seconds)``: the gateway asked us to wait (429, or 503 with ``Retry-After``).
- ``failed(reason, permanent=...)``: this attempt failed. ``permanent`` means the message itself will never be
  taken (a 4xx such as a bad number); otherwise (refused connection, timeout, 5xx, bad credentials, an answer
  without an id) a later attempt may succeed.

A timeout after the request went out may mean the gateway did take the message. Trying again with the same
``reference`` is then safe with a gateway that de-duplicates on it (the simulator does); with one that does not,
the member may get the SMS twice, which is why a timeout is reported and never silently retried here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import requests
import urllib3

from ledger.sms.config import HttpSmsConfig
from ledger.sms.mapping import BodyFormat, build_payload, extract_message_id, parse_retry_after

MAX_ANSWER = 64 * 1024
"""Answers longer than this are not read (a gateway's answer is a few hundred bytes)."""
MAX_REASON = 300


class SendOutcome(StrEnum):
    ACCEPTED = "accepted"
    RETRY_AFTER = "retry_after"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: SendOutcome
    message_id: str = ""
    """The gateway's id for an accepted message (receipts name it)."""
    retry_after_s: int = 0
    """For retry_after: seconds the gateway asked us to wait."""
    reason: str = ""
    """For failed and retry_after: one sentence saying what happened."""
    permanent: bool = False
    """For failed: trying this message again will not help."""

    @classmethod
    def accepted(cls, message_id: str) -> SendResult:
        return cls(SendOutcome.ACCEPTED, message_id=message_id)

    @classmethod
    def retry_after(cls, seconds: int, reason: str = "") -> SendResult:
        return cls(SendOutcome.RETRY_AFTER, retry_after_s=seconds, reason=reason)

    @classmethod
    def failed(cls, reason: str, *, permanent: bool = False) -> SendResult:
        return cls(SendOutcome.FAILED, reason=reason[:MAX_REASON], permanent=permanent)

    @property
    def ok(self) -> bool:
        return self.outcome is SendOutcome.ACCEPTED


class SmsProvider(Protocol):
    """Anything that sends one SMS and says what became of it (never raising)."""

    def send(self, to: str, text: str, reference: str) -> SendResult: ...


MAX_TO = 32
MAX_TEXT = 1600
MAX_REFERENCE = 64


class HttpSmsProvider:
    """An HTTP gateway described by ``HttpSmsConfig``: URL, credentials and field mapping.

    Safe to share between threads (each thread keeps its own connection pool)."""

    def __init__(self, config: HttpSmsConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxy or netrc from the environment between us and the gateway
            self._local.session = session
        return session

    def send(self, to: str, text: str, reference: str) -> SendResult:
        problem = _check_message(to, text, reference)
        if problem:
            return SendResult.failed(problem, permanent=True)
        cfg = self.config
        payload = build_payload(cfg.fields, to, text, cfg.sender, reference, cfg.extra)
        headers = {"Accept": "application/json", "User-Agent": "cardpos-ledger"}
        if cfg.token:
            headers["Authorization"] = f"Bearer {cfg.token}"
        auth = (cfg.username, cfg.password) if cfg.username else None
        deadline = time.monotonic() + cfg.timeout_s
        try:
            as_json = cfg.body_format is BodyFormat.JSON
            response = self._session().post(
                cfg.url, json=payload if as_json else None, data=None if as_json else payload, headers=headers,
                auth=auth, timeout=cfg.timeout_s, allow_redirects=False, stream=True)
            try:
                body = _read_bounded(response, deadline)
            finally:
                response.close()
        except requests.ConnectTimeout:
            return SendResult.failed(f"the SMS gateway did not accept a connection within {cfg.timeout_s:g} s")
        except (requests.ReadTimeout, _AnswerTooSlow):
            return SendResult.failed(f"the SMS gateway did not answer within {cfg.timeout_s:g} s (the message may "
                                     "have been sent)")
        except _AnswerTooLong:
            return SendResult.failed(f"the SMS gateway's answer was over {MAX_ANSWER} bytes")
        except requests.ConnectionError as exc:
            if exc.args and isinstance(exc.args[0], urllib3.exceptions.ReadTimeoutError):  # while reading the body
                return SendResult.failed(f"the SMS gateway did not answer within {cfg.timeout_s:g} s (the message "
                                         "may have been sent)")
            return SendResult.failed(f"the SMS gateway could not be reached ({_cause(exc)})")
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            return SendResult.failed(f"the SMS request failed ({type(exc).__name__})")
        return result_from_answer(response.status_code, response.headers, body, cfg, self._clock())


class _AnswerTooLong(Exception):
    pass


class _AnswerTooSlow(Exception):
    pass


def _read_bounded(response: requests.Response, deadline: float) -> bytes:
    """The answer body, at most MAX_ANSWER bytes, by the deadline (a gateway dripping bytes cannot hold us)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(8192):
        size += len(chunk)
        if size > MAX_ANSWER:
            raise _AnswerTooLong
        if time.monotonic() > deadline:
            raise _AnswerTooSlow
        chunks.append(chunk)
    return b"".join(chunks)


def _cause(exc: BaseException) -> str:
    """The innermost reason of a connection error in a few words (``Connection refused``)."""
    node = exc
    for _ in range(8):  # requests wraps urllib3, which wraps the socket error
        inner = getattr(node, "reason", None) or node.__cause__ or node.__context__
        if not isinstance(inner, BaseException):
            break
        node = inner
    if isinstance(node, OSError) and node.strerror:
        return node.strerror
    return type(node).__name__


def _check_message(to: str, text: str, reference: str) -> str:
    """A message no gateway can take, refused before the network (as a permanent failure)."""
    if not isinstance(to, str) or not to or len(to) > MAX_TO or not to.isprintable():
        return f"the recipient must be a phone number of at most {MAX_TO} characters"
    if not isinstance(text, str) or not text.strip():
        return "the message text is empty"
    if len(text) > MAX_TEXT:
        return f"the message text is over {MAX_TEXT} characters"
    if not isinstance(reference, str) or len(reference) > MAX_REFERENCE or not reference.isprintable():
        return f"the reference must be printable text of at most {MAX_REFERENCE} characters"
    try:
        (to + text + reference).encode("utf-8")
    except UnicodeEncodeError:
        return "the message is not valid text (lone surrogate characters)"
    return ""


def result_from_answer(status: int, headers: Mapping[str, str], body: bytes, config: HttpSmsConfig,
                       now: float) -> SendResult:
    """What an HTTP answer means for the message. Pure, so every status is tested without a network."""
    if 200 <= status < 300:
        try:
            document = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return SendResult.failed(f"the SMS gateway answered HTTP {status} with a body that is not JSON")
        message_id = extract_message_id(document, config.fields.message_id)
        if message_id is None:
            return SendResult.failed(f"the SMS gateway answered HTTP {status} without a message id in "
                                     f"{config.fields.message_id!r}")
        return SendResult.accepted(message_id)
    detail = _detail(body)
    if status == 429 or status == 503:
        wait = parse_retry_after(headers.get("Retry-After"), now)
        if status == 429 or wait is not None:
            seconds = min(config.default_retry_s if wait is None else wait, config.max_retry_s)
            return SendResult.retry_after(seconds, f"the SMS gateway asked us to wait (HTTP {status}){detail}")
    if 300 <= status < 400:
        return SendResult.failed(f"the SMS gateway redirected the request (HTTP {status}); configure the URL it "
                                 "redirects to", permanent=True)
    if status in (401, 403):
        return SendResult.failed(f"the SMS gateway refused our credentials (HTTP {status}){detail}")
    if status in (408, 409, 425):
        return SendResult.failed(f"the SMS gateway could not take the message now (HTTP {status}){detail}")
    if 400 <= status < 500:
        return SendResult.failed(f"the SMS gateway refused the message (HTTP {status}){detail}", permanent=True)
    return SendResult.failed(f"the SMS gateway failed (HTTP {status}){detail}")


def _detail(body: bytes) -> str:
    """``: <the gateway's own message>`` when its error answer has one (a JSON ``message`` or ``error``)."""
    try:
        document = json.loads(body[:4096].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return ""
    if not isinstance(document, dict):
        return ""
    for key in ("message", "error", "detail"):
        value = document.get(key)
        if isinstance(value, str) and value.strip():
            text = "".join(ch if ch.isprintable() else " " for ch in value.strip())
            return f": {text[:120]}"
    return ""
