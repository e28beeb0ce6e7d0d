"""The pre-scan's skipping of runs of like items (``cardkit.cbor_bounds.scan``, a column of equal-sized values
skipped in C) against the item-by-item scan it replaced, kept here as the reference: on columns with runs,
mutated, truncated or extended, and on random bytes, both accept or both refuse with the same reason and offset."""

from __future__ import annotations

import random
from typing import Any

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit import cbor_bounds
from cardkit import envelope as ev


def reference_scan(data: bytes, limits: cbor_bounds.CborLimits) -> None:
    """Check that ``data`` is exactly one CBOR item within ``limits``; raise ``CborRefused`` otherwise.

    One pass, one step per CBOR head; the work is linear in ``len(data)`` whatever the bytes are. Runs of
    small scalars (see ``_skip_table``) take a tight loop; any other head takes the general path below it.
    """
    n = len(data)
    if n > limits.max_bytes:
        raise cbor_bounds.CborRefused(f"{n} bytes is more than the {limits.max_bytes} allowed")
    if n == 0:
        raise cbor_bounds.CborRefused("there is no data")
    max_depth = limits.max_depth
    max_items = limits.max_items
    max_length = limits.max_length
    max_int = limits.max_int
    tags = limits.tags
    value_skip = cbor_bounds._VALUE_SKIP
    key_skip = cbor_bounds._KEY_SKIP
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
                while left:
                    step = value_skip[data[pos]]
                    if not step:
                        break
                    pos += step
                    left -= 1
            if pos > n:
                raise cbor_bounds.CborRefused("a string runs past the end of the data", n)
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
                        raise cbor_bounds.CborRefused("the data ends in the middle of an item", start)
                    arg = int.from_bytes(data[start + 1:pos], "big")
                elif info == 31:
                    raise cbor_bounds.CborRefused("indefinite-length items are not allowed", start)
                else:
                    raise cbor_bounds.CborRefused("a reserved CBOR head is used", start)
                if in_map and not left & 1 and not (major == 3 or (major < 2 and arg <= cbor_bounds.SMALL_KEY_MAX)):
                    raise cbor_bounds.CborRefused("a map key is not text or a small integer", start)
                left -= 1
                if major < 2:  # unsigned / negative integer: the value is arg or -1 - arg
                    if arg > max_int:
                        raise cbor_bounds.CborRefused("an integer is outside the signed 64-bit range", start)
                elif major < 4:  # byte / text string: skip its content
                    if arg > n - pos:
                        raise cbor_bounds.CborRefused("a string runs past the end of the data", start)
                    pos += arg
                elif major < 6:  # array / map
                    if arg > max_length:
                        raise cbor_bounds.CborRefused(
                            f"an array or map of {arg} entries is longer than the {max_length} allowed", start)
                    expected = arg << (major - 4)
                    if expected > n - pos:
                        raise cbor_bounds.CborRefused("an array or map claims more items than there are bytes left",
                                                      start)
                    if expected:
                        items += expected
                        if items > max_items:
                            raise cbor_bounds.CborRefused(f"more than {max_items} data items", start)
                        if len(outer) + 2 > max_depth:
                            raise cbor_bounds.CborRefused(f"nesting deeper than {max_depth} levels", start)
                        outer.append((left, in_map))
                        left = expected
                        in_map = major == 5
                        continue
                elif major == 6:
                    if arg not in tags:
                        raise cbor_bounds.CborRefused(f"tag {arg} is not allowed here", start)
                    items += 1
                    if len(outer) + 2 > max_depth:
                        raise cbor_bounds.CborRefused(f"nesting deeper than {max_depth} levels", start)
                    outer.append((left, in_map))
                    left = 1
                    in_map = False
                    continue
                elif info in cbor_bounds._FLOATS:
                    if not limits.floats:
                        raise cbor_bounds.CborRefused("floating-point numbers are not allowed", start)
                elif info not in (20, 21, 22):
                    raise cbor_bounds.CborRefused("a simple value other than false, true or null", start)
            while not left:
                if not outer:
                    if pos != n:
                        raise cbor_bounds.CborRefused(f"{n - pos} unexpected bytes after the item", pos)
                    return
                left, in_map = outer.pop()
    except IndexError:  # data[pos] past the end: the input stops inside an item
        raise cbor_bounds.CborRefused("the data ends in the middle of an item", n) from None


def outcome(scan: Any, data: bytes, limits: cbor_bounds.CborLimits) -> str | None:
    try:
        scan(data, limits)
    except cbor_bounds.CborRefused as exc:
        return str(exc)
    return None


SMALL = cbor_bounds.CborLimits(max_bytes=1 << 20, max_depth=4, max_items=12_000, max_length=4000)
LIMITS = [ev.PLAINTEXT_LIMITS, SMALL]


def assert_same(data: bytes) -> None:
    for limits in LIMITS:
        assert outcome(cbor_bounds.scan, data, limits) == outcome(reference_scan, data, limits)


def column(rng: random.Random) -> list[Any]:
    """A column with long runs of one item size and a few odd ones out."""
    n = rng.choice([1, 31, 32, 33, 64, 65, 200, 1000, 5000])
    base = rng.choice([0, 5, 30, 300, 70_000, 2**40, -3, -300, True, None, "abc", "C00000123", "x" * 30,
                       b"\x00" * 16, []])
    odd = [1, 24, 255, 256, "ab", "", b"", None, False, [1], {"k": 1}, -(2**63), "y" * 300]
    share = rng.choice([0, 0.01, 0.1, 0.5])
    values = [rng.choice(odd) if rng.random() < share else base for _ in range(n)]
    if rng.random() < 0.1:  # an integer past signed 64 bits somewhere
        values[rng.randrange(n)] = rng.choice([2**63, 2**64 - 1])
    return values


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_columns_with_runs_scan_alike(seed: int) -> None:
    rng = random.Random(seed)
    data = bytearray(cbor2.dumps([column(rng) for _ in range(rng.randint(1, 3))]))
    assert_same(bytes(data))
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        action = rng.random()
        if action < 0.5:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif action < 0.7:
            del data[rng.randrange(len(data)):]
        elif action < 0.85:
            data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 5)))
        else:
            del data[rng.randrange(len(data))]
        assert_same(bytes(data))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 200))
def test_random_bytes_in_a_long_array_scan_alike(data: bytes, length: int) -> None:
    assert_same(bytes([0x98, length]) + data)
    assert_same(data)
