"""The journal entry: the unit of every state change on a terminal and of every batch sent to the ledger.

This module is the contract shared by the terminal journal (``terminal.offline.journal``), the sync batches
(``terminal.sync``) and the ledger ingest (``ledger.ingest``). It is pure: no database, no I/O.

Hash chain: ``hash = SHA-256(prev_hash || canonical_cbor(body))`` where ``body`` is the list
``[terminal_id, seq, uuid_bytes, wall_ms, mono_ns, cashier_id, kind, payload]``. The first entry of a
terminal has ``prev_hash = GENESIS_HASH`` (32 zero bytes). Payloads hold only ints, strs, bools, None,
bytes, lists and str-keyed dicts, so canonical CBOR (RFC 8949 §4.2.1) is well defined.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import repeat
from typing import Any

import cbor2

GENESIS_HASH = bytes(32)


class EntryKind(enum.StrEnum):
    """What an entry records. Payload fields per kind are documented in docs/sync-protocol.md."""

    SALE = "sale"                  # purchase; may spend stored value, earn/redeem points, use coupons
    TOPUP = "topup"                # stored value bought (plus bonus)
    REFUND = "refund"              # (partial) refund linked to an earlier sale by its uuid
    VOID = "void"                  # whole cancellation of an earlier entry by its uuid
    REDEEM = "redeem"              # points redeemed for a gift item outside a sale
    CARD_REJECT = "card_reject"    # a refused card tap: reason, card id if readable
    MEMBER_UPDATE = "member_update"  # notes / preferences edited at the counter
    TIER_UPGRADE = "tier_upgrade"  # member moved to a new tier (card replacement requested)
    MEMBERSHIP_FEE = "membership_fee"  # paid annual membership
    SHIFT_OPEN = "shift_open"
    SHIFT_CLOSE = "shift_close"
    CASHIER_EVENT = "cashier_event"  # sign-in, lockout, supervisor override
    MEMBER_SIGNUP = "member_signup"  # a new member registered at the till (provisional id until the ledger's)


class _DecodeNotes:
    """Room beside an entry's fields for what the ledger's batch decode already worked out about it: not a field,
    so never compared, printed, hashed or copied (``dataclasses.replace`` and pickling drop it)."""

    __slots__ = ("_payload_cbor",)


@dataclass(frozen=True, slots=True)
class JournalEntry(_DecodeNotes):
    terminal_id: str
    seq: int
    uuid: str
    prev_hash: bytes
    wall_ms: int
    mono_ns: int
    cashier_id: str | None
    kind: str
    payload: dict[str, Any]
    hash: bytes

    def body(self) -> list[Any]:
        return entry_body(
            self.terminal_id, self.seq, self.uuid, self.wall_ms, self.mono_ns, self.cashier_id,
            self.kind, self.payload,
        )

    def verify_hash(self) -> bool:
        return chain_hash(self.prev_hash, self.body()) == self.hash


_FIELD_NAMES = tuple(f.name for f in fields(JournalEntry))
_SLOT_SETTERS = tuple(JournalEntry.__dict__[name].__set__ for name in _FIELD_NAMES)
_SET_PAYLOAD_CBOR = _DecodeNotes.__dict__["_payload_cbor"].__set__


def build_entries(columns: Mapping[str, Sequence[Any]], n: int, *,
                  payload_cbor: Sequence[bytes | None] | None = None) -> list[JournalEntry]:
    """``n`` entries from one sequence of ``n`` values per field (``columns[field name]``): the same frozen objects
    ``JournalEntry(...)`` makes, built a field at a time.

    A frozen dataclass's ``__init__`` sets each of the ten fields through ``object.__setattr__``, about a
    microsecond per entry; here each field's slot descriptor is applied over its whole column in one C-level loop
    (the ledger builds every entry of a batch this way, ``cardkit.envelope.decode_entries``). Nothing else is
    skipped: ``__init__`` does no checking or conversion either.

    ``payload_cbor``: each payload's plain CBOR (``cbor2.dumps(entry.payload)``) where the caller has it, kept for
    ``payload_cbor(entry)``; like ``hash``, it holds only while nobody changes the payload, and nobody may."""
    if set(columns) != set(_FIELD_NAMES) or any(len(column) != n for column in columns.values()) or (
            payload_cbor is not None and len(payload_cbor) != n):
        raise ValueError(f"build_entries needs {n} values for each of the fields {', '.join(_FIELD_NAMES)}")
    entries: list[JournalEntry] = list(map(object.__new__, repeat(JournalEntry, n)))
    for name, set_slot in zip(_FIELD_NAMES, _SLOT_SETTERS, strict=True):
        deque(map(set_slot, entries, columns[name]), maxlen=0)
    if payload_cbor is not None:
        deque(map(_SET_PAYLOAD_CBOR, entries, payload_cbor), maxlen=0)
    return entries


def payload_cbor(entry: JournalEntry) -> bytes | None:
    """The payload's plain CBOR, ``cbor2.dumps(entry.payload)``, when the batch decode that built the entry had it
    (it encodes every payload without maps inside for the hash chain), else None."""
    return getattr(entry, "_payload_cbor", None)


def entry_body(
    terminal_id: str,
    seq: int,
    entry_uuid: str,
    wall_ms: int,
    mono_ns: int,
    cashier_id: str | None,
    kind: str,
    payload: dict[str, Any],
) -> list[Any]:
    return [terminal_id, seq, uuid.UUID(entry_uuid).bytes, wall_ms, mono_ns, cashier_id, kind, payload]


def canonical_cbor(value: Any) -> bytes:
    return cbor2.dumps(value, canonical=True)


def chain_hash(prev_hash: bytes, body: list[Any]) -> bytes:
    return hashlib.sha256(prev_hash + canonical_cbor(body)).digest()


def make_entry(
    *,
    terminal_id: str,
    seq: int,
    prev_hash: bytes,
    wall_ms: int,
    mono_ns: int,
    cashier_id: str | None,
    kind: str,
    payload: dict[str, Any],
    entry_uuid: str,
) -> JournalEntry:
    body = entry_body(terminal_id, seq, entry_uuid, wall_ms, mono_ns, cashier_id, kind, payload)
    return JournalEntry(
        terminal_id=terminal_id, seq=seq, uuid=entry_uuid, prev_hash=prev_hash, wall_ms=wall_ms,
        mono_ns=mono_ns, cashier_id=cashier_id, kind=kind, payload=payload,
        hash=chain_hash(prev_hash, body),
    )


def verify_chain(entries: list[JournalEntry], start_hash: bytes = GENESIS_HASH) -> int | None:
    """Return the seq of the first entry that breaks the chain (hash or link), or None when intact."""
    prev = start_hash
    for entry in entries:
        if entry.prev_hash != prev or not entry.verify_hash():
            return entry.seq
        prev = entry.hash
    return None
