"""The column-at-a-time batch decode (``cardkit.envelope.decode_entries``) against the entry-by-entry decode it
replaced, kept here as the reference: on random batches, on batches mutated anywhere in their plaintext and on
random bytes, both give the same entries (same payload key order, same stored bytes) or the same refusal (same
reason, same message)."""

from __future__ import annotations

import hashlib
import random
import uuid
import zlib
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardkit import cbor_bounds
from cardkit import envelope as ev
from cardkit.journal import JournalEntry, make_entry, payload_cbor

TID = "T-0001"


# -- the reference: decode_entries as it was before the column-at-a-time rewrite -------------------------------
def _ref_undeltas(deltas: list[int]) -> list[int]:
    out: list[int] = []
    total = 0
    for d in deltas:
        total += d
        out.append(total)
    return out


def _ref_is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ref_int_list(value: object, n: int) -> list[int]:
    if not isinstance(value, list) or len(value) != n or not all(_ref_is_int(v) for v in value):
        raise ValueError("bad integer column")
    return value


def _ref_index_list(value: object, n: int, size: int) -> list[int]:
    indexes = _ref_int_list(value, n)
    if indexes and (min(indexes) < 0 or max(indexes) >= size):
        raise ValueError("an index points outside its table")
    return indexes


def _ref_undictionary(value: object, n: int, types: tuple[type, ...]) -> list[Any]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError("bad dictionary column")
    table, index = value
    if not isinstance(table, list) or not all(isinstance(v, types) for v in table):
        raise ValueError("bad dictionary table")
    return [table[i] for i in _ref_index_list(index, n, len(table))]


def _ref_canonical_order(keys: list[str]) -> list[int]:
    encoded = [cbor2.dumps(k) for k in keys]
    return sorted(range(len(keys)), key=lambda i: (len(encoded[i]), encoded[i]))


_SCALARS = (int, str, bytes, bool, type(None))


def _ref_plain_column(values: list[Any]) -> bool:
    for value in values:
        if type(value) in _SCALARS:
            continue
        if type(value) is list and all(type(item) in _SCALARS for item in value):
            continue
        return False
    return True


