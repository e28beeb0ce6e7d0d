"""Sealed sync batches: journal entries → compact CBOR → zlib → HPKE to the ledger → signed by the terminal.

Used by both sides: the terminal seals (``seal_batch``), the ledger opens (``open_batch``). The byte layout is
documented in docs/sync-protocol.md; in short::

    envelope  = CBOR [ body: bstr, signature: bstr(64) ]
    body      = CBOR [ 1, terminal_id, batch_id, suite, ciphertext ]
    signature = Ed25519(terminal key, b"cardpos-batch-sig-v1" || body)
    ciphertext = HPKE base-mode seal(ledger key, info = b"cardpos-batch-v1" 0x00 terminal_id 0x00 batch_id,
                                     zlib(CBOR columns))

The signature is over the exact body bytes, so the ledger checks it before it spends any work decrypting, and
any changed byte anywhere in the envelope is refused. Per-entry hashes are not sent: the ledger recomputes the
chain from the batch's first ``prev_hash`` and checks the result against the batch's last ``hash``.

Hostile bytes: the envelope and body are a fixed layout read by hand (``_parse_outer``: a handful of CBOR heads,
the ids bounded and printable), never a general CBOR decode, so a refused envelope costs a few microseconds
whatever its size; the signature is checked over the raw body bytes before the ciphertext is touched; the
decrypted plaintext goes through ``cardkit.cbor_bounds`` (a linear pre-scan) before cbor2 builds it.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cardkit import cbor_bounds, column_cbor
from cardkit.errors import SyncError
from cardkit.journal import JournalEntry, build_entries

ENVELOPE_VERSION = 1
PLAINTEXT_VERSION = 1
INFO_PREFIX = b"cardpos-batch-v1"
SIGNATURE_CONTEXT = b"cardpos-batch-sig-v1"
DEFAULT_SUITE = "x25519"
# Refuse to inflate more than this: a sealed batch is bounded by SyncSettings.batch_bytes, so a plaintext this
# large can only be an attack on the ledger's memory.
MAX_PLAINTEXT_BYTES = 64 * 1024 * 1024
ZLIB_LEVEL = 1
"""A batch's plaintext is mostly hashes and uuids, which do not compress: level 9 made a 7,142-sale batch 2.6 %
smaller than level 1 (27.7 against 28.4 B per entry) for 17 times the CPU (15.9 against 0.9 µs per entry, the
largest cost of sealing a batch). Any level inflates the same way."""
MAX_ENTRIES = 1_000_000
MAX_ENVELOPE_BYTES = 4 * 1024 * 1024
"""Largest envelope the ledger reads (16x the terminal's default ``SyncSettings.batch_bytes`` of 256 KiB)."""
MAX_ID_BYTES = 64
"""Terminal and batch ids in an envelope: 1 to 64 printable ASCII characters."""
MAX_SUITE_BYTES = 32
MAX_SHAPES = 1024
"""Distinct payload key sets in one batch (a terminal writes a handful, one or two per entry kind)."""
MAX_SHAPE_KEYS = 256
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
PLAINTEXT_LIMITS = cbor_bounds.CborLimits(max_bytes=MAX_PLAINTEXT_BYTES, max_depth=16, max_items=4_000_000,
                                          max_length=MAX_ENTRIES, max_int=(1 << 64) - 1)
"""What a decrypted batch may hold: integers up to CBOR's 64-bit heads (bignums refused as ``malformed``), text or
small-integer map keys, no floats, no tags, at most 16 levels and 4 million items. ``seq``, ``wall_ms`` and
``mono_ns`` are held to signed 64-bit here; a payload integer past signed 64-bit is signed by the terminal, so the
ledger's semantic checks quarantine that one entry (``ledger/semantics.py``) instead of refusing the batch, which
would block the terminal's later entries. The terminal's payloads are far inside (docs/internals.md)."""

_KDF = hpke.KDF.HKDF_SHA256
_AEAD = hpke.AEAD.AES_128_GCM
SUITES: dict[str, hpke.Suite] = {
    "x25519": hpke.Suite(hpke.KEM.X25519, _KDF, _AEAD),
    "mlkem768x25519": hpke.Suite(hpke.KEM.MLKEM768_X25519, _KDF, _AEAD),
}

HpkePublicKey = x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey
HpkePrivateKey = x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey

REJECT_REASONS = frozenset({"unknown_terminal", "bad_signature", "decrypt_failed", "malformed", "broken_chain"})


class BatchRejected(SyncError):
    """A batch the ledger must refuse. ``reason`` is one of REJECT_REASONS (the HTTP error code)."""

    title = "Batch refused"

    def __init__(self, reason: str, message: str, *, terminal_id: str | None = None,
                 orig: BaseException | None = None) -> None:
        super().__init__(message, orig=orig)
        self.reason = reason
        self.terminal_id = terminal_id


@dataclass(frozen=True)
class OpenedBatch:
    terminal_id: str
    batch_id: str
    suite: str
    entries: list[JournalEntry]


# ---------------------------------------------------------------------------------------------------- HPKE keys
# The hybrid key object of ``cryptography`` cannot be serialised, so keys travel as raw bytes:
#   x25519          private: 32 raw bytes              public: 32 raw bytes
#   mlkem768x25519  private: 64-byte ML-KEM seed || 32  public: 1184-byte ML-KEM key || 32


def _check_suite(suite: str) -> hpke.Suite:
    try:
        return SUITES[suite]
    except KeyError:
        raise SyncError(f"unknown HPKE suite {suite!r} (one of: {', '.join(SUITES)})") from None


def generate_hpke_private_key(suite: str = DEFAULT_SUITE) -> bytes:
    """New raw HPKE private key bytes for ``suite`` (the ledger stores these, 0600)."""
    _check_suite(suite)
    x = x25519.X25519PrivateKey.generate().private_bytes_raw()
    if suite == "x25519":
        return x
    return mlkem.MLKEM768PrivateKey.generate().private_bytes_raw() + x


def load_hpke_private_key(suite: str, raw: bytes) -> HpkePrivateKey:
    _check_suite(suite)
    try:
        if suite == "x25519":
            return x25519.X25519PrivateKey.from_private_bytes(raw)
        if len(raw) != 96:
            raise ValueError("expected 96 bytes")
        return hpke.MLKEM768X25519PrivateKey(
            mlkem.MLKEM768PrivateKey.from_seed_bytes(raw[:64]), x25519.X25519PrivateKey.from_private_bytes(raw[64:])
        )
    except ValueError as exc:
        raise SyncError(f"the {suite} HPKE private key is not valid ({len(raw)} bytes)", orig=exc) from exc


def hpke_public_key_bytes(suite: str, private_raw: bytes) -> bytes:
    """The raw public key matching raw private key bytes (what enrollment hands to terminals, as hex)."""
    _check_suite(suite)
    try:
        if suite == "x25519":
            return x25519.X25519PrivateKey.from_private_bytes(private_raw).public_key().public_bytes_raw()
        mk = mlkem.MLKEM768PrivateKey.from_seed_bytes(private_raw[:64])
        xk = x25519.X25519PrivateKey.from_private_bytes(private_raw[64:])
        return mk.public_key().public_bytes_raw() + xk.public_key().public_bytes_raw()
    except ValueError as exc:
        raise SyncError(f"the {suite} HPKE private key is not valid", orig=exc) from exc


def load_hpke_public_key(suite: str, raw: bytes) -> HpkePublicKey:
    _check_suite(suite)
    try:
        if suite == "x25519":
            return x25519.X25519PublicKey.from_public_bytes(raw)
        if len(raw) != 1184 + 32:
            raise ValueError("expected 1216 bytes")
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(raw[:1184]), x25519.X25519PublicKey.from_public_bytes(raw[1184:])
        )
    except ValueError as exc:
        raise SyncError(f"the ledger's {suite} HPKE public key is not valid ({len(raw)} bytes)", orig=exc) from exc


