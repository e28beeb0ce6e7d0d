"""The trust list: which issuer keys a terminal accepts, signed by the ledger's root key.

Body (deterministic CBOR): ``{1: version, 2: issuer, 3: [[kid, issuer, public_key(32), not_before, not_after,
retired_at or null], ...]}``; protected header content type ``application/cardpos-trust-list+cbor``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.cards.keys import IssuerKey
from cardkit.cards.signed_doc import open_document, sign_document
from cardkit.errors import CardError

CONTENT_TYPE = "application/cardpos-trust-list+cbor"


@dataclass(frozen=True, slots=True)
class TrustList:
    version: int
    issuer: str
    keys: tuple[IssuerKey, ...]

    def __post_init__(self) -> None:
        if type(self.version) is not int or self.version < 0:
            raise CardError("trust list version must be a whole number")
        if type(self.issuer) is not str or not self.issuer:
            raise CardError("trust list must name its issuer")
        kids = [key.kid for key in self.keys]
        if len(set(kids)) != len(kids):
            raise CardError("trust list names one key id twice")

    def key(self, kid: str) -> IssuerKey | None:
        for key in self.keys:
            if key.kid == kid:
                return key
        return None


def sign_trust_list(tl: TrustList, root_key: Ed25519PrivateKey) -> bytes:
    body = {1: tl.version, 2: tl.issuer, 3: [[k.kid, k.issuer, k.public_key, k.not_before, k.not_after, k.retired_at]
                                             for k in tl.keys]}
    return sign_document(body, CONTENT_TYPE, root_key)


def load_trust_list(data: bytes, root_public_key: bytes) -> TrustList:
    """Check the root signature and return the trust list; raise ``CardError`` on any problem."""
    body = open_document(data, root_public_key, CONTENT_TYPE, "trust list")
    try:
        if not isinstance(body, dict) or body.keys() != {1, 2, 3}:
            raise ValueError("wrong keys")
        keys = tuple(_key(row) for row in body[3])
        return TrustList(version=body[1], issuer=body[2], keys=keys)
    except (ValueError, TypeError, CardError) as exc:
        raise CardError("the trust list has an unexpected layout", orig=exc) from exc


def _key(row: Any) -> IssuerKey:
    if not isinstance(row, list | tuple) or len(row) != 6:
        raise ValueError("issuer key entry must have six fields")
    kid, issuer, public_key, not_before, not_after, retired_at = row
    return IssuerKey(kid=kid, issuer=issuer, public_key=public_key, not_before=not_before, not_after=not_after,
                     retired_at=retired_at)
