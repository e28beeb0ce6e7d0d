"""``ledger.pii``: members' personal data encrypted per field and bound to its place, keyed-hash lookups, the key
files tied to their database, and counter edits kept encrypted apart from the rest of an entry (in-process, on a
real SQLite file)."""

from __future__ import annotations

import random
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from ledger import admin, pii, store
from ledger.errors import LedgerError
from ledger.home import Ledger, init_ledger, open_ledger
from tests.fixtures.ledger import InProcessTill as Till
from tests.fixtures.ledger import enroll_in_process

T0_MS = 1_790_000_000_000


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    home = init_ledger(tmp_path / "ledger", issuer="acme", clock=lambda: T0_MS)
    home.randbytes = random.Random(5).randbytes
    yield home
    home.database.close()


# -- normalisation (pure) ---------------------------------------------------------------------------------------
@given(st.text("0123456789", min_size=1, max_size=15), st.lists(st.sampled_from([" ", "-", "(", ")", ".", "+", "/"]),
                                                              max_size=8), st.randoms())
def test_a_phone_number_is_its_digits_however_it_is_written(digits: str, separators: list[str],
                                                            rnd: random.Random) -> None:
    chars = list(digits)
    for sep in separators:
        chars.insert(rnd.randrange(len(chars) + 1), sep)
    assert pii.normal_phone("".join(chars)) == digits
    full_width = digits.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert pii.normal_phone(full_width) == digits


@given(st.lists(st.text("abcdefghijklmnopqrstuvwxyzäöü王芳", min_size=1, max_size=8), min_size=1, max_size=5))
def test_name_words_ignore_case_spacing_and_repeats(words: list[str]) -> None:
    name = " ".join(words)
    assert pii.name_words(name.upper().replace(" ", "  ,")) == pii.name_words(name)
    assert set(pii.name_words(" ".join(reversed(words)))) == set(pii.name_words(name))
    assert len(pii.name_words(name)) == len(set(pii.name_words(name)))


def test_emails_match_in_any_case_and_width() -> None:
    assert pii.normal_email("  Ann.Lee@Example.COM ") == pii.normal_email("ann.lee@example.com")
    assert pii.normal_email("ａｎｎ@example.com") == "ann@example.com"


# -- members ----------------------------------------------------------------------------------------------------
def test_details_round_trip_and_lookups_find_exact_values_only(ledger: Ledger) -> None:
    ann = admin.add_member("Ann Lee", phone="+1 (555) 0100", email="Ann@Example.com", notes="nuts",
                           prefs={"drink": "tea"})
    admin.add_member("Bo Lee", phone="555 0199")
    view = admin.member_view(ann)
    assert (view["name"], view["phone"], view["email"], view["notes"], view["prefs"]) == (
        "Ann Lee", "+1 (555) 0100", "Ann@Example.com", "nuts", {"drink": "tea"})
    assert [m["member_id"] for m in admin.find_members(phone="1-555-0100")] == [ann]
    assert [m["member_id"] for m in admin.find_members(email="ANN@example.COM")] == [ann]
    assert len(admin.find_members(name="lee")) == 2
    assert admin.find_members(name="le") == [] and admin.find_members(phone="5550100") == []  # no partial match
    with pytest.raises(LedgerError, match="no digits"):
        admin.find_members(phone="call me")
    admin.update_member(ann, name="Ann Wu", phone="")
    assert admin.find_members(name="lee", phone="1 555 0100") == []
    assert [m["name"] for m in admin.find_members(name="wu ann")] == ["Ann Wu"]
    row = store.Member.get_by_id(ann)
    assert row.phone_hash is None and row.email_hash is not None


def test_a_value_moved_to_another_member_or_column_does_not_decrypt(ledger: Ledger) -> None:
    ann = admin.add_member("Ann Lee", phone="555 0100")
    bo = admin.add_member("Bo Wu", phone="555 0199")
    ann_row = store.Member.get_by_id(ann)
    store.Member.update(name_enc=ann_row.name_enc).where(store.Member.member_id == bo).execute()
    with pytest.raises(LedgerError, match=r"encrypted member.name of 'm[0-9a-f]+' cannot be decrypted"):
        admin.member_view(bo)
    store.Member.update(name_enc=ann_row.phone_enc).where(store.Member.member_id == ann).execute()
    with pytest.raises(LedgerError, match="cannot be decrypted"):
        admin.member_view(ann)