def hpke_info(terminal_id: str, batch_id: str) -> bytes:
    return INFO_PREFIX + b"\x00" + terminal_id.encode() + b"\x00" + batch_id.encode()


# ---------------------------------------------------------------------------------------------- plaintext codec


def _deltas(values: list[int]) -> list[int]:
    return [values[0]] + [b - a for a, b in itertools.pairwise(values)] if values else []


def _dictionary(values: list[Any]) -> tuple[list[Any], list[int]]:
    table: dict[Any, int] = {}
    index = [table.setdefault(v, len(table)) for v in values]
    return list(table), index


def encode_entries(entries: Sequence[JournalEntry], terminal_id: str) -> bytes:
    """Columnar CBOR of a contiguous run of one terminal's entries, zlib-compressed.

    Layout: ``[1, first_seq, first_prev_hash, last_hash, uuids(16·n bytes), wall_ms deltas, mono_ns deltas,
    [cashier table, cashier index], [kind table, kind index], [shape tables, shape index, columns]]``.
    A payload *shape* is its sorted key tuple; each shape stores one column of values per key, so like values
    (amounts, card ids, flags) sit next to each other and compress well.
    """
    if not entries:
        raise SyncError("cannot seal an empty batch")
    first = entries[0]
    prev = first.prev_hash
    for expected_seq, entry in enumerate(entries, start=first.seq):
        if entry.terminal_id != terminal_id:
            raise SyncError(f"entry {entry.seq} belongs to terminal {entry.terminal_id}, not {terminal_id}")
        if entry.seq != expected_seq or entry.prev_hash != prev:
            raise SyncError(f"journal entries to seal are not a contiguous chain at seq {entry.seq}")
        prev = entry.hash
    shapes: dict[tuple[str, ...], int] = {}
    shape_index: list[int] = []
    columns: list[list[list[Any]]] = []
    for entry in entries:
        keys = tuple(sorted(entry.payload))
        idx = shapes.get(keys)
        if idx is None:
            idx = shapes[keys] = len(shapes)
            columns.append([[] for _ in keys])
        shape_index.append(idx)
        for col, key in zip(columns[idx], keys, strict=True):
            col.append(entry.payload[key])
    cashiers = _dictionary([e.cashier_id for e in entries])
    kinds = _dictionary([e.kind for e in entries])
    doc = [
        PLAINTEXT_VERSION,
        first.seq,
        first.prev_hash,
        entries[-1].hash,
        b"".join(uuid.UUID(e.uuid).bytes for e in entries),
        _deltas([e.wall_ms for e in entries]),
        _deltas([e.mono_ns for e in entries]),
        [cashiers[0], cashiers[1]],
        [kinds[0], kinds[1]],
        [[list(k) for k in shapes], shape_index, columns],
    ]
    return zlib.compress(cbor2.dumps(doc), ZLIB_LEVEL)


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_PLAINTEXT_BYTES)
    if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
        raise ValueError("compressed plaintext is truncated, has trailing data or is too large")
    return out


