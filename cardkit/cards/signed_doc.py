"""Documents the ledger's root key signs (trust list, revocation deltas): COSE_Sign1 over deterministic CBOR.

The protected header carries a content type, so one kind of document can never be taken for another (and a
card token, which has no content type, never for a document).
"""

from __future__ import annotations

from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.cards.cose import ALG_EDDSA, HDR_ALG, HDR_CONTENT_TYPE, CoseError, decode_sign1, sign1, verify_sign1
from cardkit.cards.keys import public_key_from_bytes
from cardkit.errors import CardError

MAX_DEPTH = 16  # rules and member snapshots nest a few levels; bounded all the same


def sign_document(body: Any, content_type: str, root_key: Ed25519PrivateKey) -> bytes:
    payload = cbor2.dumps(body, canonical=True)
    return sign1(payload, {HDR_ALG: ALG_EDDSA, HDR_CONTENT_TYPE: content_type}, root_key)


def open_document(data: bytes, root_public_key: bytes, content_type: str, what: str) -> Any:
    """Check the signature and type of a signed document and return its decoded CBOR body."""
    try:
        msg = decode_sign1(data, strict=True)
    except CoseError as exc:
        raise CardError(f"the {what} is damaged or not a signed document: {exc}", orig=exc) from exc
    if msg.protected.keys() != {HDR_ALG, HDR_CONTENT_TYPE} or msg.protected[HDR_CONTENT_TYPE] != content_type:
        raise CardError(f"the file is not a {what}")
    if not verify_sign1(msg, public_key_from_bytes(root_public_key)):
        raise CardError(f"the {what} signature does not match the ledger root key")
    try:
        body = cbor2.loads(msg.payload, max_depth=MAX_DEPTH, allow_indefinite=False, allow_duplicate_keys=False)
        canonical = cbor2.dumps(body, canonical=True)
    except Exception as exc:  # cbor2 raises several types; the signature was fine, so this is a ledger bug
        raise CardError(f"the {what} body is not valid CBOR", orig=exc) from exc
    if canonical != msg.payload:
        raise CardError(f"the {what} body is not deterministically encoded")
    return body
