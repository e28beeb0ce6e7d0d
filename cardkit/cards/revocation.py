"""Revoked and held cards: signed delta updates from the ledger, merged into a compact local list.

Wire (a delta, COSE_Sign1 by the root key, content type ``application/cardpos-revocation-delta+cbor``), body:
``{1: from_version, 2: to_version, 3: {reason: ids}, 4: held ids, 5: unheld ids}`` where each ``ids`` is a byte
string of 8-byte card ids back to back (a million ids is 8 MB, not a million CBOR items).

Local (``RevocationList``): an open-addressing hash table of 8-byte card ids (``array('Q')``, linear probing,
Fibonacci hashing, load factor at most 0.7) with one status byte per slot, so a lookup is O(1) and a million
revoked ids take 2**21 slots x 9 bytes = 18.9 MB. Revocation is permanent; a hold can be lifted (the slot stays,
status "none", and is dropped on the next resize). ``to_bytes`` stores the table zlib-compressed (empty slots
compress away), so loading is a decompress and two memcpys, not a million inserts.
"""

from __future__ import annotations

import re
import struct
import sys
import zlib
from array import array
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.cards.signed_doc import open_document, sign_document
from cardkit.cards.verdict import RejectReason
from cardkit.errors import CardError

CONTENT_TYPE = "application/cardpos-revocation-delta+cbor"
ID_BYTES = 8
MAX_REASON_CHARS = 32
MAX_REASONS = 253  # status bytes 2..255 name a reason; further distinct reasons are stored as "other"
OTHER_REASON = "other"
MIN_BITS = 10
MAX_BITS = 28  # 268M slots: far beyond any real list, bounds what from_bytes will allocate
MAX_LOAD = 0.7

_NONE, _HELD, _REVOKED = 0, 1, 2  # slot status; _REVOKED + i = revoked for reason i
_GOLDEN = 0x9E3779B97F4A7C15  # 2**64 / golden ratio: Fibonacci hashing spreads sequential ids
_M64 = (1 << 64) - 1
_CARD_ID = re.compile(r"[0-9a-f]{16}")
_HEADER = struct.Struct("<4sBBBxQ")  # magic, format, bits, status of the all-zero id, pad, list version
_MAGIC = b"CPRL"
_FORMAT = 1


class RevocationVersionError(CardError):
    """A delta does not start at this list's version: fetch the list again from version 0."""


@dataclass(frozen=True, slots=True)
class RevocationDelta:
    from_version: int
    to_version: int
    revoked: tuple[tuple[str, str], ...] = ()  # (card_id, reason)
    held: tuple[str, ...] = ()
    unheld: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for v in (self.from_version, self.to_version):
            if type(v) is not int or v < 0:
                raise CardError("revocation versions must be whole numbers")
        if self.to_version < self.from_version:
            raise CardError("a revocation delta cannot go back in version")
        ids = [card_id for card_id, _ in self.revoked] + list(self.held) + list(self.unheld)
        if not all(type(i) is str and _CARD_ID.fullmatch(i) for i in ids):
            raise CardError("revocation deltas name cards by 16 lowercase hex characters")
        for _, reason in self.revoked:
            if type(reason) is not str or not 1 <= len(reason) <= MAX_REASON_CHARS or not reason.isprintable():
                raise CardError(f"a revocation reason is 1 to {MAX_REASON_CHARS} printable characters")
        if set(self.held) & set(self.unheld):
            raise CardError("a revocation delta cannot both hold and unhold one card")


def sign_revocation_delta(delta: RevocationDelta, root_key: Ed25519PrivateKey) -> bytes:
    by_reason: dict[str, list[bytes]] = {}
    for card_id, reason in delta.revoked:
        by_reason.setdefault(reason, []).append(bytes.fromhex(card_id))
    body = {1: delta.from_version, 2: delta.to_version,
            3: {reason: b"".join(ids) for reason, ids in by_reason.items()},
            4: b"".join(bytes.fromhex(i) for i in delta.held),
            5: b"".join(bytes.fromhex(i) for i in delta.unheld)}
    return sign_document(body, CONTENT_TYPE, root_key)