def decode_entries(data: bytes, terminal_id: str) -> list[JournalEntry]:
    """Inverse of ``encode_entries``: rebuild the entries and their hash chain. Raises BatchRejected.

    Every check of the decoded columns runs over a whole column at once (``set(map(type, ...))``, ``min``,
    ``max``: C-level loops), and each entry's canonical body, which its hash covers, is assembled from pieces
    encoded a column at a time (``cardkit.column_cbor``); a payload shape holding maps is encoded by cbor2 instead.
    The refusals, their order and their messages are those of the entry-by-entry decode this replaced
    (tests/unit/test_decode_columns.py keeps that one and compares the two on random and mutated batches).
    """
    try:
        doc = cbor_bounds.loads(_inflate(data), PLAINTEXT_LIMITS)
        if not (isinstance(doc, list) and len(doc) == 10):
            raise ValueError("the plaintext is not a 10-item array")
        (version, first_seq, first_prev, last_hash, uuids, wall_d, mono_d, cashiers, kinds, payloads) = doc
        if version != PLAINTEXT_VERSION:
            raise ValueError(f"plaintext version {version!r}")
        if not isinstance(uuids, bytes):
            raise ValueError("bad header")
        n = len(uuids) // 16
        if not (_is_int(first_seq) and 1 <= first_seq <= INT64_MAX - n and isinstance(first_prev, bytes)
                and len(first_prev) == 32 and isinstance(last_hash, bytes) and len(last_hash) == 32
                and len(uuids) == 16 * n and 0 < n <= MAX_ENTRIES):
            raise ValueError("bad header")
        walls = list(itertools.accumulate(_int_list(wall_d, n)))
        monos = list(itertools.accumulate(_int_list(mono_d, n)))
        if not (min(walls) >= INT64_MIN and max(walls) <= INT64_MAX and min(monos) >= INT64_MIN
                and max(monos) <= INT64_MAX):
            raise ValueError("a wall_ms or mono_ns is outside the signed 64-bit range")
        cashier_table, cashier_index = _dictionary_column(cashiers, n, (str, type(None)))
        kind_table, kind_index = _dictionary_column(kinds, n, (str,))
        if not (isinstance(payloads, list) and len(payloads) == 3):
            raise ValueError("bad payload shapes")
        shape_keys, shape_index, columns = payloads
        if not (isinstance(shape_keys, list) and isinstance(columns, list) and len(columns) == len(shape_keys)
                and len(shape_keys) <= MAX_SHAPES):
            raise ValueError("bad payload shapes")
        _index_list(shape_index, n, len(shape_keys))
        for keys, cols in zip(shape_keys, columns, strict=True):
            if (not isinstance(keys, list) or len(keys) > MAX_SHAPE_KEYS or not all(isinstance(k, str) for k in keys)
                    or len(set(keys)) != len(keys) or not isinstance(cols, list) or len(cols) != len(keys)
                    or not all(isinstance(c, list) for c in cols)):
                raise ValueError("payload columns do not match their shapes")
        rows: Counter[int] = Counter(shape_index)
        if any(len(c) < rows[idx] for idx, cols in enumerate(columns) for c in cols):
            # What the entry-by-entry decode said when a row ran past the end of its column.
            raise IndexError("list index out of range")
        if any(len(c) != rows[idx] for idx, cols in enumerate(columns) for c in cols):
            raise ValueError("payload columns do not match their shapes")
    except BatchRejected:
        raise
    except cbor_bounds.CborRefused as exc:
        raise BatchRejected("malformed", f"the batch from terminal {terminal_id} does not decode: {exc.reason}",
                            terminal_id=terminal_id, orig=exc) from exc
    except (ValueError, TypeError, IndexError, KeyError, zlib.error) as exc:
        raise BatchRejected("malformed", f"the batch from terminal {terminal_id} does not decode: {exc}",
                            terminal_id=terminal_id, orig=exc) from exc
    # Each payload with its keys in canonical CBOR order, shape by shape, then in the entries' order.
    shape_payloads: list[list[dict[str, Any]]] = []
    shape_cbor: list[list[bytes]] = []
    shape_plain_cbor: list[list[bytes] | list[None]] = []
    for idx, (keys, cols) in enumerate(zip(shape_keys, columns, strict=True)):
        order = _canonical_order(keys)
        ordered_keys = [keys[k] for k in order]
        ordered_cols = [cols[k] for k in order]
        if ordered_keys:
            rows_of_shape = zip(*ordered_cols, strict=True)
            payloads_of_shape = list(map(dict, map(zip, itertools.repeat(ordered_keys), rows_of_shape)))
        else:
            payloads_of_shape = [{} for _ in range(rows[idx])]
        shape_payloads.append(payloads_of_shape)
        encoded, plain = _payloads_cbor(ordered_keys, ordered_cols, payloads_of_shape)
        shape_cbor.append(encoded)
        shape_plain_cbor.append(encoded if plain else [None] * len(encoded))
    payload_list = _in_entry_order(shape_payloads, shape_index)
    payload_cbor = _in_entry_order(shape_cbor, shape_index)
    cashier_ids = list(map(cashier_table.__getitem__, cashier_index))
    kind_names = list(map(kind_table.__getitem__, kind_index))
    uuid_bytes = list(map(uuids.__getitem__, map(slice, range(0, 16 * n, 16), range(16, 16 * n + 16, 16))))
    hashes = _chain(first_prev, _bodies(terminal_id, first_seq, uuid_bytes, walls, monos, cashier_table,
                                        cashier_index, kind_table, kind_index, payload_cbor))
    if hashes[-1] != last_hash:
        raise BatchRejected("broken_chain", f"the batch from terminal {terminal_id} does not match its own hash chain",
                            terminal_id=terminal_id)
    return build_entries({"terminal_id": [terminal_id] * n, "seq": range(first_seq, first_seq + n),
                          "uuid": _uuid_texts(uuids), "prev_hash": [first_prev, *hashes[:-1]], "wall_ms": walls,
                          "mono_ns": monos, "cashier_id": cashier_ids, "kind": kind_names, "payload": payload_list,
                          "hash": hashes}, n, payload_cbor=_in_entry_order(shape_plain_cbor, shape_index))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_INT_ONLY = frozenset({int})


