"""PII at rest: AES-GCM per value, bound to its place; the key file; a copied database reveals nothing."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit.errors import JournalError
from cardkit.locations import terminal_db
from terminal.offline.pii import KEY_BYTES, PiiCipher, create_key, pii_key_path
from terminal.offline.store import TerminalStore

NAME = "Zhangsan Quxiaomei"
PHONE = "+86 139 0101 7788"
EMAIL = "quxiaomei@example.cn"
NOTES = "prefers oolong; allergic to shellfish"
PREF_VALUE = "receipt-by-wechat-only"
CASHIER_NAME = "Wangwu Lihuamei"
JOURNAL_NOTES = "moved to Hangzhou branch"
SECRETS = [NAME, PHONE, EMAIL, NOTES, PREF_VALUE, CASHIER_NAME, JOURNAL_NOTES]


def cipher() -> PiiCipher:
    return PiiCipher(bytes(range(32)))


def test_round_trip_and_fresh_nonce_per_value() -> None:
    c = cipher()
    one = c.encrypt_text(NAME, table="member_cache", column="name_enc", row_id="m-1")
    two = c.encrypt_text(NAME, table="member_cache", column="name_enc", row_id="m-1")
    assert one != two  # same plaintext, different nonce: equal names are not visible as equal blobs
    assert c.decrypt_text(one, table="member_cache", column="name_enc", row_id="m-1") == NAME
    assert c.decrypt_value(c.encrypt_value({"a": [1, "b"]}, table="t", column="c", row_id="r"),
                           table="t", column="c", row_id="r") == {"a": [1, "b"]}


@pytest.mark.parametrize("where", [
    {"table": "member_cache", "column": "name_enc", "row_id": "m-2"},   # another member's row
    {"table": "member_cache", "column": "phone_enc", "row_id": "m-1"},  # another column
    {"table": "cashier", "column": "name_enc", "row_id": "m-1"},        # another table
])
def test_a_value_moved_elsewhere_does_not_decrypt(where: dict[str, str]) -> None:
    blob = cipher().encrypt_text(NAME, table="member_cache", column="name_enc", row_id="m-1")
    with pytest.raises(JournalError, match="cannot be decrypted"):
        cipher().decrypt_text(blob, **where)


def test_wrong_key_and_damaged_values_are_reported() -> None:
    blob = cipher().encrypt_text(NAME, table="t", column="c", row_id="r")
    with pytest.raises(JournalError, match="wrong key file or tampered"):
        PiiCipher(bytes(32)).decrypt_text(blob, table="t", column="c", row_id="r")
    with pytest.raises(JournalError, match="damaged"):
        cipher().decrypt(b"\x01short", table="t", column="c", row_id="r")


def test_key_file_is_created_once_private_and_reused(data_dir: Path) -> None:
    path = pii_key_path(data_dir)
    first = create_key(path)
    assert len(first) == KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert create_key(path) == first  # losing a creation race returns the winner's key, never overwrites it
    assert sorted(p.name for p in path.parent.iterdir()) == ["pii.key"]  # no temporary files left behind


def test_damaged_key_file_is_reported(data_dir: Path) -> None:
    path = pii_key_path(data_dir)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"short")
    with pytest.raises(JournalError, match="damaged"):
        PiiCipher.from_key_file(path)


def _fill_with_pii(store: TerminalStore) -> None:
    store.cache.apply_snapshot([{
        "member_id": "m-1", "name": NAME, "phone": PHONE, "email": EMAIL, "notes": NOTES,
        "prefs": {"receipt": PREF_VALUE}, "tier": "gold", "balance": 12_345, "points": 300, "currency": "CNY",
        "coupons": [], "card_ids": ["card-1"], "yearly_spend": 99_000,
    }], version=1)
    store.cashiers.add("c-1", CASHIER_NAME, "cashier", "2468")
    store.journal.append("member_update", {"member": "m-1", "notes": JOURNAL_NOTES, "prefs": {"x": PREF_VALUE}},
                         "c-1")


def _database_bytes(data_dir: Path) -> bytes:
    db = terminal_db(data_dir)
    return b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def test_a_copied_database_reveals_no_pii(open_store: Callable[..., TerminalStore], data_dir: Path) -> None:
    store = open_store()
    _fill_with_pii(store)
    assert store.cache.get("m-1") is not None and store.cache.get("m-1").name == NAME  # type: ignore[union-attr]
    # While open: the new pages sit in the WAL.
    while_open = _database_bytes(data_dir)
    assert b"card-1" in while_open  # the grep does see plain columns, so its silence about PII means something
    for secret in SECRETS:
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            assert secret.encode(encoding) not in while_open, secret
    # After close: checkpointed into the main file.
    store.close()
    after = _database_bytes(data_dir)
    for secret in SECRETS:
        assert secret.encode() not in after, secret
    # And the copy's tables are readable to anyone -- just not the PII.
    with sqlite3.connect(terminal_db(data_dir)) as conn:
        assert conn.execute("SELECT balance FROM member_cache").fetchone() == (12_345,)


def test_missing_key_file_is_an_error_not_a_fresh_key(open_store: Callable[..., TerminalStore],
                                                      data_dir: Path) -> None:
    store = open_store()
    _fill_with_pii(store)
    store.close()
    pii_key_path(data_dir).unlink()
    with pytest.raises(JournalError, match="missing but the database holds encrypted member data"):
        open_store()
    assert not pii_key_path(data_dir).exists()


def test_a_different_key_file_is_refused(open_store: Callable[..., TerminalStore], data_dir: Path) -> None:
    open_store().close()
    path = pii_key_path(data_dir)
    path.write_bytes(bytes(32))
    with pytest.raises(JournalError, match="does not belong to this database"):
        open_store()


@settings(max_examples=200, deadline=None)
@given(value=st.text(), row=st.text(min_size=1, max_size=20), other=st.text(min_size=1, max_size=20))
def test_any_text_round_trips_and_stays_bound_to_its_row(value: str, row: str, other: str) -> None:
    c = cipher()
    blob = c.encrypt_text(value, table="member_cache", column="notes_enc", row_id=row)
    assert c.decrypt_text(blob, table="member_cache", column="notes_enc", row_id=row) == value
    assert len(blob) == 1 + 12 + len(value.encode()) + 16  # version, nonce, ciphertext, tag: no padding games
    if other != row:
        with pytest.raises(JournalError):
            c.decrypt_text(blob, table="member_cache", column="notes_enc", row_id=other)
