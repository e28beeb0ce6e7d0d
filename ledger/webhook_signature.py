"""Webhook signatures: ``X-Cardpos-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">``.

Stripe's scheme. The timestamp is inside the MAC, so a request captured on the network can be replayed only
while it is fresh: a receiver accepts it when its own clock is within ``TOLERANCE_S`` of ``t`` (either side, so
a receiver whose clock runs ahead cannot be fed old requests either). During a secret rotation the sender signs
with every secret it holds and sends one ``v1=`` per secret; a receiver accepts the request when any of them
matches its own secret. Other schemes (``v0=`` …) are ignored, so a newer sender stays readable.

``verify_signature`` is a parser of hostile input: it answers True or False to anything and never raises.
Pure and standard library only, so a receiver written in Python can copy this file as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Sequence

HEADER = "X-Cardpos-Signature"
SCHEME = "v1"
TOLERANCE_S = 300
"""A signature is accepted while the receiver's clock is within this many seconds of its timestamp."""
MAX_HEADER_CHARS = 4096
"""Longer headers are refused before any parsing (one v1 is 67 characters; dozens of secrets would fit)."""
MAX_TIMESTAMP_DIGITS = 12  # unix seconds until the year 33658
_HEX_DIGITS = frozenset("0123456789abcdef")


def signed_payload(timestamp: str, body: bytes) -> bytes:
    """What the MAC covers: the timestamp as sent, a dot, the raw body."""
    return timestamp.encode("ascii") + b"." + body


def _mac(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, signed_payload(timestamp, body), hashlib.sha256).hexdigest()


def sign(secrets: str | Sequence[str], body: bytes, timestamp_s: int) -> str:
    """The header value for ``body`` sent at ``timestamp_s``: one ``v1=`` per secret (several while rotating)."""
    keys = (secrets,) if isinstance(secrets, str) else tuple(secrets)
    stamp = str(int(timestamp_s))
    return ",".join([f"t={stamp}"] + [f"{SCHEME}={_mac(key.encode('utf-8'), stamp, body)}" for key in keys])


def _as_bytes(value: object) -> bytes | None:
    """Text as UTF-8, bytes as they are; anything else (or text that is not encodable) is None."""
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates
            return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return None


def parse_header(header: object) -> tuple[str, list[str]] | None:
    """``(timestamp, v1 signatures)`` of a well-formed header, or None.

    Well formed: ASCII, at most ``MAX_HEADER_CHARS``, comma-separated ``key=value`` items, exactly one ``t`` of
    plain decimal digits without a leading zero, at least one ``v1``. A ``v1`` that is not 64 lowercase hex digits
    can match nothing and is dropped.
    """
    if isinstance(header, bytes | bytearray):
        if len(header) > MAX_HEADER_CHARS or not header.isascii():
            return None
        header = bytes(header).decode("ascii")
    if not isinstance(header, str) or len(header) > MAX_HEADER_CHARS or not header.isascii():
        return None
    timestamps: list[str] = []
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            return None
        if key == "t":
            timestamps.append(value)
        elif key == SCHEME:
            if len(value) == 64 and set(value) <= _HEX_DIGITS:
                candidates.append(value)
            elif not value:
                return None
    if len(timestamps) != 1 or not candidates:
        return None
    [stamp] = timestamps
    # str.isdigit() and int() accept other scripts' digits and underscores; the MAC covers the text as sent
    if not (0 < len(stamp) <= MAX_TIMESTAMP_DIGITS and set(stamp) <= set("0123456789")) \
            or (stamp.startswith("0") and stamp != "0"):
        return None
    return stamp, candidates


def _fresh(timestamp_s: int, now_s: object, tolerance_s: object) -> bool:
    if now_s is None:
        now_s = time.time()
    if isinstance(now_s, bool) or not isinstance(now_s, int | float) or not math.isfinite(now_s):
        return False
    if isinstance(tolerance_s, bool) or not isinstance(tolerance_s, int | float) or not tolerance_s >= 0:
        return False
    return abs(now_s - timestamp_s) <= tolerance_s


def verify_signature(secret: str | bytes, body: bytes | str, header: str | bytes | None, *,
                     now_s: float | None = None, tolerance_s: float = TOLERANCE_S) -> bool:
    """For receivers: True when ``header`` (the ``X-Cardpos-Signature`` value) holds a ``v1`` signature of
    ``body`` made with ``secret`` whose timestamp is within ``tolerance_s`` of ``now_s`` (the receiver's clock,
    ``time.time()`` by default). Constant-time comparison; False for anything else, never an exception."""
    key = _as_bytes(secret)
    payload = _as_bytes(body)
    parsed = parse_header(header)
    if not key or payload is None or parsed is None:
        return False
    stamp, candidates = parsed
    if not _fresh(int(stamp), now_s, tolerance_s):
        return False
    expected = _mac(key, stamp, payload).encode("ascii")
    matched = False
    for candidate in candidates:  # every candidate is compared: the time taken does not say which one matched
        matched |= hmac.compare_digest(expected, candidate.encode("ascii"))
    return matched
