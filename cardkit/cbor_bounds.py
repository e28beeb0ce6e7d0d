"""Bounded CBOR: a linear pre-scan of untrusted bytes before cbor2 builds anything from them.

cbor2's decoder, given hostile bytes, will build whatever they describe: a map of 24,000 big integers that all
hash alike (multiples of 2**61 - 1) takes it seconds of quadratic dict inserts, deep nesting recurses, a tag
runs a semantic decoder. ``scan`` walks the raw bytes once, without building values, and refuses with a reason
anything outside ``CborLimits``: the total size, the nesting depth, the number of data items, the length of any
one array or map, map keys other than text or small integers, integers outside signed 64-bit (the range SQLite and
PostgreSQL store), floats, tags and simple values the schema does not name, indefinite lengths and trailing bytes.
Its cost is linear in the size of the input (one step per CBOR head; string contents are skipped, not read).
``loads`` scans, then lets cbor2 decode: after the scan, cbor2's work is linear too.

The caller still checks the decoded value's shape (a schema): the scan only guarantees that decoding is cheap
and that every value is of a kind the caller expects to handle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cbor2

from cardkit.errors import CardposError

INT64_MAX = (1 << 63) - 1
SMALL_KEY_MAX = (1 << 32) - 1
"""Largest integer map key (as a CBOR head argument): hash(k) == k for these, so no two keys collide."""

_SIMPLE_FALSE, _SIMPLE_TRUE, _SIMPLE_NULL = 20, 21, 22
_FLOATS = (25, 26, 27)


class CborRefused(CardposError):
    """Untrusted CBOR outside its limits or not well formed; ``reason`` says what, ``offset`` where."""

    title = "Malformed data"

    def __init__(self, reason: str, offset: int | None = None, *, orig: BaseException | None = None) -> None:
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"the CBOR data is refused: {reason}{where}", orig=orig)
        self.reason = reason
        self.offset = offset


@dataclass(frozen=True, slots=True)
class CborLimits:
    """What one kind of untrusted CBOR may contain. Every bound is checked by ``scan`` before decoding."""

    max_bytes: int
    """Whole input, in bytes."""
    max_depth: int = 8
    """Nesting: a top-level scalar is depth 1; each array, map or tag adds one level for what it holds."""
    max_items: int = 100_000
    """Data items in total (every key, value, element and tag counts one)."""
    max_length: int = 100_000
    """Entries of any one array or map."""
    tags: frozenset[int] = frozenset()
    """Tags the schema uses (e.g. 18 for COSE_Sign1); any other tag is refused (bignums are tags 2 and 3)."""
    floats: bool = False
    """Half, single and double floats; money never travels as a float."""
    max_int: int = INT64_MAX
    """Largest integer (and largest magnitude - 1 of a negative one): signed 64-bit unless stated."""


def _skip_table(keys: bool) -> bytes:
    """Bytes an item takes when its first byte alone says so and it is always within limits, else 0.

    Small and 8/16/32-bit integers, strings shorter than 24 bytes, and (not as keys) false, true, null and empty
    arrays and maps: the bulk of any document. Everything else goes the slow way through ``_head``.
    """
    table = bytearray(256)
    for initial in range(256):
        major, info = initial >> 5, initial & 0x1F
        if major < 2:
            table[initial] = 1 if info < 24 else (2, 3, 5, 0, 0, 0, 0, 0)[info - 24]
        elif major == 3 or (major == 2 and not keys):
            table[initial] = 1 + info if info < 24 else 0
        elif not keys and (initial in (0x80, 0xA0) or (major == 7 and info in (20, 21, 22))):
            table[initial] = 1
    return bytes(table)


_VALUE_SKIP = _skip_table(keys=False)
_KEY_SKIP = _skip_table(keys=True)
_STEPS = [bytes((step,)) for step in range(256)]
_RUN_MIN = 32
_RUN_MAX = 4096
"""Items of one array skipped together: at least this many before a run is tried, at most this many at once."""


def scan(data: bytes, limits: CborLimits) -> None:
    """Check that ``data`` is exactly one CBOR item within ``limits``; raise ``CborRefused`` otherwise.

    One pass, one step per CBOR head; the work is linear in ``len(data)`` whatever the bytes are. Runs of
    small scalars (see ``_skip_table``) take a tight loop; any other head takes the general path below it.
    """
    n = len(data)
    if n > limits.max_bytes:
        raise CborRefused(f"{n} bytes is more than the {limits.max_bytes} allowed")
    if n == 0:
        raise CborRefused("there is no data")
    max_depth = limits.max_depth
    max_items = limits.max_items
    max_length = limits.max_length
    max_int = limits.max_int
    tags = limits.tags
    value_skip = _VALUE_SKIP
    key_skip = _KEY_SKIP
    # The innermost open container is kept in locals (items still expected, whether it is a map); the ones
    # around it wait on ``outer``. A map expects two items per entry: its key when the count left is even.
    outer: list[tuple[int, bool]] = []
    left = 1
    in_map = False
    items = 1
    pos = 0
    try:
        while True:
            if in_map:
                while left:
                    step = (value_skip if left & 1 else key_skip)[data[pos]]
                    if not step:
                        break
                    pos += step
                    left -= 1
            else:
                window = _RUN_MIN
                next_run = left
                while left:
                    step = value_skip[data[pos]]
                    if not step:
                        break
                    if _RUN_MIN <= left <= next_run:
                        # A run of items of one size (a column of like values) is skipped in C: the initial bytes
                        # every ``step`` bytes from here, translated to item sizes, are all ``step`` as far as the
                        # run goes. The window doubles while runs fill it; after a short run, the next _RUN_MIN
                        # items go one by one, so no input costs much more than the loop below.
                        strided = data[pos:pos + step * min(left, window):step]
                        same = len(strided) - len(strided.translate(value_skip).lstrip(_STEPS[step]))
                        pos += step * same
                        left -= same
                        if same == len(strided):
                            window = min(2 * window, _RUN_MAX)
                        else:
                            window = _RUN_MIN
                            if same < _RUN_MIN:
                                next_run = left - _RUN_MIN
                        continue
                    pos += step
                    left -= 1
            if pos > n:
                raise CborRefused("a string runs past the end of the data", n)
            if left:  # one item the tight loop does not take
                start = pos
                initial = data[pos]
                major = initial >> 5
                info = initial & 0x1F
                if info < 24:
                    arg = info
                    pos += 1
                elif info < 28:
                    pos += 1 + (1 << (info - 24))
                    if pos > n:
                        raise CborRefused("the data ends in the middle of an item", start)
                    arg = int.from_bytes(data[start + 1:pos], "big")
                elif info == 31:
                    raise CborRefused("indefinite-length items are not allowed", start)
                else:
                    raise CborRefused("a reserved CBOR head is used", start)
                if in_map and not left & 1 and not (major == 3 or (major < 2 and arg <= SMALL_KEY_MAX)):
                    raise CborRefused("a map key is not text or a small integer", start)
                left -= 1
                if major < 2:  # unsigned / negative integer: the value is arg or -1 - arg
                    if arg > max_int:
                        raise CborRefused("an integer is outside the signed 64-bit range", start)
                elif major < 4:  # byte / text string: skip its content
                    if arg > n - pos:
                        raise CborRefused("a string runs past the end of the data", start)
                    pos += arg
                elif major < 6:  # array / map
                    if arg > max_length:
                        raise CborRefused(f"an array or map of {arg} entries is longer than the {max_length} allowed",
                                          start)
                    expected = arg << (major - 4)
                    if expected > n - pos:
                        raise CborRefused("an array or map claims more items than there are bytes left", start)
                    if expected:
                        items += expected
                        if items > max_items:
                            raise CborRefused(f"more than {max_items} data items", start)
                        if len(outer) + 2 > max_depth:
                            raise CborRefused(f"nesting deeper than {max_depth} levels", start)
                        outer.append((left, in_map))
                        left = expected
                        in_map = major == 5
                        continue
                elif major == 6:
                    if arg not in tags:
                        raise CborRefused(f"tag {arg} is not allowed here", start)
                    items += 1
                    if len(outer) + 2 > max_depth:
                        raise CborRefused(f"nesting deeper than {max_depth} levels", start)
                    outer.append((left, in_map))
                    left = 1
                    in_map = False
                    continue
                elif info in _FLOATS:
                    if not limits.floats:
                        raise CborRefused("floating-point numbers are not allowed", start)
                elif info not in (_SIMPLE_FALSE, _SIMPLE_TRUE, _SIMPLE_NULL):
                    raise CborRefused("a simple value other than false, true or null", start)
            while not left:
                if not outer:
                    if pos != n:
                        raise CborRefused(f"{n - pos} unexpected bytes after the item", pos)
                    return
                left, in_map = outer.pop()
    except IndexError:  # data[pos] past the end: the input stops inside an item
        raise CborRefused("the data ends in the middle of an item", n) from None


def loads(data: bytes, limits: CborLimits) -> Any:
    """``scan`` then decode with cbor2; raise ``CborRefused`` for anything refused or undecodable.

    After the scan, cbor2 can still refuse text that is not UTF-8 or a map with a key twice; both come back as
    ``CborRefused`` as well.
    """
    scan(data, limits)
    try:
        return cbor2.loads(data, max_depth=limits.max_depth + 1, allow_indefinite=False,
                           allow_duplicate_keys=False)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError) as exc:
        raise CborRefused(f"it does not decode ({exc})", orig=exc) from exc
