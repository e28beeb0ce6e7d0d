"""A gateway's wire format as configuration: which field names carry the number, the text, the sender and our
reference, and where the answer keeps the gateway's message id. Pure: no I/O, so every mapping is testable as is.

The defaults fit the simulator (``cardpos sim-sms``). Another gateway is a different ``FieldMapping``, e.g. one
that wants form fields ``To``/``Body``/``From`` and answers ``{"sid": ...}``, or one that answers
``{"messages": [{"message-id": ...}]}`` (``message_id = "messages.0.message-id"``).
"""

from __future__ import annotations

import datetime
import email.utils
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class BodyFormat(StrEnum):
    JSON = "json"
    """``Content-Type: application/json``, the fields as one JSON object."""
    FORM = "form"
    """``application/x-www-form-urlencoded``."""


@dataclass(frozen=True, slots=True)
class FieldMapping:
    to: str = "to"
    """Request field for the recipient's number."""
    text: str = "text"
    """Request field for the message text."""
    sender: str = "sender"
    """Request field for the sender id or number; empty: the gateway takes none (its account default)."""
    reference: str = "reference"
    """Request field for our reference (the gateway echoes it in receipts and may de-duplicate on it); empty:
    not sent."""
    message_id: str = "id"
    """Where the answer holds the gateway's message id: a field name, or a dotted path through objects and list
    indexes (``messages.0.message-id``)."""

    def request_fields(self) -> list[str]:
        return [name for name in (self.to, self.text, self.sender, self.reference) if name]


def build_payload(mapping: FieldMapping, to: str, text: str, sender: str, reference: str,
                  extra: dict[str, str] | None = None) -> dict[str, str]:
    """The request fields for one message: the fixed ``extra`` fields (an account id, a route) and the mapped
    ones. A field mapped to an empty name, or an empty sender or reference, is left out."""
    payload = dict(extra or {})
    payload[mapping.to] = to
    payload[mapping.text] = text
    if mapping.sender and sender:
        payload[mapping.sender] = sender
    if mapping.reference and reference:
        payload[mapping.reference] = reference
    return payload


MAX_MESSAGE_ID = 128


def extract_message_id(document: Any, path: str) -> str | None:
    """The message id at ``path`` in a decoded JSON answer, or None when it is missing or not an id (a
    non-empty printable string of at most 128 characters, or a whole number)."""
    node = document
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isascii() and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    if isinstance(node, int) and not isinstance(node, bool):
        node = str(node)
    if isinstance(node, str) and 0 < len(node) <= MAX_MESSAGE_ID and node.isprintable():
        return node
    return None


def parse_retry_after(value: str | None, now: float) -> int | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110 10.2.3); None when
    absent or unreadable. A date in the past means 0."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return int(text) if len(text) <= 10 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": RFC 9110 dates are GMT whatever the zone says
        when = when.replace(tzinfo=datetime.UTC)
    try:
        return max(0, math.ceil(when.timestamp() - now))
    except (OverflowError, ValueError):
        return None