def reference_decode_entries(data: bytes, terminal_id: str, *, check_chain: bool = True) -> list[JournalEntry]:
    try:
        doc = cbor_bounds.loads(ev._inflate(data), ev.PLAINTEXT_LIMITS)
        if not (isinstance(doc, list) and len(doc) == 10):
            raise ValueError("the plaintext is not a 10-item array")
        (version, first_seq, first_prev, last_hash, uuids, wall_d, mono_d, cashiers, kinds, payloads) = doc
        if version != ev.PLAINTEXT_VERSION:
            raise ValueError(f"plaintext version {version!r}")
        if not isinstance(uuids, bytes):
            raise ValueError("bad header")
        n = len(uuids) // 16
        if not (_ref_is_int(first_seq) and 1 <= first_seq <= ev.INT64_MAX - n and isinstance(first_prev, bytes)
                and len(first_prev) == 32 and isinstance(last_hash, bytes) and len(last_hash) == 32
                and len(uuids) == 16 * n and 0 < n <= ev.MAX_ENTRIES):
            raise ValueError("bad header")
        walls = _ref_undeltas(_ref_int_list(wall_d, n))
        monos = _ref_undeltas(_ref_int_list(mono_d, n))
        if not (min(walls) >= ev.INT64_MIN and max(walls) <= ev.INT64_MAX and min(monos) >= ev.INT64_MIN
                and max(monos) <= ev.INT64_MAX):
            raise ValueError("a wall_ms or mono_ns is outside the signed 64-bit range")
        cashier_ids = _ref_undictionary(cashiers, n, (str, type(None)))
        kind_names = _ref_undictionary(kinds, n, (str,))
        if not (isinstance(payloads, list) and len(payloads) == 3):
            raise ValueError("bad payload shapes")
        shape_keys, shape_index, columns = payloads
        if not (isinstance(shape_keys, list) and isinstance(columns, list) and len(columns) == len(shape_keys)
                and len(shape_keys) <= ev.MAX_SHAPES):
            raise ValueError("bad payload shapes")
        _ref_index_list(shape_index, n, len(shape_keys))
        for keys, cols in zip(shape_keys, columns, strict=True):
            if (not isinstance(keys, list) or len(keys) > ev.MAX_SHAPE_KEYS or not all(isinstance(k, str) for k in keys)
                    or len(set(keys)) != len(keys) or not isinstance(cols, list) or len(cols) != len(keys)
                    or not all(isinstance(c, list) for c in cols)):
                raise ValueError("payload columns do not match their shapes")
        orders = [_ref_canonical_order(keys) for keys in shape_keys]
        plain_ok = [all(_ref_plain_column(c) for c in cols) for cols in columns]
        cursors = [0] * len(shape_keys)
        payload_list: list[dict[str, Any]] = []
        for idx in shape_index:
            keys = shape_keys[idx]
            cols = columns[idx]
            row = cursors[idx]
            cursors[idx] += 1
            payload_list.append({keys[k]: cols[k][row] for k in orders[idx]})
        if any(len(c) != used for cols, used in zip(columns, cursors, strict=True) for c in cols):
            raise ValueError("payload columns do not match their shapes")
    except ev.BatchRejected:
        raise
    except cbor_bounds.CborRefused as exc:
        raise ev.BatchRejected("malformed", f"the batch from terminal {terminal_id} does not decode: {exc.reason}",
                               terminal_id=terminal_id, orig=exc) from exc
    except (ValueError, TypeError, IndexError, KeyError, zlib.error) as exc:
        raise ev.BatchRejected("malformed", f"the batch from terminal {terminal_id} does not decode: {exc}",
                               terminal_id=terminal_id, orig=exc) from exc
    entries: list[JournalEntry] = []
    prev = first_prev
    for i in range(n):
        uuid_bytes = uuids[16 * i:16 * i + 16]
        seq = first_seq + i
        body = [terminal_id, seq, uuid_bytes, walls[i], monos[i], cashier_ids[i], kind_names[i], payload_list[i]]
        digest = hashlib.sha256(prev + cbor2.dumps(body, canonical=not plain_ok[shape_index[i]])).digest()
        entries.append(JournalEntry(terminal_id=terminal_id, seq=seq, uuid=str(uuid.UUID(bytes=uuid_bytes)),
                                    prev_hash=prev, wall_ms=walls[i], mono_ns=monos[i], cashier_id=cashier_ids[i],
                                    kind=kind_names[i], payload=payload_list[i], hash=digest))
        prev = digest
    if check_chain and prev != last_hash:
        raise ev.BatchRejected("broken_chain", f"the batch from terminal {terminal_id} does not match its own hash "
                               "chain", terminal_id=terminal_id)
    return entries


# -- comparing the two ------------------------------------------------------------------------------------------
def outcome(decode: Any, data: bytes) -> tuple[str, Any]:
    """What a decoder makes of ``data``: ("entries", [...with each payload's key order and plain CBOR]) or
    ("refused", reason, message)."""
    try:
        entries = decode(data, TID)
    except ev.BatchRejected as exc:
        return "refused", (exc.reason, str(exc), exc.terminal_id)
    return "entries", [(e, list(e.payload), cbor2.dumps(e.payload)) for e in entries]


def assert_kept_payload_cbor_is_plain(data: bytes) -> None:
    """What the decode keeps for ``ledger.pii.stored_payload`` is the payload's plain CBOR, or nothing."""
    try:
        entries = ev.decode_entries(data, TID)
    except ev.BatchRejected:
        return
    for entry in entries:
        assert payload_cbor(entry) in (None, cbor2.dumps(entry.payload))


def assert_same(data: bytes) -> tuple[str, Any]:
    reference = outcome(reference_decode_entries, data)
    assert outcome(ev.decode_entries, data) == reference
    assert_kept_payload_cbor_is_plain(data)
    return reference


