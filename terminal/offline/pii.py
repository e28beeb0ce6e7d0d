"""Field-level encryption of member PII at rest (AES-256-GCM).

Every PII value (member name, phone, email, notes, preferences; cashier names; the notes/prefs of
``member_update`` journal entries) is stored as ``b"\\x01" || nonce(12) || ciphertext+tag``. The associated
data binds a value to where it lives -- ``table|column|row id`` -- so a value copied into another row or column
fails to decrypt instead of silently showing the wrong person's phone number.

The 32-byte key lives in ``<data dir>/keys/pii.key`` (0600). It is created on first use; a database that already
holds encrypted values never gets a fresh key silently (see ``terminal.offline.store``).
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
from cardkit.errors import JournalError

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_V1 = b"\x01"  # leading byte so a later key rotation / algorithm change can tell values apart


def pii_key_path(data_dir: Path) -> Path:
    return locations.keys_dir(data_dir) / "pii.key"


def read_key(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise JournalError(f"the PII key file {path} is missing") from None
    except OSError as exc:
        raise JournalError(f"cannot read the PII key file {path}: {exc.strerror}", orig=exc) from exc
    if len(key) != KEY_BYTES:
        raise JournalError(f"the PII key file {path} is damaged (expected {KEY_BYTES} bytes, found {len(key)})")
    return key


def create_key(path: Path, randbytes: Callable[[int], bytes] = os.urandom) -> bytes:
    """Create the key file atomically; if another process won the race, use its key.

    The key is written (0600, fsynced) to a private temporary name and then hard-linked into place: ``link``
    fails when the name exists, so two processes can never each believe their own key is the one on disk, and a
    process killed half-way leaves no truncated key behind.
    """
    key = randbytes(KEY_BYTES)
    # Unique per call, not just per process: two threads of one process may race here too.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{randbytes(8).hex()}.tmp")
    try:
        locations.write_private(tmp, key)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return read_key(path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise JournalError(f"cannot create the PII key file {path}: {exc.strerror}", orig=exc) from exc
    return key


class PiiCipher:
    """AES-GCM over single values, with the value's location as associated data."""

    def __init__(self, key: bytes, *, randbytes: Callable[[int], bytes] = os.urandom) -> None:
        if len(key) != KEY_BYTES:
            raise JournalError(f"a PII key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        self._randbytes = randbytes

    @classmethod
    def from_key_file(cls, path: Path, *, create: bool = True) -> PiiCipher:
        if create and not path.exists():
            return cls(create_key(path))
        return cls(read_key(path))

    @staticmethod
    def _aad(table: str, column: str, row_id: str) -> bytes:
        return f"cardpos-pii|{table}|{column}|{row_id}".encode()

    def encrypt(self, plaintext: bytes, *, table: str, column: str, row_id: str) -> bytes:
        nonce = self._randbytes(NONCE_BYTES)
        return FORMAT_V1 + nonce + self._aead.encrypt(nonce, plaintext, self._aad(table, column, row_id))

    def decrypt(self, blob: bytes, *, table: str, column: str, row_id: str) -> bytes:
        if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != FORMAT_V1:
            raise JournalError(f"encrypted {table}.{column} of {row_id!r} is damaged")
        nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, self._aad(table, column, row_id))
        except InvalidTag as exc:
            raise JournalError(
                f"encrypted {table}.{column} of {row_id!r} cannot be decrypted (wrong key file or tampered data)",
                orig=exc,
            ) from exc

    # -- typed helpers ------------------------------------------------------------------------------------
    def encrypt_text(self, text: str, *, table: str, column: str, row_id: str) -> bytes:
        return self.encrypt(text.encode("utf-8"), table=table, column=column, row_id=row_id)

    def decrypt_text(self, blob: bytes, *, table: str, column: str, row_id: str) -> str:
        return self.decrypt(blob, table=table, column=column, row_id=row_id).decode("utf-8")

    def encrypt_value(self, value: Any, *, table: str, column: str, row_id: str) -> bytes:
        """Encrypt any CBOR-encodable value (dicts of preferences, ...)."""
        return self.encrypt(cbor2.dumps(value, canonical=True), table=table, column=column, row_id=row_id)

    def decrypt_value(self, blob: bytes, *, table: str, column: str, row_id: str) -> Any:
        return cbor2.loads(self.decrypt(blob, table=table, column=column, row_id=row_id))
