"""Canonical CBOR a column at a time: how the ledger rebuilds the hash-chain body of every entry of a batch.

cbor2 (6.x) spends about half a microsecond on each ``dumps`` call and a microsecond on each array it meets, so
one ``dumps`` per entry body was most of a batch's decode. Here each column of a batch (one payload field, the
sequence numbers, the clocks) is encoded once for all its rows, in C-level loops: ``struct`` packing when a
column's integers all take the same head size, a table lookup per distinct value otherwise; an entry's body is
then its pieces joined (``cardkit.envelope.decode_entries``).

The bytes are canonical CBOR (RFC 8949 §4.2.1: shortest heads, definite lengths), exactly what
``cbor2.dumps(value, canonical=True)`` writes, for the values taken here: integers within CBOR's 64-bit heads,
text, bytes, booleans, null and lists of these. A value holding a map (whose keys canonical CBOR sorts), any other
type or a larger integer is not taken: the functions answer ``None`` and the caller encodes with cbor2.
tests/unit/test_column_cbor.py holds every path to cbor2's bytes.
"""

from __future__ import annotations

import functools
import operator
import struct
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from itertools import compress, repeat
from typing import Any

UINT64_LIMIT = 1 << 64
"""Integers from ``-UINT64_LIMIT`` to ``UINT64_LIMIT - 1`` have a plain CBOR head; beyond are bignum tags."""

_HEAD_BOUNDS = (24, 1 << 8, 1 << 16, 1 << 32, UINT64_LIMIT)
"""Argument bounds of the head sizes: below 24 in the initial byte, then 1, 2, 4 and 8 bytes after it."""
_HEAD_PACKERS = (struct.Struct(">B"), struct.Struct(">BB"), struct.Struct(">BH"), struct.Struct(">BI"),
                 struct.Struct(">BQ"))
_HEAD_INFO = (0, 24, 25, 26, 27)
_TINY = {value: bytes((value if value >= 0 else 0x20 | ~value,)) for value in range(-24, 24)}
"""The one-byte integers, -24 to 23."""

MAJOR_UINT, MAJOR_NEGINT, MAJOR_BYTES, MAJOR_TEXT, MAJOR_ARRAY, MAJOR_MAP = range(6)
_FALSE, _TRUE, _NULL = b"\xf4", b"\xf5", b"\xf6"
_EMPTY_ARRAY = b"\x80"
_HASHABLE_SCALARS = frozenset({int, str, bytes, bool, type(None)})


def head(major: int, arg: int) -> bytes:
    """The shortest head of ``major`` type with argument ``arg`` (0 <= arg < 2**64)."""
    initial = major << 5
    if arg < 24:
        return bytes((initial | arg,))
    size = bisect_right(_HEAD_BOUNDS, arg)
    return _HEAD_PACKERS[size].pack(initial | _HEAD_INFO[size], arg)


def text(value: str) -> bytes:
    """Canonical CBOR of a text string."""
    raw = value.encode()
    return head(MAJOR_TEXT, len(raw)) + raw


def encode(value: Any) -> bytes | None:
    """Canonical CBOR of one map-free value, or None when it is not one this module takes."""
    kind = type(value)
    if kind is str:
        return text(value)
    if kind is int:
        if value >= 0:
            return head(MAJOR_UINT, value) if value < UINT64_LIMIT else None
        return head(MAJOR_NEGINT, ~value) if ~value < UINT64_LIMIT else None
    if kind is bool:
        return _TRUE if value else _FALSE
    if value is None:
        return _NULL
    if kind is bytes:
        return head(MAJOR_BYTES, len(value)) + value
    if kind is list:
        parts = [head(MAJOR_ARRAY, len(value))]
        for item in value:
            encoded = encode(item)
            if encoded is None:
                return None
            parts.append(encoded)
        return b"".join(parts)
    return None


def encode_column(values: Sequence[Any]) -> list[bytes] | None:
    """``[encode(v) for v in values]``, in C-level loops where the column allows; None if any value is not taken."""
    encoded = column_pieces(values)
    return [encoded] * len(values) if isinstance(encoded, bytes) else encoded


