"""Documents the ledger's root key signs (trust list, revocation deltas): COSE_Sign1 over deterministic CBOR.

The protected header carries a content type, so one kind of document can never be taken for another (and a
card token, which has no content type, never for a document).
"""

from __future__ import annotations

from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit import cbor_bounds
from cardkit.cards.cose import (
    ALG_EDDSA,
    HDR_ALG,
    HDR_CONTENT_TYPE,
    MAX_MESSAGE_BYTES,
    CoseError,
    decode_sign1,
    sign1,
    verify_sign1,
)
from cardkit.cards.keys import public_key_from_bytes
from cardkit.errors import CardError

MAX_DEPTH = 16  # rules and member snapshots nest a few levels; bounded all the same
BODY_LIMITS = cbor_bounds.CborLimits(max_bytes=MAX_MESSAGE_BYTES, max_depth=MAX_DEPTH, max_items=4_000_000,
                                     max_length=1_000_000)
"""A document body: no floats, tags or big integers; revocation ids travel as packed byte strings, so even a
member snapshot of a large store stays far below the item bounds."""


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
        body = cbor_bounds.loads(msg.payload, BODY_LIMITS)
        canonical = cbor2.dumps(body, canonical=True)
    except cbor_bounds.CborRefused as exc:  # the signature was fine, so this is a ledger bug (or a stolen root key)
        raise CardError(f"the {what} body is not valid CBOR: {exc.reason}", orig=exc) from exc
    except Exception as exc:  # cbor2 raises several types re-encoding; see above
        raise CardError(f"the {what} body is not valid CBOR", orig=exc) from exc
    if canonical != msg.payload:
        raise CardError(f"the {what} body is not deterministically encoded")
    return body