INT64 = st.integers(-(2**63), 2**63 - 1)
CBOR_INT = st.integers(-(2**64), 2**64 - 1)
HEAD_EDGES = st.sampled_from([0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1, -1, -24,
                              -25, -256, -257, -65536, -65537, -(2**32), -(2**32) - 1, -(2**63), -(2**64)])
scalars = st.one_of(st.none(), st.booleans(), CBOR_INT, HEAD_EDGES, st.text(max_size=30), st.binary(max_size=30))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.one_of(st.text(max_size=5), st.integers(0, 2**32 - 1)), inner,
                                        max_size=3), max_leaves=8)
field_names = st.text(min_size=1, max_size=8)
payloads = st.dictionaries(field_names, values, max_size=6)


def sale(rng: random.Random) -> dict[str, Any]:
    gross = rng.randint(100, 200_000)
    tender = rng.choice(["sv", "cash", "bank_card"])
    payload = {"card": f"C{rng.randint(0, 499):08d}", "member": f"M{rng.randint(0, 499):05d}", "cur": "CNY",
               "gross": gross, "tier_disc": gross // 20, "coupon_disc": 0, "pts_disc": 0, "net": gross - gross // 20,
               "tender": tender, "sv": gross if tender == "sv" else 0, "pts_earn": gross // 100, "pts_redeem": 0,
               "coupons": [] if rng.random() < 0.9 else ["K1"], "offline": rng.random() < 0.3}
    if tender == "sv" and rng.random() < 0.3:
        payload["auth"] = f"{rng.getrandbits(64):016x}"
    return payload


def batch(payload_list: list[dict[str, Any]], *, first_seq: int = 1, walls: list[int] | None = None,
          monos: list[int] | None = None, kinds: list[str] | None = None,
          cashiers: list[str | None] | None = None) -> list[JournalEntry]:
    prev = bytes(range(32))
    entries = []
    for i, payload in enumerate(payload_list):
        entry = make_entry(terminal_id=TID, seq=first_seq + i, prev_hash=prev,
                           wall_ms=walls[i] if walls else 1_760_000_000_000 + 20 * i,
                           mono_ns=monos[i] if monos else 4_000_000_000 + 20_000_000 * i,
                           cashier_id=cashiers[i] if cashiers else "c1", kind=kinds[i] if kinds else "sale",
                           payload=payload, entry_uuid=str(uuid.UUID(int=random.Random(i).getrandbits(128))))
        entries.append(entry)
        prev = entry.hash
    return entries


# -- batches as terminals seal them --------------------------------------------------------------------------------
def test_a_drain_of_sales_decodes_to_the_same_entries() -> None:
    rng = random.Random(5)
    entries = batch([sale(rng) for _ in range(3000)])
    kind, decoded = assert_same(ev.encode_entries(entries, TID))
    assert kind == "entries" and [e for e, _, _ in decoded] == entries
    decoded_here = ev.decode_entries(ev.encode_entries(entries, TID), TID)
    assert all(payload_cbor(e) == cbor2.dumps(e.payload) for e in decoded_here)  # no maps in a sale


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["sale", "refund", "member_update"]), payloads, INT64 | HEAD_EDGES,
                          INT64 | HEAD_EDGES, st.one_of(st.none(), st.text(max_size=5))),
                min_size=1, max_size=25),
       st.integers(1, 2**63 - 30))
def test_any_batch_decodes_to_the_same_entries(rows: list[tuple[str, dict[str, Any], int, int, str | None]],
                                               first_seq: int) -> None:
    if not all(-(2**63) <= w < 2**63 and -(2**63) <= m < 2**63 for _, _, w, m, _ in rows):
        return
    entries = batch([p for _, p, _, _, _ in rows], first_seq=first_seq, walls=[w for _, _, w, _, _ in rows],
                    monos=[m for _, _, _, m, _ in rows], kinds=[k for k, _, _, _, _ in rows],
                    cashiers=[c for _, _, _, _, c in rows])
    kind, decoded = assert_same(ev.encode_entries(entries, TID))
    assert kind == "entries" and [e for e, _, _ in decoded] == entries


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", "bb", "ccc"]), min_size=1, max_size=4, unique=True),
       st.lists(st.one_of(CBOR_INT, HEAD_EDGES, st.booleans()), min_size=1, max_size=40))
