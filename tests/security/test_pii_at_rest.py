"""Issue 13, personal data at rest at the ledger: a copy of the ledger's files reveals no member's details.

Attack: someone who reads the ledger's database files (a backup, a stolen disk, another local account on a 0644
file in a 0755 directory) greps them for a member's phone, name and notes. Against a real ``cardpos ledger serve``
process fed by real admin commands and sealed terminal batches (sales, top-ups and counter edits of notes and
preferences), a byte search of the database, its WAL and SHM (and every other file under the ledger directory
but the keys) finds none of them — while the server runs and after it stopped — and lookups by phone, email and
name still work through ``cardpos ledger member find``. Files are 0600 and directories 0700 whatever the umask,
and looser modes on an existing ledger are fixed when it is opened. A ledger of the old layout (details in clear)
is encrypted in place when it is next opened, and its history still verifies.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import cbor2
import peewee
import pytest

from tests.fixtures.ledger import LedgerServer, LedgerTerminal, make_ledger, sale, topup

NAME = "Quxiaomei Zhangsan"
PHONE = "+86 139 0101 7788"
EMAIL = "Quxiaomei.Zhang@example.cn"
ADMIN_NOTES = "VIP since 2019; allergic to shellfish"
PREF_VALUE = "receipt-by-wechat-only"
NEW_PHONE = "+86 137 5555 0199"
COUNTER_NOTES = "moved to Hangzhou branch, asks for Lihua at the till"
COUNTER_PREF = "decaf-oat-latte-extra-hot"
CJK_NAME = "曲晓梅 王芳芳"
CJK_NOTES = "喜欢乌龙茶，对贝类过敏"

# Every form a reader of the files might search for: as typed, digits only, each word of the name.
NEEDLES = [NAME, "Quxiaomei", "Zhangsan", PHONE, "13901017788", "8613901017788", "139 0101", EMAIL,
           EMAIL.lower(), "example.cn", ADMIN_NOTES, "shellfish", PREF_VALUE, NEW_PHONE, "13755550199",
           COUNTER_NOTES, "Hangzhou", COUNTER_PREF, CJK_NAME, "曲晓梅", "王芳芳", CJK_NOTES, "乌龙茶"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def ledger_files(ledger_dir: Path) -> list[Path]:
    """Every regular file of the ledger except its key files (which are the secret, 0600, and not data)."""
    keys = ledger_dir / "keys"
    return sorted(p for p in ledger_dir.rglob("*") if p.is_file() and keys not in p.parents)


def leaks(ledger_dir: Path, needles: list[str] = NEEDLES) -> dict[str, list[str]]:
    """``{file name: [needles found in its bytes]}`` for every ledger file holding any of ``needles``."""
    found: dict[str, list[str]] = {}
    for path in ledger_files(ledger_dir):
        data = path.read_bytes()
        hits = [n for n in needles if n.encode("utf-8") in data]
        if hits:
            found[str(path.relative_to(ledger_dir))] = hits
    return found


def db_files(ledger_dir: Path) -> dict[str, Path]:
    db = ledger_dir / "ledger.sqlite3"
    return {"db": db, "wal": db.with_name(db.name + "-wal"), "shm": db.with_name(db.name + "-shm")}


@contextmanager
def umask(value: int) -> Iterator[None]:
    """This process's umask (inherited by the ledger processes it starts)."""
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def add_members_and_sync(server: LedgerServer) -> tuple[str, str, LedgerTerminal]:
    """Two members with details through the admin CLI, one of them updated; a terminal syncs a top-up, a sale
    and counter edits of notes and preferences for both. Returns (member, CJK member, terminal)."""
    ann = server.admin_json("member", "add", NAME, "--phone", PHONE, "--email", EMAIL, "--notes", ADMIN_NOTES,
                            "--pref", f"receipt={PREF_VALUE}", "--balance", "500.00")["member_id"]
    cjk = server.admin_json("member", "add", CJK_NAME, "--phone", "+86 188 0000 1234", "--notes", CJK_NOTES,
                            "--store", "store-1")["member_id"]
    server.admin("member", "update", ann, "--phone", NEW_PHONE)
    card = server.admin_json("card", "issue", "--member", ann)["card_id"]
    till = LedgerTerminal.enroll(server.url, server.admin_json("terminal", "add", "till 1")["code"])
    till.append("topup", topup(ann, 10_000, card=card))
    till.append("sale", sale(ann, 2_500, card=card, pts_earn=25))
    till.append("member_update", {"member": ann, "notes": COUNTER_NOTES, "prefs": {"drink": COUNTER_PREF}})
    till.append("member_update", {"member": cjk, "notes": CJK_NOTES + "!", "prefs": {"tea": "乌龙茶"}})
    pushed = till.push(1, 4)
    assert pushed.status_code == 200, pushed.text
    return ann, cjk, till


