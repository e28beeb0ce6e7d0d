"""The journal: durable appends, the hash chain, sync positions, history lookups, PII at rest."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardkit.errors import JournalError
from cardkit.journal import GENESIS_HASH, verify_chain
from cardkit.locations import terminal_db
from terminal.offline.journal import entry_size
from terminal.offline.store import TerminalStore
from tests.fixtures.offline import TEST_TERMINAL_ID, ManualClock


def sale(card: str = "card-1", member: str = "m-1", net: int = 1250) -> dict[str, object]:
    return {"card": card, "member": member, "cur": "CNY", "gross": net, "tier_disc": 0, "coupon_disc": 0,
            "pts_disc": 0, "net": net, "tender": "cash", "sv": 0, "pts_earn": net // 100, "pts_redeem": 0,
            "coupons": [], "offline": True}


def raw(store: TerminalStore) -> sqlite3.Connection:
    """A second, plain sqlite3 connection: what someone with the file and the sqlite3 CLI would see."""
    return sqlite3.connect(terminal_db(store.data_dir))


def test_first_entry_links_to_genesis_and_sequence_starts_at_one(terminal_store: TerminalStore) -> None:
    entry = terminal_store.journal.append("sale", sale(), "cashier-1")
    assert (entry.seq, entry.prev_hash, entry.terminal_id) == (1, GENESIS_HASH, TEST_TERMINAL_ID)
    assert entry.verify_hash()
    assert terminal_store.journal.last_seq == 1


def test_entries_read_back_equal_what_was_appended(terminal_store: TerminalStore) -> None:
    journal = terminal_store.journal
    written = [journal.append("sale", sale(net=100 * i), f"cashier-{i % 2}") for i in range(1, 8)]
    read = journal.entries()
    assert [e.seq for e in read] == list(range(1, 8))
    assert [(e.uuid, e.hash, e.payload, e.cashier_id) for e in read] == [
        (e.uuid, e.hash, e.payload, e.cashier_id) for e in written
    ]
    assert verify_chain(read) is None
    assert journal.verify_chain() is None
    assert [e.seq for e in journal.entries(after_seq=3, limit=2)] == [4, 5]


def test_append_survives_reopening_the_database(open_store: Callable[..., TerminalStore]) -> None:
    store = open_store()
    entry = store.journal.append("topup", {"card": "c", "member": "m", "cur": "CNY", "amount": 50000,
                                           "bonus": 5000, "tender": "cash", "offline": True}, "cashier-1")
    store.close()
    again = open_store()
    assert again.journal.entries() == [entry]


def test_tuples_become_lists_and_floats_are_refused(terminal_store: TerminalStore) -> None:
    journal = terminal_store.journal
    entry = journal.append("sale", {**sale(), "coupons": ("cp-1", "cp-2")}, None)
    assert entry.payload["coupons"] == ["cp-1", "cp-2"]
    assert journal.entries()[0].hash == entry.hash
    with pytest.raises(JournalError, match="float"):
        journal.append("sale", {**sale(), "net": 12.5}, None)
    with pytest.raises(JournalError, match="keys must be strings"):
        journal.append("sale", {1: "x"}, None)  # type: ignore[dict-item]
    assert journal.last_seq == 1  # refused entries used no sequence number


def test_duplicate_uuid_is_refused_and_records_nothing(data_dir: Path, offline_clock: ManualClock) -> None:
    store = TerminalStore.open(data_dir, TEST_TERMINAL_ID, clock_ms=offline_clock.now_ms,
                               mono_ns=offline_clock.mono_ns, new_uuid=lambda: "6d1f4a52-3c55-4c5e-9b43-0b5b7b0f0c11")
    try:
        store.journal.append("sale", sale(), None)
        with pytest.raises(JournalError, match="already in the journal"):
            store.journal.append("sale", sale(), None)
        assert store.journal.last_seq == 1
        assert store.journal.verify_chain() is None
    finally:
        store.close()


def test_wall_clock_going_backwards_keeps_order_by_sequence(
    terminal_store: TerminalStore, offline_clock: ManualClock
) -> None:
    journal = terminal_store.journal
    first = journal.append("sale", sale(), None)
    offline_clock.jump_wall(-3_600_000)  # NTP pulls the clock back an hour
    second = journal.append("sale", sale(), None)
    assert second.wall_ms < first.wall_ms
    assert second.mono_ns > first.mono_ns
    assert [e.uuid for e in journal.entries()] == [first.uuid, second.uuid]
    assert journal.verify_chain() is None


def test_clock_behind_reports_a_backwards_jump(terminal_store: TerminalStore, offline_clock: ManualClock) -> None:
    journal = terminal_store.journal
    assert journal.clock_behind_ms() == 0  # empty journal
    journal.append("sale", sale(), None)
    assert journal.clock_behind_ms() == 0
    offline_clock.jump_wall(-90_000)
    assert journal.clock_behind_ms() == 90_000
    offline_clock.advance(120_000)
    assert journal.clock_behind_ms() == 0


def test_mark_synced_only_moves_forward_and_never_deletes(terminal_store: TerminalStore) -> None:
    journal = terminal_store.journal
    for _ in range(5):
        journal.append("sale", sale(), None)
    assert (journal.synced_seq, journal.queue_depth) == (0, 5)
    assert journal.mark_synced(3) == 3
    assert journal.mark_synced(2) == 3  # a late, older ack does not move the mark back
    assert (journal.synced_seq, journal.queue_depth) == (3, 2)
    assert [e.seq for e in journal.unsynced(max_bytes=1 << 20)] == [4, 5]
    assert len(journal.entries()) == 5
    with pytest.raises(JournalError, match="journal ends at 5"):
        journal.mark_synced(6)
    assert journal.synced_seq == 3


def test_unsynced_respects_the_byte_budget_but_always_returns_one(terminal_store: TerminalStore) -> None:
    journal = terminal_store.journal
    entries = [journal.append("sale", sale(), None) for _ in range(10)]
    size = entry_size(entries[0])
    assert [e.seq for e in journal.unsynced(max_bytes=3 * size + size // 2)] == [1, 2, 3]
    assert [e.seq for e in journal.unsynced(max_bytes=1)] == [1]
    assert len(journal.unsynced(max_bytes=1 << 30)) == 10
    journal.mark_synced(10)
    assert journal.unsynced(max_bytes=1 << 30) == []


def test_unsynced_streams_past_one_chunk(terminal_store: TerminalStore) -> None:
    journal = terminal_store.journal
    for i in range(1_203):
        journal.append("cashier_event", {"event": "sign_in", "cashier": f"c{i}"}, None)
    batch = journal.unsynced(max_bytes=1 << 30)
    assert [e.seq for e in batch] == list(range(1, 1_204))
    assert journal.verify_chain() is None


def test_history_by_card_and_member(terminal_store: TerminalStore) -> None:
    journal = terminal_store.journal
    journal.append("sale", sale(card="A", member="m-a"), None)
    journal.append("sale", sale(card="B", member="m-b"), None)
    journal.append("card_reject", {"reason": "revoked", "card": "A", "kid": None, "manual": False}, None)
    journal.append("member_update", {"member": "m-a", "notes": "likes tea"}, None)
    journal.append("shift_open", {"shift": "s1"}, None)
    assert [e.seq for e in journal.entries_for_card("A")] == [3, 1]
    assert [e.seq for e in journal.entries_for_card("A", limit=1)] == [3]
    assert [e.seq for e in journal.entries_for_member("m-a")] == [4, 1]
    assert [e.seq for e in journal.entries_for_member("m-a", None, after_seq=1, newest_first=False)] == [4]
    assert journal.entries_for_card("nobody") == []


def test_get_by_uuid(terminal_store: TerminalStore) -> None:
    entry = terminal_store.journal.append("sale", sale(), None)
    assert terminal_store.journal.get(entry.uuid) == entry
    assert terminal_store.journal.get("00000000-0000-4000-8000-000000000000") is None


def test_member_update_notes_and_prefs_are_encrypted_at_rest(terminal_store: TerminalStore) -> None:
    payload = {"member": "m-1", "notes": "allergic to peanuts", "prefs": {"lang": "zh", "receipt": "email"}}
    entry = terminal_store.journal.append("member_update", payload, "cashier-1")
    with raw(terminal_store) as conn:
        stored_payload, pii = conn.execute("SELECT payload, pii FROM journal WHERE seq = 1").fetchone()
    assert cbor2.loads(stored_payload) == {"member": "m-1"}
    assert b"peanuts" not in pii and b"email" not in pii
    assert terminal_store.journal.entries()[0].payload == payload
    assert terminal_store.journal.entries()[0].hash == entry.hash  # the chain covers the plaintext


def test_journal_rows_cannot_be_updated_or_deleted(terminal_store: TerminalStore) -> None:
    terminal_store.journal.append("sale", sale(), None)
    with raw(terminal_store) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE journal SET kind = 'topup' WHERE seq = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM journal WHERE seq = 1")


def _tamper(store: TerminalStore, sql: str, params: tuple[object, ...] = ()) -> None:
    """Edit the file as an attacker with the sqlite3 CLI would: drop the guard triggers, then change rows."""
    conn = raw(store)
    try:
        conn.execute("DROP TRIGGER journal_no_update")
        conn.execute("DROP TRIGGER journal_no_delete")
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("sql", "params", "broken"),
    [
        ("UPDATE journal SET payload = ? WHERE seq = 3", (cbor2.dumps({"card": "x", "net": 1}),), 3),
        ("UPDATE journal SET wall_ms = wall_ms + 1 WHERE seq = 2", (), 2),
        ("UPDATE journal SET cashier_id = 'mallory' WHERE seq = 4", (), 4),
        ("DELETE FROM journal WHERE seq = 3", (), 3),
        # Flip the last ciphertext byte (appending a fixed x'00' changed nothing when the byte already was 0x00).
        ("UPDATE journal SET pii = substr(pii, 1, length(pii) - 1) || "
         "CASE WHEN substr(pii, -1) = x'00' THEN x'01' ELSE x'00' END WHERE seq = 5", (), 5),
    ],
)
def test_verify_chain_finds_the_first_tampered_entry(
    terminal_store: TerminalStore, sql: str, params: tuple[object, ...], broken: int
) -> None:
    journal = terminal_store.journal
    for _ in range(4):
        journal.append("sale", sale(), "cashier-1")
    journal.append("member_update", {"member": "m-1", "notes": "n"}, None)
    journal.append("sale", sale(), "cashier-1")
    assert journal.verify_chain() is None
    _tamper(terminal_store, sql, params)
    assert journal.verify_chain() == broken


def test_a_database_belongs_to_one_terminal(open_store: Callable[..., TerminalStore]) -> None:
    open_store().journal.append("sale", sale(), None)
    with pytest.raises(JournalError, match="belongs to terminal"):
        open_store(terminal_id="T-OTHER")


def test_concurrent_writers_never_share_or_skip_a_sequence(open_store: Callable[..., TerminalStore]) -> None:
    """Two handles on one file (the app and `cardpos terminal op`), appending from two threads."""
    stores = [open_store(), open_store()]
    errors: list[BaseException] = []

    def writer(store: TerminalStore, n: int) -> None:
        try:
            for i in range(n):
                store.journal.append("sale", sale(net=i + 1), None)
        except BaseException as exc:  # reported below; a thread must not swallow failures
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(store, 40)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    journal = open_store().journal
    assert [e.seq for e in journal.entries()] == list(range(1, 81))
    assert journal.verify_chain() is None


payloads = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20) | st.binary(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    ),
    max_size=6,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.sampled_from(["sale", "member_update", "sync"]), payloads), max_size=12))
def test_any_payload_round_trips_and_the_chain_holds(
    open_store: Callable[..., TerminalStore], tmp_path_factory: pytest.TempPathFactory,
    ops: list[tuple[str, dict[str, object]]],
) -> None:
    store = open_store(tmp_path_factory.mktemp("journal"))
    journal = store.journal
    written = []
    for kind, payload in ops:
        if kind == "sync":
            journal.mark_synced(journal.last_seq)
            continue
        written.append(journal.append(kind, payload, None))
    assert journal.entries() == written
    assert journal.verify_chain() is None
    assert journal.queue_depth == len(journal.unsynced(max_bytes=1 << 30))
    assert journal.synced_seq + journal.queue_depth == journal.last_seq == len(written)


@settings(max_examples=300, deadline=None)
@given(payload=payloads, extra_keys=st.lists(st.text(max_size=30), max_size=6))
def test_fast_encoding_equals_the_contract_encoding(payload: dict[str, object], extra_keys: list[str]) -> None:
    """The append path encodes normalised payloads with plain cbor2.dumps; it must be byte-for-byte canonical."""
    from cardkit.journal import canonical_cbor
    from terminal.offline.journal import _fast_cbor, _normalise

    mixed = {**payload, **{k: {"é" * (i % 3) + k: i} for i, k in enumerate(extra_keys)}}
    normalised = _normalise(mixed, "payload")
    assert _fast_cbor(normalised) == canonical_cbor(mixed)
    assert normalised == mixed


def test_append_hash_matches_make_entry_and_enums_become_plain_values(terminal_store: TerminalStore) -> None:
    import enum

    from cardkit.journal import make_entry

    class Tender(enum.StrEnum):
        CASH = "cash"

    class Level(enum.IntEnum):
        TWO = 2

    entry = terminal_store.journal.append("sale", {"tender": Tender.CASH, "lvl": Level.TWO, "t": (1, 2)}, "c-1")
    assert type(entry.payload["tender"]) is str and type(entry.payload["lvl"]) is int
    twin = make_entry(terminal_id=entry.terminal_id, seq=entry.seq, prev_hash=entry.prev_hash, wall_ms=entry.wall_ms,
                      mono_ns=entry.mono_ns, cashier_id=entry.cashier_id, kind=entry.kind,
                      payload={"tender": "cash", "lvl": 2, "t": [1, 2]}, entry_uuid=entry.uuid)
    assert twin.hash == entry.hash
    assert terminal_store.journal.entries() == [entry]


@pytest.mark.parametrize("given_uuid", ["6D1F4A52-3C55-4C5E-9B43-0B5B7B0F0C11", "6d1f4a523c554c5e9b430b5b7b0f0c11",
                                        "{6d1f4a52-3c55-4c5e-9b43-0b5b7b0f0c11}"])
def test_uuids_are_stored_in_canonical_text(data_dir: Path, offline_clock: ManualClock, given_uuid: str) -> None:
    with TerminalStore.open(data_dir, TEST_TERMINAL_ID, clock_ms=offline_clock.now_ms, mono_ns=offline_clock.mono_ns,
                            new_uuid=lambda: given_uuid) as store:
        entry = store.journal.append("sale", {}, None)
        assert entry.uuid == "6d1f4a52-3c55-4c5e-9b43-0b5b7b0f0c11"
        assert store.journal.get(entry.uuid) == entry


@pytest.mark.parametrize("bad", ["not-a-uuid", "6d1f4a52-3c55-4c5e-9b43-0b5b7b0f0cxz", None])
def test_a_bad_uuid_factory_is_reported(data_dir: Path, offline_clock: ManualClock, bad: str) -> None:
    with TerminalStore.open(data_dir, TEST_TERMINAL_ID, clock_ms=offline_clock.now_ms, mono_ns=offline_clock.mono_ns,
                            new_uuid=lambda: bad) as store:
        with pytest.raises(JournalError, match="not a UUID"):
            store.journal.append("sale", {}, None)
        assert store.journal.last_seq == 0


def test_entry_kind_enum_is_stored_as_plain_text(terminal_store: TerminalStore) -> None:
    from cardkit.journal import EntryKind

    entry = terminal_store.journal.append(EntryKind.TOPUP, {"card": "c", "amount": 100}, None)
    assert type(entry.kind) is str and entry.kind == "topup"
    assert terminal_store.journal.entries() == [entry]


def test_documented_example_vector(data_dir: Path) -> None:
    """The example in docs/offline-store.md, byte for byte."""
    from cardkit.journal import canonical_cbor

    with TerminalStore.open(data_dir, "T-0001", clock_ms=lambda: 1_780_000_000_000, mono_ns=lambda: 5_000_000_000,
                            new_uuid=lambda: "0f0e0d0c-0b0a-4908-8706-050403020100") as store:
        entry = store.journal.append("topup", {"card": "C-1", "member": "M-1", "cur": "CNY", "amount": 50000,
                                               "bonus": 5000, "tender": "cash", "offline": True}, "cashier-1")
        with raw(store) as conn:
            payload, card, member = conn.execute("SELECT payload, card_id, member_id FROM journal").fetchone()
        conn.close()
    payload_hex = ("a76363757263434e59646361726463432d3165626f6e757319138866616d6f756e7419c350666d656d626572634d2d31"
                   "6674656e6465726463617368676f66666c696e65f5")
    assert payload.hex() == payload_hex and (card, member) == ("C-1", "M-1")
    assert canonical_cbor(entry.body()).hex() == (
        "8866542d3030303101500f0e0d0c0b0a490887060504030201001b0000019e704488001b000000012a05f20069636173686965722d3165"
        "746f707570" + payload_hex)
    assert entry.hash.hex() == "493fdb6b8984a493f1182afa23df567e48223311f5ad6707b70560060a1a79e3"
