"""Signed documents a terminal pulls besides the trust list and revocation deltas: rules and member snapshots.

Both are COSE_Sign1 by the ledger root key over deterministic CBOR (``cardkit.cards.signed_doc``), each with its
own content type so one can never be taken for the other. The ledger builds them in ``ledger/publish.py``; the
terminal checks them here before saving or applying anything.

Rules body:            ``Rules.to_mapping()`` (its ``version`` is the ledger's rules version)
Member snapshot body:  ``{"version": V, "since": S, "store": store_id, "members": [snapshot, ...]}``
(each snapshot is what ``MemberCache.apply_snapshot`` takes; see docs/sync-protocol.md).

Member snapshots carry names, phones, emails and notes, so they are **sealed to the terminal** (seal, then sign):
the signed body is ``{"version", "since", "store", "terminal", "suite", "sealed"}`` with ``sealed`` the HPKE
(RFC 9180 base mode, ``cardkit.envelope.SUITES``) ciphertext of the canonical CBOR members list to the HPKE key
the terminal registered at enrollment, ``info = "cardpos-members-v1" 0x00 terminal 0x00 store 0x00 V 0x00 S``.
Sealing inside the signature lets the terminal check the root key's signature over the raw bytes before it
spends any work decrypting or decoding (as the ledger does with batches), and binds the clear header to the
ciphertext twice (signature and ``info``). The cleartext form (``MEMBERS_CONTENT_TYPE``) is only for terminals
enrolled before sealing, when the ledger explicitly allows it (``ledger serve --allow-cleartext-members``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.cards.signed_doc import open_document, sign_document
from cardkit.core.members import Coupon
from cardkit.core.money import Money
from cardkit.core.rules import Rules
from cardkit.envelope import SUITES, HpkePrivateKey, HpkePublicKey, load_hpke_private_key, load_hpke_public_key
from cardkit.errors import CardError, ConfigError, SyncError

RULES_CONTENT_TYPE = "application/cardpos-rules+cbor"
MEMBERS_CONTENT_TYPE = "application/cardpos-members+cbor"
SEALED_MEMBERS_CONTENT_TYPE = "application/cardpos-members-sealed+cbor"
MEMBERS_INFO_PREFIX = b"cardpos-members-v1"
MAX_MEMBERS_DEPTH = 12  # list → member → state → map → list: a few levels, bounded all the same


@dataclass(frozen=True)
class MemberSnapshot:
    version: int
    since: int
    store_id: str
    members: list[dict[str, Any]]


def sign_rules_document(rules: Rules, root_key: Ed25519PrivateKey) -> bytes:
    return sign_document(rules.to_mapping(), RULES_CONTENT_TYPE, root_key)


def load_rules_document(data: bytes, root_public_key: bytes) -> Rules:
    """Check the root signature and every rule; raise ``CardError`` on any problem."""
    body = open_document(data, root_public_key, RULES_CONTENT_TYPE, "rules document")
    if not isinstance(body, dict):
        raise CardError("the rules document has an unexpected layout")
    try:
        return Rules.from_mapping(body)
    except ConfigError as exc:
        raise CardError(f"the rules document is not valid: {exc}", orig=exc) from exc


def sign_member_snapshot(snapshot: MemberSnapshot, root_key: Ed25519PrivateKey) -> bytes:
    body = {"version": snapshot.version, "since": snapshot.since, "store": snapshot.store_id,
            "members": snapshot.members}
    return sign_document(body, MEMBERS_CONTENT_TYPE, root_key)


def load_member_snapshot(data: bytes, root_public_key: bytes) -> MemberSnapshot:
    """Check the root signature and return the snapshot delta; raise ``CardError`` on any problem."""
    body = open_document(data, root_public_key, MEMBERS_CONTENT_TYPE, "member snapshot")
    if not isinstance(body, dict) or body.keys() != {"version", "since", "store", "members"}:
        raise CardError("the member snapshot has an unexpected layout")
    version, since, store_id, members = body["version"], body["since"], body["store"], body["members"]
    if (type(version) is not int or type(since) is not int or not 0 <= since <= version
            or not isinstance(store_id, str) or not isinstance(members, list)
            or not all(isinstance(m, dict) for m in members)):
        raise CardError("the member snapshot has an unexpected layout")
    return MemberSnapshot(version=version, since=since, store_id=store_id, members=members)


def members_info(terminal_id: str, store_id: str, version: int, since: int) -> bytes:
    """HPKE ``info`` of a sealed member snapshot: the ciphertext opens only with the header it was made for."""
    return b"\x00".join((MEMBERS_INFO_PREFIX, terminal_id.encode(), store_id.encode(), str(version).encode(),
                         str(since).encode()))


def seal_member_snapshot(snapshot: MemberSnapshot, root_key: Ed25519PrivateKey, *, terminal_id: str, suite: str,
                         terminal_public_key: HpkePublicKey | bytes) -> bytes:
    """The snapshot sealed to one terminal's HPKE key, then signed by the root key. Raises SyncError when the
    terminal's key does not fit the suite."""
    public = (load_hpke_public_key(suite, terminal_public_key) if isinstance(terminal_public_key, bytes)
              else terminal_public_key)
    plaintext = cbor2.dumps(snapshot.members, canonical=True)
    info = members_info(terminal_id, snapshot.store_id, snapshot.version, snapshot.since)
    try:
        sealed = SUITES[suite].encrypt(plaintext, public, info=info)
    except (TypeError, ValueError) as exc:
        raise SyncError(f"cannot seal member data to terminal {terminal_id}: its {suite} key does not fit",
                        orig=exc) from exc
    body = {"version": snapshot.version, "since": snapshot.since, "store": snapshot.store_id,
            "terminal": terminal_id, "suite": suite, "sealed": sealed}
    return sign_document(body, SEALED_MEMBERS_CONTENT_TYPE, root_key)