def _int_list(value: object, n: int) -> list[int]:
    # Decoded CBOR holds no int subclass but bool, so "exactly int" is _is_int, for a whole column at once.
    if not isinstance(value, list) or len(value) != n or not set(map(type, value)) <= _INT_ONLY:
        raise ValueError("bad integer column")
    return value


def _index_list(value: object, n: int, size: int) -> list[int]:
    """``n`` indexes into a table of ``size`` (a negative index would silently count from the end)."""
    indexes = _int_list(value, n)
    if indexes and (min(indexes) < 0 or max(indexes) >= size):
        raise ValueError("an index points outside its table")
    return indexes


def _dictionary_column(value: object, n: int, types: tuple[type, ...]) -> tuple[list[Any], list[int]]:
    """A ``[table, indexes]`` column of ``n`` rows, checked: (table, indexes)."""
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError("bad dictionary column")
    table, index = value
    if not isinstance(table, list) or not all(isinstance(v, types) for v in table):
        raise ValueError("bad dictionary table")
    return table, _index_list(index, n, len(table))


def _canonical_order(keys: list[str]) -> list[int]:
    """Positions of ``keys`` in canonical CBOR map order (RFC 7049: shorter encodings first, then bytewise)."""
    encoded = [cbor2.dumps(k) for k in keys]
    return sorted(range(len(keys)), key=lambda i: (len(encoded[i]), encoded[i]))