def column_pieces(values: Sequence[Any]) -> bytes | list[bytes] | None:
    """Like ``encode_column``, but one ``bytes`` when every value of the column encodes alike (a currency, a flag
    that never changes): ``join_rows`` then folds it into the pieces around it."""
    types = set(map(type, values))
    if types == {int}:
        return _int_pieces(values)
    if types <= _HASHABLE_SCALARS and not (bool in types and int in types):  # True == 1: one table key
        table: dict[Any, bytes] = {}
        for value in set(values):
            encoded = encode(value)
            if encoded is None:
                return None
            table[value] = encoded
        if len(table) == 1:
            return next(iter(table.values()))
        return list(map(table.__getitem__, values))
    if types == {list} and not any(values):
        return _EMPTY_ARRAY
    out = list(map(encode, values))
    return None if None in out else out  # type: ignore[return-value]


def join_rows(pieces: Sequence[bytes | Sequence[bytes]], n: int) -> list[bytes]:
    """Row ``i`` is every piece joined in order, a ``bytes`` piece as it is, a sequence piece by its ``i``-th item
    (each holds ``n``). Neighbouring ``bytes`` pieces are joined once, not once per row."""
    merged: list[bytes | Sequence[bytes]] = []
    for piece in pieces:
        if isinstance(piece, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += piece
        else:
            merged.append(piece)
    if len(merged) == 1 and isinstance(merged[0], bytes):
        return [merged[0]] * n
    columns = [repeat(piece) if isinstance(piece, bytes) else piece for piece in merged]
    return list(map(b"".join, zip(*columns)))  # noqa: B905  (the repeat() pieces are endless)


def int_column(values: Sequence[int]) -> list[bytes] | None:
    """The canonical CBOR of each integer of ``values`` (all exactly ``int``), or None if one needs a bignum."""
    encoded = _int_pieces(values)
    return [encoded] * len(values) if isinstance(encoded, bytes) else encoded


def _int_pieces(values: Sequence[int]) -> bytes | list[bytes] | None:
    if not values:
        return []
    low, high = min(values), max(values)
    if high >= UINT64_LIMIT or ~low >= UINT64_LIMIT:
        return None
    if low == high:
        return _encode_int(low)
    low_class, high_class = bisect_right(_CLASS_BOUNDS, low), bisect_right(_CLASS_BOUNDS, high)
    if low_class == high_class:  # one head for the whole column
        return list(_packed(low_class, values))
    if low >= 0 and high < 1 << 16:
        return list(map(_uint16_table().__getitem__, values))
    # Heads of several sizes (a clock passing 2**32, amounts past 65535, signs mixed): each class of values is
    # packed apart, then taken back in the column's order.
    classes = list(map(bisect_right, repeat(_CLASS_BOUNDS), values))
    packed: list[Iterator[bytes]] = [iter(())] * (len(_CLASS_BOUNDS) + 1)
    for value_class in set(classes):
        packed[value_class] = _packed(value_class, compress(values, map(value_class.__eq__, classes)))
    return list(map(next, map(packed.__getitem__, classes)))


_CLASS_BOUNDS = (-(1 << 32), -(1 << 16), -(1 << 8), -24, 0, 24, 1 << 8, 1 << 16, 1 << 32)
"""Integers by the head they take, ``bisect_right(_CLASS_BOUNDS, value)``: classes 0 to 4 are negative with an
8, 4, 2, 1 or 0-byte argument after the initial byte, 5 to 9 non-negative with a 0, 1, 2, 4 or 8-byte one."""
_TINY_CLASSES = (4, 5)


def _packed(value_class: int, values: Iterable[int]) -> Iterator[bytes]:
    """The encodings of ``values``, all of ``value_class``."""
    if value_class in _TINY_CLASSES:
        return map(_TINY.__getitem__, values)
    if value_class < 5:
        size = 4 - value_class
        return map(_HEAD_PACKERS[size].pack, repeat(MAJOR_NEGINT << 5 | _HEAD_INFO[size]),
                   map(operator.invert, values))
    size = value_class - 5
    return map(_HEAD_PACKERS[size].pack, repeat(MAJOR_UINT << 5 | _HEAD_INFO[size]), values)


def _encode_int(value: int) -> bytes:
    return head(MAJOR_UINT, value) if value >= 0 else head(MAJOR_NEGINT, ~value)


@functools.cache
def _uint16_table() -> list[bytes]:
    """Every integer from 0 to 65535 encoded (about 3 MB, made once): amounts and counts of a column that mixes
    head sizes are mostly here."""
    return [_encode_int(value) for value in range(1 << 16)]
