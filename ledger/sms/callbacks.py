"""Signed callbacks from the SMS gateway: delivery receipts and members' inbound replies.

The gateway POSTs JSON with the header ``X-Sms-Signature: t=<unix seconds>,v1=<hex>``, where the hex is
HMAC-SHA256 with the shared secret over the bytes ``"{t}." + body`` (Stripe's scheme). More than one ``v1=`` may
be present (the gateway signs with an old and a new secret while one is rotated); one match is enough.

A receiver must ``verify`` the raw body before parsing anything, then ``parse_callback`` it:

- ``verify`` is constant-time, refuses a timestamp more than ``TOLERANCE_S`` (300 s, Stripe's default) from our
  clock in either direction, so a captured callback cannot be replayed later, and never raises: a missing,
  malformed, oversized or non-ASCII header is simply ``False``;
- ``parse_callback`` decodes a fixed schema with limits into a ``DeliveryReceipt`` or an ``InboundMessage``, or
  raises ``CallbackError`` with one sentence (answer it with 400).

Within the window a callback can still arrive twice (the gateway retries when our answer is lost): receipts and
inbound messages carry the gateway's id, and whoever stores them should ignore an id already seen.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ledger.errors import LedgerError
from ledger.sms.keywords import is_balance_query, is_opt_out

__all__ = [
    "SIGNATURE_HEADER", "TOLERANCE_S", "CallbackError", "DeliveryReceipt", "DeliveryStatus", "InboundMessage",
    "is_balance_query", "is_opt_out", "parse_callback", "read_callback", "sign", "verify",
]

SIGNATURE_HEADER = "X-Sms-Signature"
TOLERANCE_S = 300
"""Largest difference in seconds between a callback's ``t`` and our clock (past or future) that is accepted."""
MAX_HEADER = 1024
MAX_SIGNATURES = 8
MAX_BODY = 64 * 1024
MAX_TEXT = 1600
MAX_ID = 128


class CallbackError(LedgerError):
    title = "SMS callback refused"


# -- signature ------------------------------------------------------------------------------------------------

def _digest(secret: bytes, timestamp: int, body: bytes) -> bytes:
    return hmac.new(secret, f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest().encode("ascii")


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value the gateway sends (for tests, and for anyone relaying callbacks to us)."""
    return f"t={timestamp},v1={_digest(secret.encode('utf-8'), timestamp, body).decode('ascii')}"


def _parse_header(header: str) -> tuple[int | None, list[bytes]]:
    timestamp: int | None = None
    signatures: list[bytes] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if timestamp is not None or not (value.isascii() and value.isdigit() and len(value) <= 12):
                return None, []  # two timestamps, or one that is not a plain number: malformed
            timestamp = int(value)
        elif key == "v1" and len(value) == 64 and value.isascii() and all(c in "0123456789abcdef" for c in value):
            signatures.append(value.encode("ascii"))  # other schemes (v0, ...) are ignored, as Stripe does
    return timestamp, signatures[:MAX_SIGNATURES]


def verify(secret: str, body: bytes, header: str | None, *, now: float | None = None,
           tolerance_s: int = TOLERANCE_S) -> bool:
    """True only for a ``t=…,v1=…`` header that signs exactly ``body`` with ``secret``, with ``t`` within
    ``tolerance_s`` of ``now`` (default: the clock). Never raises."""
    if not isinstance(secret, str) or not secret or not isinstance(header, str) or len(header) > MAX_HEADER:
        return False
    if not isinstance(body, bytes | bytearray):
        return False
    try:
        key = secret.encode("utf-8")
    except UnicodeEncodeError:
        return False
    timestamp, signatures = _parse_header(header)
    if timestamp is None or not signatures:
        return False
    current = time.time() if now is None else now
    if not abs(current - timestamp) <= max(tolerance_s, 0):  # written so that a NaN clock refuses
        return False
    expected = _digest(key, timestamp, bytes(body))
    matched = False
    for candidate in signatures:  # compare every one, so timing does not tell which matched
        matched |= hmac.compare_digest(expected, candidate)
    return matched


# -- records ------------------------------------------------------------------------------------------------

class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    message_id: str
    """The gateway's id, as ``SendResult.accepted`` returned it."""
    reference: str
    """Our reference sent with the message ("" if none)."""
    to: str
    status: DeliveryStatus
    at: int
    """Unix seconds the gateway reports for the delivery (or the failure)."""
    error: str = ""


@dataclass(frozen=True, slots=True)
class InboundMessage:
    message_id: str
    sender: str
    """The member's number (``from`` in the callback)."""
    text: str
    at: int

    @property
    def opt_out(self) -> bool:
        return is_opt_out(self.text)

    @property
    def balance_query(self) -> bool:
        return is_balance_query(self.text)


Callback = DeliveryReceipt | InboundMessage


def parse_callback(body: bytes) -> Callback:
    """A verified callback body as a typed record; ``CallbackError`` for anything outside the schema."""
    if len(body) > MAX_BODY:
        raise CallbackError(f"the callback body is over {MAX_BODY} bytes")
    try:
        document = json.loads(bytes(body).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CallbackError("the callback body is not UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise CallbackError("the callback body is not a JSON object")
    kind = document.get("type")
    if kind == "receipt":
        status = _string(document, "status", 32)
        if status not in tuple(DeliveryStatus):
            raise CallbackError(f"the receipt's status {status[:32]!r} is not delivered or failed")
        return DeliveryReceipt(message_id=_string(document, "id", MAX_ID, required=True),
                               reference=_string(document, "reference", MAX_ID), to=_string(document, "to", 32),
                               status=DeliveryStatus(status), at=_time(document),
                               error=_string(document, "error", 200))
    if kind == "inbound":
        return InboundMessage(message_id=_string(document, "id", MAX_ID, required=True),
                              sender=_string(document, "from", 32, required=True),
                              text=_string(document, "text", MAX_TEXT, required=True), at=_time(document))
    raise CallbackError("the callback's type is not receipt or inbound")


def read_callback(secret: str, body: bytes, header: str | None, *, now: float | None = None,
                  tolerance_s: int = TOLERANCE_S) -> Callback:
    """``verify`` then ``parse_callback``: what a receiver calls with the raw body and the signature header."""
    if not verify(secret, body, header, now=now, tolerance_s=tolerance_s):
        raise CallbackError("the callback's signature is missing, wrong or too old")
    return parse_callback(body)


def _string(document: dict[str, Any], key: str, limit: int, required: bool = False) -> str:
    value = document.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value) or len(value) > limit:
        raise CallbackError(f"the callback's {key} must be text of at most {limit} characters")
    return value


def _time(document: dict[str, Any]) -> int:
    value = document.get("at")
    if type(value) is not int or not 0 <= value < 10**11:
        raise CallbackError("the callback's at must be unix seconds")
    return value