def _payloads_cbor(keys: list[str], columns: list[list[Any]], payloads: list[dict[str, Any]]) -> tuple[list[bytes],
                                                                                                        bool]:
    """The canonical CBOR of each payload of one shape (``keys`` already in canonical order, one column each), and
    whether it is also their plain CBOR (no map inside whose keys canonical CBOR sorts)."""
    pieces: list[bytes | list[bytes]] = [column_cbor.head(column_cbor.MAJOR_MAP, len(keys))]
    for key, column in zip(keys, columns, strict=True):
        encoded = column_cbor.column_pieces(column)
        if encoded is None:  # a map somewhere in the column: cbor2 sorts the keys of nested maps
            return [cbor2.dumps(payload, canonical=True) for payload in payloads], False
        pieces += [column_cbor.text(key), encoded]
    return column_cbor.join_rows(pieces, len(payloads)), True


def _in_entry_order(per_shape: list[list[Any]], shape_index: list[int]) -> list[Any]:
    """Rows kept shape by shape, put back in the entries' order (each shape's rows are in entry order)."""
    if len(per_shape) == 1:
        return per_shape[0]
    rows = list(map(iter, per_shape))
    return list(map(next, map(rows.__getitem__, shape_index)))


def _bodies(terminal_id: str, first_seq: int, uuid_bytes: list[bytes], walls: list[int], monos: list[int],
            cashier_table: list[str | None], cashier_index: list[int], kind_table: list[str], kind_index: list[int],
            payload_cbor: list[bytes]) -> list[bytes]:
    """Each entry's canonical CBOR body ``[terminal_id, seq, uuid, wall_ms, mono_ns, cashier_id, kind, payload]``
    (``cardkit.journal.entry_body``), from the columns: ``seq`` counts up from ``first_seq``."""
    n = len(uuid_bytes)
    head = column_cbor.head
    return column_cbor.join_rows([
        head(column_cbor.MAJOR_ARRAY, 8) + column_cbor.text(terminal_id),
        _int64_pieces(range(first_seq, first_seq + n)), head(column_cbor.MAJOR_BYTES, 16), uuid_bytes,
        _int64_pieces(walls), _int64_pieces(monos), _dictionary_pieces(cashier_table, cashier_index),
        _dictionary_pieces(kind_table, kind_index), payload_cbor], n)


def _int64_pieces(values: Sequence[int]) -> bytes | list[bytes]:
    encoded = column_cbor.column_pieces(values)
    if encoded is None:
        raise AssertionError("a column of signed 64-bit integers was not encoded")
    return encoded


def _dictionary_pieces(table: list[Any], index: list[int]) -> bytes | list[bytes]:
    """The encoded values of a dictionary column (text or null): one per row, or one for all when the table
    holds one value."""
    encoded = [b"\xf6" if value is None else column_cbor.text(value) for value in table]
    return encoded[0] if len(encoded) == 1 else list(map(encoded.__getitem__, index))


