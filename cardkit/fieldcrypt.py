"""Field-level encryption of personal data at rest (AES-256-GCM), shared by the terminal and the ledger.

A value is stored as ``b"\\x01" || nonce(12) || ciphertext+tag``. The associated data binds it to where it lives
-- ``<domain>|table|column|row id`` -- so a value copied into another row or column fails to decrypt instead of
silently showing another person's phone number. Each application names its own domain and its own error class
(the terminal reports a ``JournalError``, the ledger a ``LedgerError``); the key files are 32 random bytes, 0600.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cardkit import locations
from cardkit.errors import CardposError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
FORMAT_V1 = b"\x01"  # leading byte so a later key rotation / algorithm change can tell values apart

ErrorType = type[CardposError]


def read_key_file(path: Path, error: ErrorType, what: str = "PII key") -> bytes:
    """The key in ``path``; a missing, unreadable or damaged file is ``error`` with one sentence."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise error(f"the {what} file {path} is missing") from None
    except OSError as exc:
        raise error(f"cannot read the {what} file {path}: {exc.strerror}", orig=exc) from exc
    if len(key) != KEY_BYTES:
        raise error(f"the {what} file {path} is damaged (expected {KEY_BYTES} bytes, found {len(key)})")
    return key


def create_key_file(path: Path, error: ErrorType, what: str = "PII key",
                    randbytes: Callable[[int], bytes] = os.urandom) -> bytes:
    """Create a key file that never replaces an existing one; if another process won the race, use its key.

    The key is written (0600, fsynced) to a private temporary name and then hard-linked into place: ``link``
    fails when the name exists (a symlink included), so two processes can never each believe their own key is
    the one on disk, and a process killed half-way leaves no truncated key behind.
    """
    key = randbytes(KEY_BYTES)
    # Unique per call, not just per process: two threads of one process may race here too.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{randbytes(8).hex()}.tmp")
    try:
        locations.write_private(tmp, key)
        try:
            os.link(tmp, path, follow_symlinks=False)
        except FileExistsError:
            return read_key_file(path, error, what)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise error(f"cannot create the {what} file {path}: {exc.strerror}", orig=exc) from exc
    return key


class FieldCipher:
    """AES-GCM over single values, with the value's location as associated data."""

    def __init__(self, key: bytes, *, domain: str, error: ErrorType,
                 randbytes: Callable[[int], bytes] = os.urandom) -> None:
        if len(key) != KEY_BYTES:
            raise error(f"a PII key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        self._domain = domain
        self._error = error
        self._randbytes = randbytes  # nonces: must never repeat under one key, so never a seeded generator

    def _aad(self, table: str, column: str, row_id: str) -> bytes:
        return f"{self._domain}|{table}|{column}|{row_id}".encode()

    def encrypt(self, plaintext: bytes, *, table: str, column: str, row_id: str) -> bytes:
        nonce = self._randbytes(NONCE_BYTES)
        return FORMAT_V1 + nonce + self._aead.encrypt(nonce, plaintext, self._aad(table, column, row_id))

    def decrypt(self, blob: bytes, *, table: str, column: str, row_id: str) -> bytes:
        if len(blob) < 1 + NONCE_BYTES + TAG_BYTES or blob[:1] != FORMAT_V1:
            raise self._error(f"encrypted {table}.{column} of {row_id!r} is damaged")
        nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, self._aad(table, column, row_id))
        except InvalidTag as exc:
            raise self._error(
                f"encrypted {table}.{column} of {row_id!r} cannot be decrypted (wrong key file or tampered data)",
                orig=exc,
            ) from exc

    # -- typed helpers ------------------------------------------------------------------------------------
    def encrypt_text(self, text: str, *, table: str, column: str, row_id: str) -> bytes:
        return self.encrypt(text.encode("utf-8"), table=table, column=column, row_id=row_id)

    def decrypt_text(self, blob: bytes, *, table: str, column: str, row_id: str) -> str:
        raw = self.decrypt(blob, table=table, column=column, row_id=row_id)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._error(f"encrypted {table}.{column} of {row_id!r} is not text", orig=exc) from exc

    def encrypt_value(self, value: Any, *, table: str, column: str, row_id: str) -> bytes:
        """Encrypt any CBOR-encodable value (dicts of preferences, ...)."""
        return self.encrypt(cbor2.dumps(value, canonical=True), table=table, column=column, row_id=row_id)

    def decrypt_value(self, blob: bytes, *, table: str, column: str, row_id: str) -> Any:
        raw = self.decrypt(blob, table=table, column=column, row_id=row_id)
        try:
            return cbor2.loads(raw)
        except (cbor2.CBORDecodeError, ValueError) as exc:  # authentic, so only a bug writes this
            raise self._error(f"encrypted {table}.{column} of {row_id!r} is not a value", orig=exc) from exc
