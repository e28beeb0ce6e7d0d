"""Issuer keys: an Ed25519 key with an id, its issuer and the window in which cards may be issued under it.

A card stays verifiable after its key's issuing window ends (cards outlive the window); only retiring the key
(``retired_at``) stops its cards from verifying. The ledger keeps the private halves; terminals only see
``IssuerKey`` records through the signed trust list.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from cardkit.errors import CardError

KEY_BYTES = 32
DAY_S = 86_400
_KID = re.compile(r"[!-~]{1,32}")


@dataclass(frozen=True, slots=True)
class IssuerKey:
    kid: str
    issuer: str
    public_key: bytes  # raw Ed25519, 32 bytes
    not_before: int  # cards may be issued under this key from here (epoch s) ...
    not_after: int  # ... until here
    retired_at: int | None = None  # from this moment cards under this key no longer verify

    def __post_init__(self) -> None:
        if type(self.kid) is not str or not _KID.fullmatch(self.kid):
            raise CardError("issuer key id must be 1 to 32 printable ASCII characters without spaces")
        if type(self.issuer) is not str or not 1 <= len(self.issuer) <= 32 or not self.issuer.isprintable():
            raise CardError("issuer name must be 1 to 32 printable characters")
        if type(self.public_key) is not bytes or len(self.public_key) != KEY_BYTES:
            raise CardError("issuer public key must be 32 bytes (raw Ed25519)")
        times = [self.not_before, self.not_after] + ([] if self.retired_at is None else [self.retired_at])
        if any(type(t) is not int or t < 0 for t in times):
            raise CardError("issuer key times must be whole epoch seconds")
        if self.not_after < self.not_before:
            raise CardError("issuer key window ends before it starts")

    def is_retired(self, now: int) -> bool:
        return self.retired_at is not None and now >= self.retired_at

    def may_issue(self, issued_at: int) -> bool:
        """True when a card issued at ``issued_at`` falls in this key's issuing window."""
        return self.not_before <= issued_at <= self.not_after

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (public key as hex), e.g. for the ledger's store."""
        return {"kid": self.kid, "issuer": self.issuer, "public_key": self.public_key.hex(),
                "not_before": self.not_before, "not_after": self.not_after, "retired_at": self.retired_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IssuerKey:
        try:
            return cls(kid=data["kid"], issuer=data["issuer"], public_key=bytes.fromhex(data["public_key"]),
                       not_before=data["not_before"], not_after=data["not_after"],
                       retired_at=data.get("retired_at"))
        except (KeyError, TypeError, ValueError) as exc:
            raise CardError("issuer key record is incomplete or damaged", orig=exc) from exc


def check_can_issue(key: IssuerKey, now: int) -> None:
    """Raise ``CardError`` unless a card may be issued under ``key`` at ``now`` (for the ledger)."""
    if key.is_retired(now):
        raise CardError(f"issuer key {key.kid} is retired; issue under the current key")
    if not key.may_issue(now):
        raise CardError(f"issuer key {key.kid} is outside its issuing window; rotate to a new key")


def generate_issuer_key(kid: str, issuer: str, *, now: int, valid_days: int,
                        randbytes: Callable[[int], bytes] | None = None) -> tuple[Ed25519PrivateKey, IssuerKey]:
    """A new issuer key that may issue cards from ``now`` for ``valid_days`` days.

    ``randbytes`` (32 bytes of seed) makes keys reproducible in tests; the default is the OS generator.
    """
    if valid_days <= 0:
        raise CardError("an issuer key must be valid for at least one day")
    private = Ed25519PrivateKey.generate() if randbytes is None else private_key_from_bytes(randbytes(KEY_BYTES))
    record = IssuerKey(kid=kid, issuer=issuer, public_key=public_key_bytes(private), not_before=now,
                       not_after=now + valid_days * DAY_S)
    return private, record


def private_key_to_bytes(key: Ed25519PrivateKey) -> bytes:
    """Raw 32-byte seed; store it with ``cardkit.locations.write_private`` (mode 0600), never log it."""
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def private_key_from_bytes(raw: bytes) -> Ed25519PrivateKey:
    if len(raw) != KEY_BYTES:
        raise CardError(f"an Ed25519 private key is {KEY_BYTES} bytes, not {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_from_bytes(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != KEY_BYTES:
        raise CardError(f"an Ed25519 public key is {KEY_BYTES} bytes, not {len(raw)}")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise CardError("the Ed25519 public key is not valid", orig=exc) from exc


def public_key_from_hex(text: str) -> Ed25519PublicKey:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError as exc:
        raise CardError("the public key must be 64 hex characters", orig=exc) from exc
    return public_key_from_bytes(raw)