def _chain(first_prev: bytes, bodies: list[bytes]) -> list[bytes]:
    """Each entry's hash, ``SHA-256(prev_hash || body)``, from the batch's first ``prev_hash``."""
    sha256 = hashlib.sha256
    hashes: list[bytes] = []
    append = hashes.append
    prev = first_prev
    for body in bodies:
        prev = sha256(prev + body).digest()
        append(prev)
    return hashes


_UUID_TEXT = struct.Struct("8s4s4s4s12s")


def _uuid_texts(uuids: bytes) -> list[str]:
    """The canonical text (``str(uuid.UUID(bytes=...))``: lower-case 8-4-4-4-12 hex) of each 16 bytes of
    ``uuids``, all in C-level loops: hex once, cut into the five groups, joined with dashes."""
    return b"|".join(map(b"-".join, _UUID_TEXT.iter_unpack(uuids.hex().encode()))).decode().split("|")


# ------------------------------------------------------------------------------------------------- seal / open


def seal_batch(
    entries: Sequence[JournalEntry],
    *,
    terminal_id: str,
    batch_id: str,
    terminal_key: Ed25519PrivateKey,
    ledger_public_key: HpkePublicKey | bytes,
    suite: str = DEFAULT_SUITE,
) -> bytes:
    """Seal a contiguous run of this terminal's journal entries for the ledger. Raises SyncError."""
    hpke_suite = _check_suite(suite)
    public = load_hpke_public_key(suite, ledger_public_key) if isinstance(ledger_public_key, bytes) \
        else ledger_public_key
    plaintext = encode_entries(entries, terminal_id)
    try:
        ciphertext = hpke_suite.encrypt(plaintext, public, info=hpke_info(terminal_id, batch_id))
    except (TypeError, ValueError) as exc:
        raise SyncError(f"cannot encrypt the batch with the {suite} suite: the ledger key does not fit",
                        orig=exc) from exc
    body = cbor2.dumps([ENVELOPE_VERSION, terminal_id, batch_id, suite, ciphertext])
    signature = terminal_key.sign(SIGNATURE_CONTEXT + body)
    return cbor2.dumps([body, signature])


def peek_terminal_id(envelope: bytes) -> str | None:
    """The terminal id an envelope claims (unauthenticated; for logs and events only), or None."""
    try:
        return _parse_outer(envelope)[1]
    except BatchRejected:
        return None


def _head(data: bytes, pos: int) -> tuple[int, int, int]:
    """The CBOR head at ``pos``: (major type, argument, position after it). Definite lengths only."""
    initial = data[pos]  # IndexError past the end
    info = initial & 0x1F
    if info < 24:
        return initial >> 5, info, pos + 1
    if info > 27:
        raise ValueError("an indefinite or reserved CBOR length")
    end = pos + 1 + (1 << (info - 24))
    if end > len(data):
        raise ValueError("the envelope ends inside a CBOR head")
    return initial >> 5, int.from_bytes(data[pos + 1:end], "big"), end


def _string(data: bytes, pos: int, major: int, what: str, max_len: int) -> tuple[bytes, int]:
    got, length, start = _head(data, pos)
    if got != major:
        raise ValueError(f"{what} is not a {'byte' if major == 2 else 'text'} string")
    if length > max_len or length > len(data) - start:
        raise ValueError(f"{what} is longer than {min(max_len, len(data) - start)} bytes")
    return data[start:start + length], start + length


def _ident(raw: bytes, what: str, max_len: int) -> str:
    if not raw or len(raw) > max_len or not all(0x21 <= b <= 0x7E for b in raw):
        raise ValueError(f"{what} is not 1 to {max_len} printable ASCII characters")
    return raw.decode("ascii")


