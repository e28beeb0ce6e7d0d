"""Field-level encryption of member PII at rest on the terminal (AES-256-GCM, ``cardkit.fieldcrypt``).

Every PII value (member name, phone, email, notes, preferences; cashier names; the notes/prefs of
``member_update`` journal entries) is stored as ``b"\\x01" || nonce(12) || ciphertext+tag``. The associated
data binds a value to where it lives -- ``cardpos-pii|table|column|row id`` -- so a value copied into another
row or column fails to decrypt instead of silently showing the wrong person's phone number.

The 32-byte key lives in ``<data dir>/keys/pii.key`` (0600). It is created on first use; a database that already
holds encrypted values never gets a fresh key silently (see ``terminal.offline.store``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cardkit import locations
from cardkit.errors import JournalError
from cardkit.fieldcrypt import FORMAT_V1, KEY_BYTES, NONCE_BYTES, FieldCipher, create_key_file, read_key_file

__all__ = ["FORMAT_V1", "KEY_BYTES", "NONCE_BYTES", "PiiCipher", "create_key", "pii_key_path", "read_key"]

AAD_DOMAIN = "cardpos-pii"


def pii_key_path(data_dir: Path) -> Path:
    return locations.keys_dir(data_dir) / "pii.key"


def read_key(path: Path) -> bytes:
    return read_key_file(path, JournalError)


def create_key(path: Path, randbytes: Callable[[int], bytes] = os.urandom) -> bytes:
    """Create the key file atomically; if another process won the race, use its key."""
    return create_key_file(path, JournalError, randbytes=randbytes)


class PiiCipher(FieldCipher):
    """AES-GCM over single values, with the value's location as associated data; errors are ``JournalError``."""

    def __init__(self, key: bytes, *, randbytes: Callable[[int], bytes] = os.urandom) -> None:
        super().__init__(key, domain=AAD_DOMAIN, error=JournalError, randbytes=randbytes)

    @classmethod
    def from_key_file(cls, path: Path, *, create: bool = True) -> PiiCipher:
        if create and not path.exists():
            return cls(create_key(path))
        return cls(read_key(path))
