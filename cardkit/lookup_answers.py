"""The ledger's signed answers to a terminal's online look-ups: a member by card, an operation by its uuid.

Both sides use this module (as ``cardkit.answers`` for acks and pulls). Each answer is signed by the ledger's
**root key** over a ``cardkit.wire`` text bound to the nonce the terminal chose for that request, so a replayed
or redirected answer is refused before anything in it is believed (docs/sync-protocol.md, "Members at every
store" and "Refunds anywhere").

- Member look-up: the member's snapshot, sealed to the terminal and signed exactly like a pull's member snapshots
  (``cardkit.pulldocs.seal_member_snapshot``: one member, ``since == version``), plus ``folded_seq``, this
  terminal's last entry the snapshot counts.
- Original operation: a deterministic CBOR document ``{uuid, kind, member, card, terminal, wall_ms, payload,
  refunded, voided}`` — the original as the ledger applied it and what was refunded or voided against it anywhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit import wire
from cardkit.answers import SIGNATURE_BYTES, UnauthenticAnswer, _check, _hex_field

MAX_ORIGINAL_BYTES = 64 * 1024
ORIGINAL_FIELDS = frozenset({"uuid", "kind", "member", "card", "terminal", "wall_ms", "payload", "refunded",
                             "voided"})


@dataclass(frozen=True)
class LookupAnswer:
    """A verified member look-up: the sealed member document (open it with ``cardkit.pulldocs``)."""

    member_id: str
    document: bytes
    folded_seq: int


@dataclass(frozen=True)
class OriginalOperation:
    """An operation as the ledger holds it, and what was refunded (minor units) or voided against it anywhere."""

    uuid: str
    kind: str
    member_id: str
    card_id: str | None
    terminal_id: str
    wall_ms: int
    payload: dict[str, Any]
    refunded: int
    voided: bool

    def to_mapping(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "kind": self.kind, "member": self.member_id, "card": self.card_id,
                "terminal": self.terminal_id, "wall_ms": self.wall_ms, "payload": dict(self.payload),
                "refunded": self.refunded, "voided": self.voided}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(answer: Mapping[str, Any], name: str, what: str) -> bytes:
    value = answer.get(name)
    if not isinstance(value, str):
        raise UnauthenticAnswer(f"the {what} has no {name}; nothing in it was believed")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UnauthenticAnswer(f"the {what} has a {name} that is not base64; nothing in it was believed",
                                orig=exc) from exc


# -- member look-up -----------------------------------------------------------------------------------------------
def lookup_fields(terminal_id: str, nonce: bytes, card_id: str, member_id: str, document: bytes, folded_seq: int,
                  root_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The JSON answer to a member look-up: ``member_id``, ``member`` (b64 sealed document), ``folded_seq`` and
    ``signature`` (hex)."""
    text = wire.lookup_answer_signature_text(terminal_id, nonce, card_id, member_id,
                                             hashlib.sha256(document).digest(), folded_seq)
    return {"member_id": member_id, "member": _b64(document), "folded_seq": folded_seq,
            "signature": root_key.sign(text).hex()}


def verify_lookup_answer(answer: Mapping[str, Any], root_public_key: bytes, *, terminal_id: str, nonce: bytes,
                         card_id: str) -> LookupAnswer:
    """Check a look-up answer against the request it answers; raise ``UnauthenticAnswer`` unless the ledger
    signed exactly this document for this terminal, card and nonce."""
    what = "ledger's member look-up answer"
    member_id, folded_seq = answer.get("member_id"), answer.get("folded_seq")
    if not isinstance(member_id, str) or not member_id or type(folded_seq) is not int or folded_seq < 0:
        raise UnauthenticAnswer(f"the {what} has no valid member_id or folded_seq; nothing in it was believed")
    document = _unb64(answer, "member", what)
    signature = _hex_field(answer, "signature", SIGNATURE_BYTES, what)
    text = wire.lookup_answer_signature_text(terminal_id, nonce, card_id, member_id,
                                             hashlib.sha256(document).digest(), folded_seq)
    _check(signature, text, root_public_key, what)
    return LookupAnswer(member_id=member_id, document=document, folded_seq=folded_seq)


# -- original operation -------------------------------------------------------------------------------------------
def original_fields(terminal_id: str, nonce: bytes, original: OriginalOperation,
                    root_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The JSON answer: ``original`` (b64 canonical CBOR of the operation) and ``signature`` (hex)."""
    document = cbor2.dumps(original.to_mapping(), canonical=True)
    text = wire.original_answer_signature_text(terminal_id, nonce, original.uuid, hashlib.sha256(document).digest())
    return {"original": _b64(document), "signature": root_key.sign(text).hex()}


def verify_original_answer(answer: Mapping[str, Any], root_public_key: bytes, *, terminal_id: str, nonce: bytes,
                           entry_uuid: str) -> OriginalOperation:
    """Check an original-operation answer and decode it; raise ``UnauthenticAnswer``."""
    what = "ledger's original-operation answer"
    document = _unb64(answer, "original", what)
    if len(document) > MAX_ORIGINAL_BYTES:
        raise UnauthenticAnswer(f"the {what} is too large; nothing in it was believed")
    signature = _hex_field(answer, "signature", SIGNATURE_BYTES, what)
    text = wire.original_answer_signature_text(terminal_id, nonce, entry_uuid, hashlib.sha256(document).digest())
    _check(signature, text, root_public_key, what)
    try:
        body = cbor2.loads(document, max_depth=8, allow_indefinite=False, allow_duplicate_keys=False)
    except Exception as exc:  # cbor2 raises several types; the signature was fine, so this is a ledger bug
        raise UnauthenticAnswer(f"the {what} does not decode", orig=exc) from exc
    if not isinstance(body, dict) or set(body) != ORIGINAL_FIELDS:
        raise UnauthenticAnswer(f"the {what} has an unexpected layout")
    uuid, kind, member, card, terminal = (body["uuid"], body["kind"], body["member"], body["card"],
                                          body["terminal"])
    wall_ms, payload, refunded, voided = body["wall_ms"], body["payload"], body["refunded"], body["voided"]
    if (uuid != entry_uuid or not isinstance(kind, str) or not isinstance(member, str)
            or not (card is None or isinstance(card, str)) or not isinstance(terminal, str)
            or type(wall_ms) is not int or not isinstance(payload, dict) or type(refunded) is not int
            or refunded < 0 or type(voided) is not bool):
        raise UnauthenticAnswer(f"the {what} has an unexpected layout")
    return OriginalOperation(uuid=uuid, kind=kind, member_id=member, card_id=card, terminal_id=terminal,
                             wall_ms=wall_ms, payload=payload, refunded=refunded, voided=voided)