def test_a_copy_of_the_ledger_files_holds_no_members_phone_name_or_notes(tmp_path: Path) -> None:
    with umask(0o022):  # the usual umask: files would come out 0644 in 0755 directories
        server = make_ledger(tmp_path / "home").start()
    try:
        ann, cjk, _ = add_members_and_sync(server)
        files = db_files(server.ledger_dir)
        assert files["wal"].stat().st_size > 0 and files["shm"].exists()  # the server holds them open now
        assert leaks(server.ledger_dir) == {}

        # The details are all there for people who ask the ledger (and only through it).
        shown = server.admin_json("member", "show", ann)
        assert (shown["name"], shown["phone"], shown["email"]) == (NAME, NEW_PHONE, EMAIL)
        assert shown["notes"] == COUNTER_NOTES and shown["prefs"] == {"receipt": PREF_VALUE,
                                                                      "drink": COUNTER_PREF}
        assert shown["balance"] == 50_000 + 10_000 - 2_500
        other = server.admin_json("member", "show", cjk)
        assert (other["name"], other["notes"], other["prefs"]) == (CJK_NAME, CJK_NOTES + "!", {"tea": "乌龙茶"})

        # Lookups go through keyed hashes: phone as typed any way, email in any case, a word of the name.
        def found(*query: str) -> list[str]:
            return [m["member_id"] for m in server.admin_json("member", "find", *query)["members"]]

        assert found("--phone", "+86-137-5555-0199") == [ann]
        assert found("--phone", "(86) 137 5555 0199") == [ann]
        assert found("--phone", PHONE) == []  # the old number no longer finds anyone
        assert found("--email", EMAIL.upper()) == [ann]
        assert found("--name", "zhangsan") == [ann]
        assert found("--name", "QUXIAOMEI zhangsan") == [ann]
        assert found("--name", "王芳芳") == [cjk]
        assert found("--name", "zhangsan", "--phone", "+86 188 0000 1234") == []  # every criterion must match
        text = server.admin("member", "find", "--email", EMAIL).stdout
        assert ann in text and NAME in text

        for name in ("db", "wal", "shm"):
            assert mode(files[name]) == 0o600, name
        assert mode(server.ledger_dir) == 0o700 and mode(server.ledger_dir / "keys") == 0o700
        assert {p.name: mode(p) for p in (server.ledger_dir / "keys").iterdir()} == {
            p.name: 0o600 for p in (server.ledger_dir / "keys").iterdir()}
        assert server.admin_json("verify")["ok"] is True
    finally:
        server.stop()
    assert leaks(server.ledger_dir) == {}  # after the last connection closed (WAL checkpointed into the file)


def test_modes_are_private_under_any_umask_and_loose_modes_are_fixed_at_open(tmp_path: Path) -> None:
    with umask(0o000):  # the worst umask: everything the ledger creates must still be owner-only
        server = make_ledger(tmp_path / "open-umask").start()
        try:
            add_members_and_sync(server)
            files = db_files(server.ledger_dir)
            assert {name: mode(path) for name, path in files.items()} == {"db": 0o600, "wal": 0o600, "shm": 0o600}
            assert mode(server.ledger_dir) == 0o700 and mode(server.ledger_dir / "keys") == 0o700
            assert {mode(p) for p in (server.ledger_dir / "keys").iterdir()} == {0o600}
            assert mode(server.ledger_dir / "ledger.json") == 0o600
        finally:
            server.stop()

    # An existing ledger made readable by others (a restore from a careless backup, an old version): the next
    # command that opens it takes the group's and others' bits away again, and never adds any.
    ledger_dir = server.ledger_dir
    db = files["db"]
    ledger_dir.chmod(0o755)
    (ledger_dir / "keys").chmod(0o755)
    db.chmod(0o644)
    journal = db.with_name(db.name + "-journal")
    journal.write_bytes(b"")  # a leftover rollback journal from a crash
    journal.chmod(0o664)
    (ledger_dir / "keys" / "root.key").chmod(0o644)
    with umask(0o022):
        server.admin("member", "find", "--name", "zhangsan")
    assert mode(ledger_dir) == 0o700 and mode(ledger_dir / "keys") == 0o700
    assert mode(db) == 0o600 and mode(journal) == 0o600
    assert mode(ledger_dir / "keys" / "root.key") == 0o600


