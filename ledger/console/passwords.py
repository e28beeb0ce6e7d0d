"""Admin passwords: scrypt (RFC 7914), a memory-hard KDF from the standard library, with its parameters in the
stored text so they can be raised later without breaking older hashes.

Stored form: ``scrypt$<log2 N>$<r>$<p>$<salt, base64>$<derived key, base64>``. Defaults: N = 2**15, r = 8, p = 1,
a 16-byte random salt and a 32-byte key. That costs 128 * N * r = 32 MiB of memory and about 0.1-0.2 s of one core
per attempt, which is what makes a stolen table expensive to guess through; ``needs_rehash`` tells the sign-in to
store a fresh hash when the defaults have been raised since. Pure apart from the random salt, which the caller
passes in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from ledger.errors import LedgerError

LOG2_N = 15
BLOCK_SIZE_R = 8
PARALLEL_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
MIN_LENGTH = 10
MAX_LENGTH = 1024  # bounded: the KDF's cost grows with the input, and nobody types more
_MAXMEM = 256 * 1024 * 1024  # hashlib refuses parameters needing more memory than this (room for raised defaults)
_STORED = re.compile(r"scrypt\$(\d{1,2})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9+/=]{4,64})\$([A-Za-z0-9+/=]{4,128})")


@dataclass(frozen=True)
class ScryptParams:
    log2_n: int = LOG2_N
    r: int = BLOCK_SIZE_R
    p: int = PARALLEL_P

    @property
    def memory_bytes(self) -> int:
        return 128 * (2 ** self.log2_n) * self.r


DEFAULT_PARAMS = ScryptParams()


def check_password_rules(password: str) -> None:
    """A new password: long enough to resist guessing, short enough to bound the KDF's work."""
    if len(password) < MIN_LENGTH:
        raise LedgerError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise LedgerError(f"a password has at most {MAX_LENGTH} characters")
    if password != password.strip():
        raise LedgerError("a password must not start or end with a space")


def _derive(password: str, salt: bytes, params: ScryptParams, key_bytes: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2 ** params.log2_n, r=params.r, p=params.p,
                          maxmem=_MAXMEM, dklen=key_bytes)


def hash_password(password: str, salt: bytes, params: ScryptParams = DEFAULT_PARAMS) -> str:
    """The stored form of ``password`` under ``salt`` (16 random bytes from the caller)."""
    if len(salt) < 8:
        raise LedgerError("a password salt needs at least 8 bytes")
    key = _derive(password, salt, params, KEY_BYTES)
    b64 = base64.b64encode
    return f"scrypt${params.log2_n}${params.r}${params.p}${b64(salt).decode()}${b64(key).decode()}"


def _parse(stored: str) -> tuple[ScryptParams, bytes, bytes] | None:
    match = _STORED.fullmatch(stored)
    if match is None:
        return None
    log2_n, r, p = (int(match.group(i)) for i in (1, 2, 3))
    if not (1 <= log2_n <= 20 and 1 <= r <= 16 and 1 <= p <= 4):
        return None
    try:
        salt, key = base64.b64decode(match.group(4), validate=True), base64.b64decode(match.group(5), validate=True)
    except ValueError:
        return None
    return ScryptParams(log2_n, r, p), salt, key


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; a damaged stored form or an over-long password never matches."""
    parsed = _parse(stored)
    if parsed is None or len(password) > MAX_LENGTH:
        return False
    params, salt, key = parsed
    return hmac.compare_digest(_derive(password, salt, params, len(key)), key)


def needs_rehash(stored: str, params: ScryptParams = DEFAULT_PARAMS) -> bool:
    parsed = _parse(stored)
    return parsed is None or parsed[0] != params