def open_sealed_member_snapshot(data: bytes, root_public_key: bytes, *, terminal_id: str, suite: str,
                                private_key: HpkePrivateKey | bytes) -> MemberSnapshot:
    """Check the root signature and that the snapshot is for this terminal, then open it; raise ``CardError``."""
    body = open_document(data, root_public_key, SEALED_MEMBERS_CONTENT_TYPE, "sealed member snapshot")
    if not isinstance(body, dict) or body.keys() != {"version", "since", "store", "terminal", "suite", "sealed"}:
        raise CardError("the sealed member snapshot has an unexpected layout")
    version, since, store_id, sealed = body["version"], body["since"], body["store"], body["sealed"]
    if (type(version) is not int or type(since) is not int or not 0 <= since <= version
            or not isinstance(store_id, str) or not isinstance(sealed, bytes)):
        raise CardError("the sealed member snapshot has an unexpected layout")
    if body["terminal"] != terminal_id or body["suite"] != suite:
        raise CardError(f"the member snapshot is sealed to terminal {body['terminal']!r}, not {terminal_id}")
    try:
        private = load_hpke_private_key(suite, private_key) if isinstance(private_key, bytes) else private_key
        plaintext = SUITES[suite].decrypt(sealed, private,
                                          info=members_info(terminal_id, store_id, version, since))
    except (InvalidTag, ValueError, TypeError, SyncError) as exc:
        raise CardError("the member snapshot does not open with this terminal's member key", orig=exc) from exc
    try:
        members = cbor2.loads(plaintext, max_depth=MAX_MEMBERS_DEPTH, allow_indefinite=False,
                              allow_duplicate_keys=False)
    except Exception as exc:  # cbor2 raises several types; the signature was fine, so this is a ledger bug
        raise CardError("the sealed member snapshot does not decode", orig=exc) from exc
    if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
        raise CardError("the sealed member snapshot has an unexpected layout")
    return MemberSnapshot(version=version, since=since, store_id=store_id, members=members)


def coupon_to_mapping(coupon: Coupon, currency: str) -> dict[str, Any]:
    """A coupon as a member snapshot carries it: amounts in minor units of ``currency``, and ``funder`` (the
    merchant that funds it) when a merchant does."""
    return {"coupon_id": coupon.coupon_id, "currency": currency,
            "amount_off": coupon.amount_off.minor if coupon.amount_off is not None else None,
            "percent_off_bp": coupon.percent_off_bp,
            "min_spend": coupon.min_spend.minor if coupon.min_spend is not None else None,
            "valid_from": coupon.valid_from, "valid_until": coupon.valid_until, "stackable": coupon.stackable,
            **({"funder": coupon.funder} if coupon.funder is not None else {})}


def coupon_from_mapping(data: Mapping[str, Any]) -> Coupon:
    """The inverse of :func:`coupon_to_mapping` (missing optional fields take the coupon's defaults)."""
    currency = str(data.get("currency") or "CNY")
    amount_off = data.get("amount_off")
    min_spend = data.get("min_spend")
    percent = data.get("percent_off_bp")
    return Coupon(
        coupon_id=str(data["coupon_id"]),
        amount_off=Money(int(amount_off), currency) if amount_off is not None else None,
        percent_off_bp=int(percent) if percent is not None else None,
        min_spend=Money(int(min_spend), currency) if min_spend is not None else None,
        valid_from=int(data.get("valid_from", 0)),
        valid_until=int(data.get("valid_until", 2**62)),
        stackable=bool(data.get("stackable", False)),
        funder=str(data["funder"]) if data.get("funder") is not None else None,
    )