# -- a ledger of the old layout ----------------------------------------------------------------------------------
class OldMember(peewee.Model):
    """The member table exactly as the ledger declared it before its personal data was encrypted."""

    member_id = peewee.CharField(primary_key=True, max_length=40)
    name = peewee.TextField()
    phone = peewee.TextField(default="")
    email = peewee.TextField(default="")
    notes = peewee.TextField(default="")
    prefs = peewee.TextField(default="{}")  # JSON
    store_id = peewee.CharField(max_length=64, index=True)
    opening_tier = peewee.CharField(max_length=16)
    currency = peewee.CharField(max_length=3)
    opening_balance = peewee.BigIntegerField(default=0)
    opening_points = peewee.BigIntegerField(default=0)
    created_ms = peewee.BigIntegerField()
    version = peewee.BigIntegerField(index=True)

    class Meta:
        table_name = "member"


ENTRY_COLUMNS_BEFORE = {"id", "terminal_id", "seq", "uuid", "prev_hash", "hash", "wall_ms", "mono_ns", "cashier_id",
                        "kind", "payload", "member_id", "batch_id", "applied_ms"}


def rewrite_as_old_layout(server: LedgerServer, details: dict[str, dict[str, Any]]) -> None:
    """Turn a stopped ledger back into what the ledger wrote before personal data was encrypted: the member table
    with clear ``name, phone, email, notes, prefs`` columns, counter edits in clear in the entries' payloads, and
    no PII keys. ``details`` holds each member's clear values (the test knows them)."""
    from ledger import store

    database = store.open_ledger_db(server.db_url or server.ledger_dir)
    mark = database.param
    try:
        with database.atomic():
            rows = database.execute_sql(
                'SELECT "member_id", "store_id", "opening_tier", "currency", "opening_balance", "opening_points", '
                '"created_ms", "version" FROM "member"').fetchall()
            for table in ("member", *[t for t in database.get_tables() if t.startswith("member_name")]):
                database.execute_sql(f'DROP TABLE "{table}"')
            database.bind([OldMember])
            database.create_tables([OldMember])
            for member_id, store_id, tier, currency, balance, points, created_ms, version in rows:
                d = details[member_id]
                OldMember.create(member_id=member_id, name=d["name"], phone=d["phone"], email=d["email"],
                                 notes=d["notes"], prefs=json.dumps(d["prefs"], sort_keys=True, ensure_ascii=False),
                                 store_id=store_id, opening_tier=tier, currency=currency, opening_balance=balance,
                                 opening_points=points, created_ms=created_ms, version=version)
            pending = {member_id: list(d["edits"]) for member_id, d in details.items()}
            edits = database.execute_sql("SELECT id, payload FROM applied_entry WHERE kind = 'member_update' "
                                         "ORDER BY id").fetchall()
            for entry_id, payload in edits:
                clear = cbor2.loads(bytes(payload))
                clear.update(pending[clear["member"]].pop(0))
                database.execute_sql(f"UPDATE applied_entry SET payload = {mark} WHERE id = {mark}",
                                     (cbor2.dumps(clear), entry_id))
            for column in {c.name for c in database.get_columns("applied_entry")} - ENTRY_COLUMNS_BEFORE:
                database.execute_sql(f'ALTER TABLE "applied_entry" DROP COLUMN "{column}"')
            database.execute_sql("DELETE FROM key_record WHERE kid IN ('pii', 'pii-lookup')")  # no '%': psycopg2
    finally:
        database.close()
    for key in (server.ledger_dir / "keys").glob("pii*"):
        key.unlink()


OLD_DETAILS = {
    "ann": {"name": NAME, "phone": NEW_PHONE, "email": EMAIL, "notes": COUNTER_NOTES,
            "prefs": {"receipt": PREF_VALUE, "drink": COUNTER_PREF},
            "edits": [{"notes": COUNTER_NOTES, "prefs": {"drink": COUNTER_PREF}}]},
    "cjk": {"name": CJK_NAME, "phone": "+86 188 0000 1234", "email": "", "notes": CJK_NOTES + "!",
            "prefs": {"tea": "乌龙茶"}, "edits": [{"notes": CJK_NOTES + "!", "prefs": {"tea": "乌龙茶"}}]},
}