def load_revocation_delta(data: bytes, root_public_key: bytes) -> RevocationDelta:
    """Check the root signature and return the delta; raise ``CardError`` on any problem."""
    body = open_document(data, root_public_key, CONTENT_TYPE, "revocation delta")
    try:
        if not isinstance(body, dict) or body.keys() != {1, 2, 3, 4, 5} or not isinstance(body[3], dict):
            raise ValueError("wrong keys")
        revoked = tuple((card_id, reason) for reason, blob in body[3].items() for card_id in _split_ids(blob))
        return RevocationDelta(from_version=body[1], to_version=body[2], revoked=revoked,
                               held=tuple(_split_ids(body[4])), unheld=tuple(_split_ids(body[5])))
    except (ValueError, TypeError, AttributeError, CardError) as exc:
        raise CardError("the revocation delta has an unexpected layout", orig=exc) from exc


def _split_ids(blob: object) -> list[str]:
    if type(blob) is not bytes or len(blob) % ID_BYTES:
        raise ValueError("card ids must be packed 8-byte strings")
    return [blob[i:i + ID_BYTES].hex() for i in range(0, len(blob), ID_BYTES)]


class RevocationList:
    """The terminal's merged revocation/hold list at one version. Not thread-safe: one writer, swap on update."""

    __slots__ = ("_bits", "_held", "_keys", "_mask", "_reason_index", "_reasons", "_revoked", "_shift",
                 "_status", "_used", "_zero", "version")

    def __init__(self, version: int = 0, *, bits: int = MIN_BITS) -> None:
        self.version = version
        self._reasons: list[str] = [OTHER_REASON]
        self._reason_index: dict[str, int] = {OTHER_REASON: 0}
        self._zero = _NONE  # status of the all-zero card id, which cannot live in the table (0 = empty slot)
        self._alloc(bits)

    def _alloc(self, bits: int) -> None:
        self._bits = bits
        self._mask = (1 << bits) - 1
        self._shift = 64 - bits
        self._keys = array("Q", [0]) * (1 << bits)  # repetition allocates exactly; array(bytes) over-allocates 1/16
        self._status = bytearray(1 << bits)
        self._used = 0  # occupied slots, including lifted holds
        self._revoked = 0
        self._held = 0

    # -- lookups -------------------------------------------------------------------------------------------
    def status(self, card_id: str) -> RejectReason | None:
        """``REVOKED``, ``ON_HOLD`` or None (the card is fine) in O(1)."""
        code = self._code(_card_int(card_id))
        if code == _NONE:
            return None
        return RejectReason.ON_HOLD if code == _HELD else RejectReason.REVOKED

    def reason(self, card_id: str) -> str | None:
        """Why a revoked card was revoked (None if it is not revoked)."""
        code = self._code(_card_int(card_id))
        return self._reasons[code - _REVOKED] if code >= _REVOKED else None

    @property
    def revoked_count(self) -> int:
        return self._revoked + (self._zero >= _REVOKED)

    @property
    def held_count(self) -> int:
        return self._held + (self._zero == _HELD)

    def _code(self, key: int) -> int:
        if key == 0:
            return self._zero
        keys = self._keys
        i = ((key * _GOLDEN) & _M64) >> self._shift
        while True:  # ends: the table is never more than 70% full, so an empty slot comes first
            k = keys[i]
            if k == key:
                return self._status[i]
            if k == 0:
                return _NONE
            i = (i + 1) & self._mask

    # -- updates -------------------------------------------------------------------------------------------
    def apply(self, delta: RevocationDelta) -> None:
        """Merge ``delta``; raise ``RevocationVersionError`` (nothing changed) if it does not start here."""
        if delta.from_version != self.version:
            raise RevocationVersionError(
                f"revocation delta starts at version {delta.from_version} but this terminal has version "
                f"{self.version}; fetch the list again from version 0")
        # Make room for every new id first: one resize at most, and nothing is half-applied if it fails.
        self._reserve(len(delta.revoked) + len(delta.held))
        put = self._put
        codes: dict[str, int] = {}
        for card_id, reason in delta.revoked:
            code = codes.get(reason)
            if code is None:
                code = codes[reason] = _REVOKED + self._reason_code(reason)
            put(int(card_id, 16), code)
        for card_id in delta.held:
            put(int(card_id, 16), _HELD)
        for card_id in delta.unheld:
            put(int(card_id, 16), _NONE)
        self.version = delta.to_version

    def _reason_code(self, reason: str) -> int:
        code = self._reason_index.get(reason)
        if code is None:
            if len(self._reasons) >= MAX_REASONS:
                return 0
            code = len(self._reasons)
            self._reasons.append(reason)
            self._reason_index[reason] = code
        return code

    def _put(self, key: int, code: int) -> None:
        """Set one id's status; the caller reserved room (``_reserve``), so the table never fills up here."""
        if key == 0:
            if self._zero < _REVOKED:
                self._zero = code
            return
        keys, mask = self._keys, self._mask
        i = ((key * _GOLDEN) & _M64) >> self._shift
        while True:  # ends: the table is at most 70% full
            k = keys[i]
            if k == key:
                break
            if k == 0:
                if code == _NONE:
                    return  # lifting a hold that was never there
                keys[i] = key
                self._used += 1
                break
            i = (i + 1) & mask
        status = self._status
        old = status[i]
        if old >= _REVOKED:
            return  # revocation is permanent: a later hold or unhold does not undo it
        self._held += (code == _HELD) - (old == _HELD)
        self._revoked += code >= _REVOKED
        status[i] = code

    def _reserve(self, incoming: int) -> None:
        if self._used + incoming <= MAX_LOAD * len(self._status):
            return
        live = [(k, s) for k, s in zip(self._keys, self._status, strict=True) if k and s != _NONE]
        bits = MIN_BITS
        while len(live) + incoming + 1 > (1 << bits) // 2:  # resize to at most half full, so inserts stay cheap
            bits += 1
        if bits > MAX_BITS:
            raise CardError("the revocation list is larger than this terminal supports")
        self._alloc(bits)
        keys, status, mask, shift = self._keys, self._status, self._mask, self._shift
        for key, code in live:
            i = ((key * _GOLDEN) & _M64) >> shift
            while keys[i]:
                i = (i + 1) & mask
            keys[i] = key
            status[i] = code
        self._used = len(live)
        self._held = sum(1 for _, code in live if code == _HELD)
        self._revoked = len(live) - self._held

    # -- storage -------------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The local file form (``documents/revocations.bin``)."""
        keys = array("Q", self._keys)
        if sys.byteorder == "big":
            keys.byteswap()
        reasons = "\n".join(self._reasons).encode("utf-8")
        head = _HEADER.pack(_MAGIC, _FORMAT, self._bits, self._zero, self.version)
        body = zlib.compress(struct.pack("<I", len(reasons)) + reasons + keys.tobytes() + bytes(self._status), 6)
        return head + body

    @classmethod
    def from_bytes(cls, data: bytes) -> RevocationList:
        """Load ``to_bytes`` output; raise ``CardError`` if the file is damaged."""
        try:
            magic, fmt, bits, zero, version = _HEADER.unpack_from(data)
            if magic != _MAGIC or fmt != _FORMAT or not MIN_BITS <= bits <= MAX_BITS:
                raise ValueError("not a revocation list file")
            slots = 1 << bits
            limit = 4 + MAX_REASONS * (MAX_REASON_CHARS * 4 + 1) + slots * (ID_BYTES + 1)
            inflater = zlib.decompressobj()
            body = inflater.decompress(data[_HEADER.size:], limit)
            if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
                raise ValueError("revocation list body has the wrong length")
            (reasons_len,) = struct.unpack_from("<I", body)
            reasons = body[4:4 + reasons_len].decode("utf-8").split("\n")
            table = body[4 + reasons_len:]
            if len(table) != slots * (ID_BYTES + 1) or not 1 <= len(reasons) <= MAX_REASONS:
                raise ValueError("revocation list body has the wrong length")
        except (struct.error, zlib.error, ValueError) as exc:
            raise CardError("the stored revocation list is damaged; fetch it again from the ledger", orig=exc) from exc
        rl = cls(version)
        rl._bits, rl._mask, rl._shift = bits, slots - 1, 64 - bits
        rl._keys = array("Q", [0]) * slots
        memoryview(rl._keys).cast("B")[:] = table[:slots * ID_BYTES]
        if sys.byteorder == "big":
            rl._keys.byteswap()
        rl._status = bytearray(table[slots * ID_BYTES:])
        rl._reasons = reasons
        rl._reason_index = {reason: i for i, reason in enumerate(reasons)}
        rl._zero = zero
        rl._used = slots - rl._keys.count(0)
        rl._held = rl._status.count(_HELD)
        rl._revoked = slots - rl._status.count(_NONE) - rl._held
        if (rl._used > MAX_LOAD * slots or rl._held + rl._revoked > rl._used or zero >= _REVOKED + len(reasons)
                or max(rl._status, default=0) >= _REVOKED + len(reasons)):
            raise CardError("the stored revocation list is damaged; fetch it again from the ledger")
        return rl


def _card_int(card_id: str) -> int:
    if type(card_id) is not str or not _CARD_ID.fullmatch(card_id):
        raise CardError("a card id is 16 lowercase hex characters")
    return int(card_id, 16)