def test_the_key_files_belong_to_their_database(ledger: Ledger, tmp_path: Path) -> None:
    admin.add_member("Ann Lee")
    cipher_key, lookup_key = pii.key_paths(ledger.ledger_dir)
    other = init_ledger(tmp_path / "other", issuer="acme", clock=lambda: T0_MS)
    other.database.close()
    saved = cipher_key.read_bytes()
    shutil.copy(pii.key_paths(other.ledger_dir)[0], cipher_key)
    with pytest.raises(LedgerError, match=r"pii.key does not belong to this ledger's database"):
        open_ledger(ledger.ledger_dir)
    cipher_key.unlink()
    with pytest.raises(LedgerError, match=r"pii.key is missing but the database holds member data"):
        open_ledger(ledger.ledger_dir)
    assert not cipher_key.exists()  # never a fresh key for data encrypted under another
    cipher_key.write_bytes(saved)
    shutil.copy(pii.key_paths(other.ledger_dir)[1], lookup_key)
    with pytest.raises(LedgerError, match=r"pii-lookup.key does not belong"):
        open_ledger(ledger.ledger_dir)


# -- entries ----------------------------------------------------------------------------------------------------
@pytest.fixture
def till(ledger: Ledger) -> Till:
    _, code = admin.add_terminal("till", "store-1")
    key = Ed25519PrivateKey.generate()
    body = enroll_in_process(ledger, code, key)
    return Till(ledger, body["terminal_id"], key, bytes.fromhex(body["ledger_hpke_public_key"]))


def test_counter_edits_are_stored_encrypted_apart_and_still_verify(ledger: Ledger, till: Till) -> None:
    ann = admin.add_member("Ann Lee", prefs={"size": "L"})
    till.append("member_update", {"member": ann, "notes": "prefers the window seat", "prefs": {"drink": "oolong"}})
    till.append("member_update", {"member": ann, "prefs": {"size": "M"}})
    assert till.ingest(1, 2).applied == 2
    view = admin.member_view(ann)
    assert view["notes"] == "prefers the window seat" and view["prefs"] == {"size": "M", "drink": "oolong"}
    assert [e["payload"] for e in view["history"]] == [e.payload for e in till.entries]
    with closing(sqlite3.connect(store.sqlite_path(ledger.ledger_dir))) as raw:
        stored = raw.execute("SELECT payload, pii FROM applied_entry WHERE terminal_id = ? ORDER BY seq",
                             (till.terminal_id,)).fetchall()
    assert all(b"window seat" not in bytes(p) and b"oolong" not in bytes(p) for p, _ in stored)
    assert all(s is not None for _, s in stored)
    assert admin.verify_ledger() == []
    first = store.AppliedEntry.get((store.AppliedEntry.terminal_id == till.terminal_id) & (store.AppliedEntry.seq == 1))
    store.AppliedEntry.update(pii=first.pii).where((store.AppliedEntry.terminal_id == till.terminal_id)
                                                   & (store.AppliedEntry.seq == 2)).execute()
    problems = admin.verify_ledger()
    assert len(problems) == 1 and problems[0].startswith(f"terminal {till.terminal_id}: entry 2 cannot be read")


def test_entries_without_personal_fields_are_stored_as_before(ledger: Ledger, till: Till) -> None:
    ann = admin.add_member("Ann Lee", balance=1_000)
    till.append("topup", {"card": "card", "member": ann, "cur": "CNY", "amount": 500, "bonus": 0, "tender": "cash",
                          "offline": False})  # "card": her own card, issued on first use (a made-up one is quarantined)
    assert till.ingest(1, 1).applied == 1
    row = store.AppliedEntry.get(store.AppliedEntry.terminal_id == till.terminal_id)
    assert row.pii is None