def check_migrated(server: LedgerServer, ann: str, cjk: str) -> None:
    """The first command to open an old-layout ledger migrates it: details read back, lookups and history work,
    every entry's hash still verifies, and the PII keys exist."""
    shown = server.admin_json("member", "show", ann, "--history", "10")
    assert (shown["name"], shown["phone"], shown["email"], shown["notes"]) == (NAME, NEW_PHONE, EMAIL,
                                                                               COUNTER_NOTES)
    assert shown["prefs"] == {"receipt": PREF_VALUE, "drink": COUNTER_PREF}
    edits = [e["payload"] for e in shown["history"] if e["kind"] == "member_update"]
    assert edits == [{"member": ann, "notes": COUNTER_NOTES, "prefs": {"drink": COUNTER_PREF}}]
    assert [m["member_id"] for m in server.admin_json("member", "find", "--phone", NEW_PHONE)["members"]] == [ann]
    assert [m["member_id"] for m in server.admin_json("member", "find", "--name", "王芳芳")["members"]] == [cjk]
    assert server.admin_json("verify")["ok"] is True  # the entries' hashes still cover the clear payloads
    assert sorted(p.name for p in (server.ledger_dir / "keys").glob("pii*")) == ["pii-lookup.key", "pii.key"]


def test_an_old_layout_ledger_is_encrypted_in_place_when_next_opened(tmp_path: Path) -> None:
    server = make_ledger(tmp_path / "old").start()
    try:
        ann, cjk, _ = add_members_and_sync(server)
    finally:
        server.stop()
    rewrite_as_old_layout(server, {ann: OLD_DETAILS["ann"], cjk: OLD_DETAILS["cjk"]})
    before = leaks(server.ledger_dir)
    assert {"ledger.sqlite3"} == set(before) and {NAME, COUNTER_NOTES, CJK_NAME} <= set(before["ledger.sqlite3"])

    check_migrated(server, ann, cjk)
    assert leaks(server.ledger_dir) == {}  # free pages and the WAL too: the file was rewritten
    again = server.start()  # and the server serves the migrated ledger
    try:
        till = LedgerTerminal.enroll(again.url, again.admin_json("terminal", "add", "till 2")["code"])
        till.append("member_update", {"member": ann, "notes": "after the migration"})
        assert till.push(1, 1).status_code == 200
        assert again.admin_json("member", "show", ann)["notes"] == "after the migration"
    finally:
        again.stop()
    assert leaks(server.ledger_dir, [*NEEDLES, "after the migration"]) == {}


# -- PostgreSQL -----------------------------------------------------------------------------------------------------
def pg_leaks(db_url: str, needles: list[str] = NEEDLES) -> dict[str, list[str]]:
    """``{table: [needles]}`` for every table whose rows, as text (bytea as hex), hold any of ``needles``."""
    import psycopg2

    found: dict[str, list[str]] = {}
    with closing(psycopg2.connect(db_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        for (table,) in cur.fetchall():
            cur.execute(f'SELECT string_agg(t::text, E\'\\n\') FROM "{table}" t')
            text = cur.fetchone()[0] or ""
            hits = [n for n in needles if n in text or n.encode("utf-8").hex() in text]
            if hits:
                found[table] = hits
    return found


@pytest.mark.postgres
def test_on_postgresql_no_table_holds_details_in_clear_and_old_layouts_migrate(tmp_path: Path,
                                                                              postgres_url: str) -> None:
    server = make_ledger(tmp_path / "pg", db_url=postgres_url).start()
    try:
        ann, cjk, _ = add_members_and_sync(server)
        assert pg_leaks(postgres_url) == {}
        assert [m["member_id"] for m in server.admin_json("member", "find", "--email", EMAIL)["members"]] == [ann]
    finally:
        server.stop()
    assert mode(server.ledger_dir) == 0o700 and {mode(p) for p in (server.ledger_dir / "keys").iterdir()} == {0o600}
    rewrite_as_old_layout(server, {ann: OLD_DETAILS["ann"], cjk: OLD_DETAILS["cjk"]})
    assert {"member", "applied_entry"} <= set(pg_leaks(postgres_url))
    check_migrated(server, ann, cjk)
    assert pg_leaks(postgres_url) == {}