def _parse_outer(envelope: bytes) -> tuple[bytes, str, str, str, bytes, bytes]:
    """Read the fixed layout ``[body: bstr, signature: bstr(64)]`` and the body's
    ``[1, terminal_id: tstr, batch_id: tstr, suite: tstr, ciphertext: bstr]`` by their CBOR heads: no general
    CBOR decoder, no map, no number beyond the version ever built from untrusted bytes, and nothing but these
    few heads read before the signature check."""
    try:
        if len(envelope) > MAX_ENVELOPE_BYTES:
            raise ValueError(f"the envelope is larger than {MAX_ENVELOPE_BYTES} bytes")
        major, count, pos = _head(envelope, 0)
        if (major, count) != (4, 2):
            raise ValueError("the envelope is not a 2-item array")
        body, pos = _string(envelope, pos, 2, "the body", MAX_ENVELOPE_BYTES)
        signature, pos = _string(envelope, pos, 2, "the signature", 64)
        if len(signature) != 64:
            raise ValueError("the signature is not 64 bytes")
        if pos != len(envelope):
            raise ValueError(f"{len(envelope) - pos} bytes follow the envelope")
        major, count, pos = _head(body, 0)
        if (major, count) != (4, 5):
            raise ValueError("the body is not a 5-item array")
        major, version, pos = _head(body, pos)
        if (major, version) != (0, ENVELOPE_VERSION):
            raise ValueError(f"the envelope version is not {ENVELOPE_VERSION}")
        raw_terminal, pos = _string(body, pos, 3, "the terminal id", MAX_ID_BYTES)
        raw_batch, pos = _string(body, pos, 3, "the batch id", MAX_ID_BYTES)
        raw_suite, pos = _string(body, pos, 3, "the suite", MAX_SUITE_BYTES)
        ciphertext, pos = _string(body, pos, 2, "the ciphertext", MAX_ENVELOPE_BYTES)
        if pos != len(body):
            raise ValueError(f"{len(body) - pos} bytes follow the body")
        terminal_id = _ident(raw_terminal, "the terminal id", MAX_ID_BYTES)
        batch_id = _ident(raw_batch, "the batch id", MAX_ID_BYTES)
        suite = _ident(raw_suite, "the suite", MAX_SUITE_BYTES)
    except IndexError:
        raise BatchRejected("malformed", "the batch envelope is not valid: it ends in the middle of an item") \
            from None
    except ValueError as exc:
        raise BatchRejected("malformed", f"the batch envelope is not valid: {exc}", orig=exc) from exc
    return body, terminal_id, batch_id, suite, ciphertext, signature


def open_batch(
    envelope: bytes,
    *,
    terminal_key_lookup: Callable[[str], bytes | None],
    hpke_private_keys: Mapping[str, object],
) -> OpenedBatch:
    """Check the terminal's signature, then decrypt and decode. Raises BatchRejected with a reason.

    The envelope is parsed once: a refusal after the layout was read carries the claimed ``terminal_id`` (for
    the record; it is authenticated only from ``bad_signature`` on, i.e. for ``decrypt_failed`` and later).

    ``terminal_key_lookup(terminal_id)`` returns the enrolled raw Ed25519 public key or None for an unknown
    terminal; ``hpke_private_keys`` maps suite name → private key (object or raw bytes).
    """
    body, terminal_id, batch_id, suite, ciphertext, signature = _parse_outer(envelope)
    public_raw = terminal_key_lookup(terminal_id)
    if public_raw is None:
        raise BatchRejected("unknown_terminal", f"terminal {terminal_id} is not enrolled with this ledger",
                            terminal_id=terminal_id)
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, SIGNATURE_CONTEXT + body)
    except (InvalidSignature, ValueError) as exc:
        raise BatchRejected("bad_signature", f"the batch from terminal {terminal_id} is not signed by its key",
                            terminal_id=terminal_id, orig=exc) from exc
    private = hpke_private_keys.get(suite)
    if suite not in SUITES or private is None:
        raise BatchRejected("decrypt_failed", f"this ledger has no key for the HPKE suite {suite!r}",
                            terminal_id=terminal_id)
    if isinstance(private, bytes):
        private = load_hpke_private_key(suite, private)
    try:
        plaintext = SUITES[suite].decrypt(ciphertext, private, info=hpke_info(terminal_id, batch_id))  # type: ignore[arg-type]
    except (InvalidTag, ValueError, TypeError) as exc:
        raise BatchRejected("decrypt_failed", f"the batch from terminal {terminal_id} does not decrypt",
                            terminal_id=terminal_id, orig=exc) from exc
    return OpenedBatch(terminal_id=terminal_id, batch_id=batch_id, suite=suite,
                       entries=decode_entries(plaintext, terminal_id))
