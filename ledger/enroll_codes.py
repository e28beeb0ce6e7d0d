"""What the ledger keeps of a one-time enrollment code: its id, and its MAC key wrapped under a root-derived key.

``ledger terminal add`` makes a code and shows it once. The ledger keeps ``code_id`` (``cardkit.enrollment``) in
``Terminal.enroll_code_hash`` to find the pending enrollment, and in ``PendingEnrollment`` the code's MAC key,
encrypted with AES-256-GCM under ``HKDF-SHA256(root private key, info "cardpos-enroll-v2 code-wrap")`` with
associated data ``"cardpos-enroll-v2" 0x00 terminal_id`` (a wrapped key moved to another terminal's row does not
open). So neither the code nor anything that proves knowledge of it is in the database in clear: a copied
database (a backup) cannot enroll a terminal, while the ledger, holding ``keys/root.key``, can check proofs.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cardkit.enrollment import CODE_SALT, derive_code_keys
from ledger import store
from ledger.errors import LedgerError
from ledger.home import Ledger

WRAP_INFO = b"cardpos-enroll-v2 code-wrap"
NONCE_BYTES = 12


def code_id_hex(code: str) -> str:
    """What ``Terminal.enroll_code_hash`` holds for a code (and what a terminal's request names)."""
    return derive_code_keys(code).code_id.hex()


def _wrap_key(ledger: Ledger) -> AESGCM:
    root = ledger.keys.root().private_bytes_raw()
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=CODE_SALT, info=WRAP_INFO).derive(root))


def _aad(terminal_id: str) -> bytes:
    return CODE_SALT + b"\x00" + terminal_id.encode()


def remember(ledger: Ledger, terminal_id: str, code: str) -> None:
    """Keep the code's wrapped MAC key for ``terminal_id`` (inside the caller's transaction)."""
    nonce = os.urandom(NONCE_BYTES)
    wrapped = nonce + _wrap_key(ledger).encrypt(nonce, derive_code_keys(code).mac_key, _aad(terminal_id))
    store.PendingEnrollment.delete().where(store.PendingEnrollment.terminal_id == terminal_id).execute()
    store.PendingEnrollment.create(terminal_id=terminal_id, wrapped_key=wrapped, failures=0,
                                   created_ms=ledger.now_ms())


def mac_key(ledger: Ledger, pending: store.PendingEnrollment) -> bytes:
    """The code's MAC key of a pending enrollment; raises LedgerError when it does not unwrap (another root
    key, or a row that was moved or changed)."""
    blob = bytes(pending.wrapped_key)
    try:
        return _wrap_key(ledger).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(str(pending.terminal_id)))
    except (InvalidTag, ValueError) as exc:
        raise LedgerError(f"the enrollment code of terminal {pending.terminal_id} does not unwrap with this "
                          "ledger's root key; add the terminal again", orig=exc) from exc
