"""``cardkit.column_cbor`` writes exactly cbor2's canonical bytes, value by value and a column at a time, on every
path it takes (one head size, mixed sizes and signs, the 16-bit table, distinct-value tables, lists), and takes
no value holding a map."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit import column_cbor
from cardkit.journal import JournalEntry, build_entries

CBOR_INT = st.integers(-(2**64), 2**64 - 1)
EDGES = [0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63, 2**64 - 1,
         -1, -24, -25, -256, -257, -65536, -65537, -(2**32), -(2**32) - 1, -(2**64)]
ints = st.one_of(CBOR_INT, st.sampled_from(EDGES), st.integers(-30, 30), st.integers(0, 70_000))
scalars = st.one_of(st.none(), st.booleans(), ints, st.text(max_size=300), st.binary(max_size=300))
plain_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5), max_leaves=12)


def canonical(value: Any) -> bytes:
    return cbor2.dumps(value, canonical=True)


@settings(max_examples=500, deadline=None)
@given(plain_values)
def test_one_value_is_cbor2s_canonical_bytes(value: Any) -> None:
    assert column_cbor.encode(value) == canonical(value)


@settings(max_examples=300, deadline=None)
@given(st.lists(plain_values, max_size=30))
def test_a_column_is_each_value_encoded(column: list[Any]) -> None:
    assert column_cbor.encode_column(column) == [canonical(v) for v in column]


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(ints, max_size=60), st.lists(st.integers(0, 2**16 - 1), max_size=60),
                 st.lists(st.integers(-(2**40), -1), max_size=60), st.lists(st.integers(2**31, 2**33), max_size=60)))
def test_an_integer_column_on_every_path(column: list[int]) -> None:
    assert column_cbor.int_column(column) == [canonical(v) for v in column]
    assert column_cbor.encode_column(column) == [canonical(v) for v in column]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.booleans(), st.sampled_from([0, 1, 2])), max_size=20))
def test_true_and_one_stay_apart(column: list[Any]) -> None:
    """True == 1 and hash alike: a table keyed by value would give one of them the other's bytes."""
    assert column_cbor.encode_column(column) == [canonical(v) for v in column]


@pytest.mark.parametrize("value", [{}, {"a": 1}, [1, {"b": 2}], 2**64, -(2**64) - 1, 1.5, (1, 2), bytearray(b"x")])
def test_maps_bignums_and_other_types_are_not_taken(value: Any) -> None:
    assert column_cbor.encode(value) is None
    assert column_cbor.encode_column(["x", value]) is None


def test_integers_past_64_bits_are_not_taken() -> None:
    assert column_cbor.int_column([0, 2**64]) is None
    assert column_cbor.int_column([-(2**64) - 1, 5]) is None
    assert column_cbor.int_column([]) == []


def entry(seq: int) -> JournalEntry:
    return JournalEntry(terminal_id="T-1", seq=seq, uuid=f"00000000-0000-4000-8000-{seq:012d}", prev_hash=bytes(32),
                        wall_ms=seq * 7, mono_ns=-seq, cashier_id=None if seq % 2 else "c1", kind="sale",
                        payload={"n": seq}, hash=bytes([seq % 256]) * 32)


def test_entries_built_a_field_at_a_time_are_the_dataclasses_own() -> None:
    expected = [entry(seq) for seq in range(1, 40)]
    columns = {name: [getattr(e, name) for e in expected] for name in JournalEntry.__dataclass_fields__}
    built = build_entries(columns, len(expected))
    assert built == expected
    assert [repr(e) for e in built] == [repr(e) for e in expected]
    assert all(type(e) is JournalEntry for e in built)
    with pytest.raises(AttributeError):  # still frozen
        built[0].seq = 5  # type: ignore[misc]


def test_build_entries_refuses_columns_that_do_not_fit() -> None:
    columns: dict[str, Any] = {name: [getattr(entry(1), name)] for name in JournalEntry.__dataclass_fields__}
    with pytest.raises(ValueError, match="1 values for each"):
        build_entries({**columns, "seq": []}, 1)
    with pytest.raises(ValueError, match="for each of the fields"):
        build_entries({k: v for k, v in columns.items() if k != "hash"}, 1)


def test_the_kept_payload_cbor_is_no_field() -> None:
    """What ``build_entries`` keeps beside the fields is not compared, printed or copied along."""
    import copy
    import dataclasses
    import pickle

    from cardkit.journal import payload_cbor

    plain = entry(3)
    columns = {name: [getattr(plain, name)] for name in JournalEntry.__dataclass_fields__}
    [kept] = build_entries(columns, 1, payload_cbor=[cbor2.dumps(plain.payload)])
    assert [f.name for f in dataclasses.fields(JournalEntry)] == list(columns)
    assert kept == plain and repr(kept) == repr(plain)
    assert payload_cbor(kept) == cbor2.dumps(plain.payload) and payload_cbor(plain) is None
    for copied in (dataclasses.replace(kept, seq=3), copy.copy(kept), pickle.loads(pickle.dumps(kept))):
        assert copied == plain and payload_cbor(copied) is None
