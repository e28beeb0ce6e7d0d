"""Time-based one-time passwords, RFC 6238 (over HOTP, RFC 4226), with the standard library's ``hmac``.

The secret is 20 random bytes, shown to the admin once as base32 and as an ``otpauth://`` URI (a QR code) for
authenticator apps; codes have 6 digits and a 30-second step. ``verify`` accepts the step before and after the
current one (clock drift) and returns the step it matched, so the caller can refuse a code used before (replay).
Pure: the caller passes the time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from urllib.parse import quote, urlencode

STEP_S = 30
DIGITS = 6
SECRET_BYTES = 20
DRIFT_STEPS = 1
_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def hotp(secret: bytes, counter: int, *, digits: int = DIGITS, algorithm: str = "sha1") -> str:
    """RFC 4226 section 5.3: HMAC the 8-byte big-endian counter, truncate dynamically, keep ``digits`` digits."""
    digest = hmac.new(secret, struct.pack(">Q", counter), _ALGORITHMS[algorithm]).digest()
    offset = digest[-1] & 0x0F
    code = int.from_bytes(digest[offset:offset + 4], "big") & 0x7FFF_FFFF
    return str(code % 10 ** digits).zfill(digits)


def step_at(unix_s: int, *, step_s: int = STEP_S, t0: int = 0) -> int:
    return (unix_s - t0) // step_s


def totp(secret: bytes, unix_s: int, *, digits: int = DIGITS, step_s: int = STEP_S, algorithm: str = "sha1") -> str:
    """RFC 6238 section 4: HOTP with the counter T = floor((time - T0) / X)."""
    return hotp(secret, step_at(unix_s, step_s=step_s), digits=digits, algorithm=algorithm)


def verify(secret: bytes, code: str, unix_s: int, *, after_step: int = -1) -> int | None:
    """The step ``code`` is valid for (now, or one step either side), or None. Steps up to ``after_step`` (the
    last one used) are refused: a code works once."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    now = step_at(unix_s)
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if step > after_step and hmac.compare_digest(hotp(secret, step), code):
            return step
    return None


def secret_to_text(secret: bytes) -> str:
    """Base32 without padding, as authenticator apps take it."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def secret_from_text(text: str) -> bytes:
    clean = text.strip().replace(" ", "").upper()
    return base64.b32decode(clean + "=" * (-len(clean) % 8))


def provisioning_uri(secret: bytes, account: str, issuer: str) -> str:
    """``otpauth://totp/ISSUER:ACCOUNT?secret=...`` (the Key Uri Format authenticator apps read from a QR code)."""
    label = quote(f"{issuer}:{account}", safe=":@")
    query = urlencode({"secret": secret_to_text(secret), "issuer": issuer, "algorithm": "SHA1",
                       "digits": DIGITS, "period": STEP_S})
    return f"otpauth://totp/{label}?{query}"