def test_columns_mixing_head_sizes_bools_and_ints_decode_alike(keys: list[str], column: list[Any]) -> None:
    """Integer columns whose heads differ in size or sign, with True/False beside 1/0 (equal as dict keys)."""
    entries = batch([{key: column[(i + j) % len(column)] for j, key in enumerate(keys)} for i in range(len(column))])
    kind, _ = assert_same(ev.encode_entries(entries, TID))
    assert kind == "entries"


# -- hostile plaintexts ---------------------------------------------------------------------------------------------
def plaintext_doc(rng: random.Random, n: int = 6) -> list[Any]:
    entries = batch([sale(rng) if rng.random() < 0.7 else {"x": {"b": 1, "a": [2]}, "y": None} for _ in range(n)])
    doc: list[Any] = cbor2.loads(zlib.decompress(ev.encode_entries(entries, TID)))
    return doc


def paths(value: Any, prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Every position inside nested lists (dict values are reached as lists of one)."""
    out = [prefix]
    if isinstance(value, list):
        for i, item in enumerate(value):
            out += paths(item, (*prefix, i))
    return out


REPLACEMENTS = [None, True, False, 0, 1, -1, 2, 24, 2**63, -(2**63) - 1, 2**64 - 1, "", "x", b"", b"\x00" * 16,
                [], [0], [[]], {}, {"a": 1}]


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3))
def test_mutated_plaintexts_get_the_same_refusal_or_entries(seed: int, mutations: int) -> None:
    rng = random.Random(seed)
    doc = plaintext_doc(rng, rng.randint(1, 8))
    for _ in range(mutations):
        where = rng.choice(paths(doc)[1:])
        parent = doc
        for i in where[:-1]:
            parent = parent[i]
        action = rng.random()
        if action < 0.5:
            parent[where[-1]] = rng.choice(REPLACEMENTS)
        elif action < 0.7:
            del parent[where[-1]]
        elif action < 0.85:
            parent.insert(where[-1], rng.choice(REPLACEMENTS))
        else:
            parent[where[-1]] = rng.choice([*REPLACEMENTS, parent[rng.randrange(len(parent))]])
    if rng.random() < 0.5:  # re-seal the chain over what the mutation left, so that a decodable batch is taken
        try:
            entries = reference_decode_entries(zlib.compress(cbor2.dumps(doc)), TID, check_chain=False)
        except ev.BatchRejected:
            pass
        else:
            doc[3] = entries[-1].hash
    assert_same(zlib.compress(cbor2.dumps(doc)))


@pytest.mark.parametrize("mutate", [
    lambda d: d[9][2][0][0].pop(),                              # a payload column one short
    lambda d: d[9][2][0][0].append(0),                          # one long
    lambda d: (d[9][2][0][0].pop(), d[9][2][0][1].append(0)),  # one short, another long
    lambda d: d[9][1].__setitem__(0, True),                     # a bool as a shape index
    lambda d: d[5].__setitem__(0, False),                       # a bool as a wall delta
    lambda d: d.__setitem__(3, bytes(32)),                      # the last hash no longer matches
    lambda d: d[5].__setitem__(1, 2**63),                       # a wall clock past signed 64 bits
    lambda d: d[7][0].__setitem__(0, 5),                        # a cashier that is not text
])
def test_each_way_a_column_breaks_gets_the_same_refusal(mutate: Any) -> None:
    doc = plaintext_doc(random.Random(3))
    mutate(doc)
    kind, _ = assert_same(zlib.compress(cbor2.dumps(doc)))
    assert kind == "refused"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_plaintexts_get_the_same_refusal(data: bytes) -> None:
    assert_same(zlib.compress(data))
