"""The ledger's signed answers to a terminal: batch acknowledgements and pull answers (both sides use this module).

The ledger signs each answer with its **root key** — the one key every terminal pins at enrollment — over the texts
of ``cardkit.wire`` (``ack_signature_text``, ``pull_answer_signature_text``), bound to a nonce the terminal chose for
that request. The terminal checks the signature against its pinned root key, with its own terminal id, batch id and
nonce, before it marks any entry synced or saves any document; an answer that fails is ``UnauthenticAnswer`` and
changes nothing. Specification: docs/sync-protocol.md, "Signed answers".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cardkit import wire
from cardkit.errors import SyncError

_HEX = re.compile(r"(?:[0-9a-f]{2})*")
HASH_BYTES = 32
SIGNATURE_BYTES = 64


class UnauthenticAnswer(SyncError):
    """An answer that is not signed by the ledger for this request: nothing in it is believed."""

    title = "Answer not authentic"


@dataclass(frozen=True)
class Ack:
    """What a signed acknowledgement states: the ledger holds this terminal's entries up to ``acked_seq``, the
    last of them with hash ``last_hash``; ``quarantined`` seqs were recorded without effect."""

    terminal_id: str
    batch_id: str
    acked_seq: int
    last_hash: bytes
    quarantined: tuple[int, ...] = ()


@dataclass(frozen=True)
class PullAnswer:
    """A verified pull answer: the ledger's version of each document kind and each document's bytes (or None)."""

    versions: dict[str, int]
    documents: dict[str, bytes | None]


def new_nonce() -> bytes:
    """A fresh nonce for one request (from the OS generator, never from a seeded one)."""
    return secrets.token_bytes(wire.NONCE_BYTES)


def parse_nonce(text: str | None) -> bytes | None:
    """The nonce of a request as the ledger reads it: ``b""`` when absent, None when not lowercase hex of at most
    ``wire.MAX_NONCE_BYTES`` bytes."""
    if text is None or text == "":
        return b""
    if len(text) > 2 * wire.MAX_NONCE_BYTES or not _HEX.fullmatch(text):
        return None
    return bytes.fromhex(text)


def _is_int(value: object) -> bool:
    return type(value) is int


def _hex_field(answer: Mapping[str, Any], name: str, size: int, what: str) -> bytes:
    value = answer.get(name)
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.fullmatch(value):
        raise UnauthenticAnswer(f"the {what} is not signed by the ledger for this request (no valid {name}); "
                                "nothing in it was believed")
    return bytes.fromhex(value)


def _check(signature: bytes, text: bytes, root_public_key: bytes, what: str) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(root_public_key).verify(signature, text)
    except (InvalidSignature, ValueError) as exc:
        raise UnauthenticAnswer(f"the {what} is not signed by the ledger for this request; nothing in it was "
                                "believed", orig=exc) from exc


# -- acknowledgements -------------------------------------------------------------------------------------------
def ack_fields(ack: Ack, nonce: bytes, root_key: Ed25519PrivateKey) -> dict[str, str]:
    """The JSON fields a signed acknowledgement adds to the answer: ``last_hash`` and ``signature`` (hex)."""
    text = wire.ack_signature_text(ack.terminal_id, ack.batch_id, nonce, ack.acked_seq, ack.last_hash,
                                   ack.quarantined)
    return {"last_hash": ack.last_hash.hex(), "signature": root_key.sign(text).hex()}


def verify_ack(answer: Mapping[str, Any], root_public_key: bytes, *, terminal_id: str, batch_id: str,
               nonce: bytes) -> Ack:
    """Check a batch answer (200, or a ``sequence_gap`` refusal) against the request it answers; raise
    ``UnauthenticAnswer`` unless it is the ledger's signature over this terminal, batch and nonce."""
    acked = answer.get("acked_seq")
    quarantined = answer.get("quarantined", [])
    if quarantined is None:
        quarantined = []
    if not isinstance(acked, int) or isinstance(acked, bool) or acked < 0:
        raise UnauthenticAnswer("the ledger's batch answer has no valid acked_seq; nothing was marked synced")
    if not isinstance(quarantined, list) or not all(_is_int(s) and s > 0 for s in quarantined):
        raise UnauthenticAnswer("the ledger's batch answer has a malformed quarantined list; nothing was marked "
                                "synced")
    last_hash = _hex_field(answer, "last_hash", HASH_BYTES, "batch acknowledgement")
    signature = _hex_field(answer, "signature", SIGNATURE_BYTES, "batch acknowledgement")
    ack = Ack(terminal_id=terminal_id, batch_id=batch_id, acked_seq=acked, last_hash=last_hash,
              quarantined=tuple(quarantined))
    _check(signature, wire.ack_signature_text(terminal_id, batch_id, nonce, acked, last_hash, ack.quarantined),
           root_public_key, "batch acknowledgement")
    return ack


# -- pull answers -----------------------------------------------------------------------------------------------
def _digests(documents: Mapping[str, bytes | None]) -> dict[str, bytes | None]:
    return {name: None if documents.get(name) is None else hashlib.sha256(documents[name] or b"").digest()
            for name in wire.PULL_DOCUMENT_FIELDS}


def pull_fields(terminal_id: str, nonce: bytes, versions: Mapping[str, int], documents: Mapping[str, bytes | None],
                root_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The JSON fields a signed pull answer adds: ``versions`` (the ledger's, per kind) and ``signature`` (hex)."""
    ledger_versions = {name: int(versions[name]) for name in wire.PULL_VERSION_NAMES}
    text = wire.pull_answer_signature_text(terminal_id, nonce, ledger_versions, _digests(documents))
    return {"versions": ledger_versions, "signature": root_key.sign(text).hex()}


def verify_pull_answer(answer: Mapping[str, Any], root_public_key: bytes, *, terminal_id: str,
                       nonce: bytes) -> PullAnswer:
    """Check a pull answer against the request it answers and return its documents' bytes; raise
    ``UnauthenticAnswer`` (nothing may be saved) unless the ledger signed exactly these documents for this nonce."""
    versions = answer.get("versions")
    if (not isinstance(versions, dict) or set(versions) != set(wire.PULL_VERSION_NAMES)
            or not all(_is_int(v) and v >= 0 for v in versions.values())):
        raise UnauthenticAnswer("the ledger's pull answer has no valid versions; nothing in it was saved")
    documents: dict[str, bytes | None] = {}
    for name in wire.PULL_DOCUMENT_FIELDS:
        value = answer.get(name)
        if value is None:
            documents[name] = None
            continue
        if not isinstance(value, str):
            raise UnauthenticAnswer(f"the ledger's pull answer has a {name} that is not base64; nothing was saved")
        try:
            documents[name] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UnauthenticAnswer(f"the ledger's pull answer has a {name} that is not base64; nothing was saved",
                                    orig=exc) from exc
    signature = _hex_field(answer, "signature", SIGNATURE_BYTES, "pull answer")
    text = wire.pull_answer_signature_text(terminal_id, nonce, versions, _digests(documents))
    _check(signature, text, root_public_key, "pull answer")
    return PullAnswer(versions={name: int(versions[name]) for name in wire.PULL_VERSION_NAMES}, documents=documents)


def quarantined_list(value: Sequence[int] | None) -> tuple[int, ...]:
    """A ``quarantined`` field as the signed text takes it: absent or null is the empty list."""
    return tuple(value or ())
