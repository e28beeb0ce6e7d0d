"""``cardpos ledger import`` in-process on a real SQLite ledger: members with balances, points, tiers, card
numbers and consents reconcile to the cent; a re-run changes nothing; bad rows are refused with their line and
reason while the good ones import; personal data lands encrypted; settlement and ``ledger verify`` agree."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import admin, store, verify
from ledger.home import Ledger, init_ledger
from ledger.importer import rows
from ledger.importer.run import import_program, member_totals
from ledger.importer.staging import ImportedMember, LegacyCard
from ledger.settlement import books

T0_MS = 1_793_800_000_000  # November 2026

MERCHANTS = "merchant_id,name\nspa,Hotel Spa\nshop,Hotel Shop\n"
STORES = "store_id,merchant_id,name\nspa-1,spa,Spa floor 3\nshop-1,shop,Lobby shop\n"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    home = init_ledger(tmp_path / "ledger", issuer="acme", clock=lambda: T0_MS)
    home.randbytes = random.Random(5).randbytes
    yield home
    home.database.close()


def members_csv(count: int, seed: int = 3) -> tuple[str, int, int]:
    """A members file of ``count`` good rows, and its totals of balances (minor units) and points."""
    rng = random.Random(seed)
    lines = ["member_id,name,store_id,phone,email,tier,balance,points,card_number,consent_sms,consent_email"]
    balance = points = 0
    for n in range(count):
        minor, pts = rng.randrange(0, 500_000), rng.randrange(0, 20_000)
        balance += minor
        points += pts
        lines.append(f"M{n:06d},Member {n} Zhang,{'spa-1' if n % 3 else 'shop-1'},+86 139 {n:08d},"
                     f"m{n}@example.com,{('standard', 'gold', 'platinum')[n % 3]},{minor // 100}.{minor % 100:02d},"
                     f"{pts},OLD-{n:08d},{'yes' if n % 2 else 'no'},{'' if n % 5 else 'yes'}")
    return "\n".join(lines) + "\n", balance, points


def _import(members: str, merchants: str = MERCHANTS, stores: str = STORES) -> dict:
    return import_program(merchants_csv=("merchants.csv", merchants.encode()),
                          stores_csv=("stores.csv", stores.encode()),
                          members_csv=("members.csv", members.encode()), actor="importer").as_dict()


def test_members_reconcile_to_the_cent_and_a_second_run_changes_nothing(ledger: Ledger, tmp_path: Path) -> None:
    admin.add_member("Already Here", store_id="store-1", balance=12_345, points=7, member_id="OLD1")
    text, balance, points = members_csv(2_000)
    report = _import(text)
    assert report["reconciled"], report
    assert report["files"]["members"] == {"read": 2_000, "imported": 2_000, "unchanged": 0, "refused": 0}
    assert report["files"]["merchants"]["imported"] == 2 and report["files"]["stores"]["imported"] == 2
    totals = report["totals"]
    assert totals["file"] == {"balance": balance, "points": points}
    assert totals["before"] == {"balance": 12_345, "points": 7}
    assert totals["after"] == {"balance": 12_345 + balance, "points": 7 + points}
    assert totals["liability_after"] == 12_345 + balance

    imported = admin.member_view("M000005", actor="test")
    assert imported["name"] == "Member 5 Zhang" and imported["store_id"] == "spa-1"
    assert store.Member.get_by_id("M000005").opening_tier == "platinum"
    assert [m["member_id"] for m in admin.find_members(phone="+86 139 00000005")] == ["M000005"]
    assert ImportedMember.get_by_id("M000005").consents == {"sms": True, "email": True}
    assert ImportedMember.get_by_id("M000002").consents == {"sms": False}
    from ledger import member_facts  # what campaigns and the member page go by

    assert member_facts.has_consent("M000005", "sms") and member_facts.has_consent("M000005", "mail")
    assert not member_facts.has_consent("M000002", "sms")
    assert LegacyCard.get_by_id("OLD-00000005").member_id == "M000005"

    before = _snapshot(ledger)
    again = _import(text)
    assert again["reconciled"] and again["files"]["members"] == {"read": 2_000, "imported": 0, "unchanged": 2_000,
                                                                 "refused": 0}
    assert again["files"]["merchants"]["unchanged"] == 2 and again["files"]["stores"]["unchanged"] == 2
    assert again["totals"]["before"] == again["totals"]["after"] == totals["after"]
    assert _snapshot(ledger) == before, "a re-run changes nothing but its audit entry"

    assert verify.verify_all() == []
    statement = books.draft("2026-11")
    assert sum(p["net"] for p in statement["positions"]) == 0
    program = next(r for r in statement["liability"] if r["issuer"] == "program")
    assert program["closing"] == 12_345 + balance


def _snapshot(ledger: Ledger) -> tuple:
    database = Path(ledger.database.database)
    with sqlite3.connect(database) as conn:
        counts = [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                  for t in ("member", "member_name_word", "import_member", "import_legacy_card", "merchant", "store")]
    return (*counts, store.current("members"))


def test_bad_rows_are_refused_with_line_and_reason_and_the_good_ones_import(ledger: Ledger) -> None:
    admin.add_member("Clash", store_id="store-1", member_id="CLASH")
    text = "\n".join([
        "member_id,name,store_id,balance,points,tier,card_number,consent_sms",
        "G1,Good One,spa-1,10.50,5,gold,CARD-1,yes",           # line 2: good
        "B1,Bad Balance,spa-1,10.505,5,gold,,",               # line 3: three decimals
        "B2,Bad Points,spa-1,1.00,-4,,,",                     # line 4
        "B3,Bad Tier,spa-1,1.00,1,diamond,,",                 # line 5
        ",No Id,spa-1,1.00,1,,,",                             # line 6
        "B5,Unknown Store,nowhere,1.00,1,,,",                 # line 7
        "G1,Twice,spa-1,1.00,1,,,",                           # line 8: the id again
        "B7,Card Twice,spa-1,1.00,1,,CARD-1,",                   # line 9
        "B8,Consent,spa-1,1.00,1,,,perhaps",                  # line 10
        "CLASH,Clash Again,spa-1,1.00,1,,,",                  # line 11: already in the ledger
        "B9,Short,spa-1",                                     # line 12
        "G2,Good Two,shop-1,0.99,0,,,no",                     # line 13: good
    ]) + "\n"
    report = _import(text)
    reasons = {r["line"]: r["reason"] for r in report["refused"]}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert "decimals" in reasons[3] and "points" in reasons[4] and "tier 'diamond'" in reasons[5]
    assert "member_id is empty" in reasons[6] and "store nowhere" in reasons[7] and "line 2" in reasons[8]
    assert "card CARD-1" in reasons[9] and "consent_sms" in reasons[10] and "already exists" in reasons[11]
    assert "fields" in reasons[12]
    assert report["files"]["members"] == {"read": 12, "imported": 2, "unchanged": 0, "refused": 10}
    assert report["totals"]["imported"] == {"balance": 1_149, "points": 5}
    assert report["reconciled"]
    assert member_totals() == (1_149, 5)
    audit = store.AuditLog.select().where(store.AuditLog.action == "import").order_by(store.AuditLog.id.desc()).get()
    assert audit.actor == "importer" and "3" in str(audit.details["refused_lines"])
    assert "Good One" not in str(audit.details), "the audit log holds counts, not people's details"


def test_personal_data_is_stored_encrypted(ledger: Ledger) -> None:
    _import("member_id,name,store_id,phone,email,notes\nP1,Secret Person,spa-1,13911112222,p@example.com,likes tea\n")
    database = Path(ledger.database.database)
    ledger.database.close()
    raw = database.read_bytes() + (database.with_name(database.name + "-wal").read_bytes()
                                   if database.with_name(database.name + "-wal").exists() else b"")
    for clear in (b"Secret Person", b"13911112222", b"p@example.com", b"likes tea"):
        assert clear not in raw


def test_a_file_that_cannot_be_read_changes_nothing(ledger: Ledger) -> None:
    with pytest.raises(rows.ImportFileError, match="unknown column"):
        _import("member_id,name,store_id,balence\nX,Y,spa-1,1\n")
    with pytest.raises(rows.ImportFileError, match="lacks the column"):
        _import("member_id,name\nX,Y\n")
    with pytest.raises(rows.ImportFileError, match="UTF-8"):
        import_program(members_csv=("m.csv", b"member_id,name,store_id\n\xff,\xfe,x\n"))
    assert store.Member.select().count() == 0


def test_the_command_prints_the_reconciliation_and_refuses_bad_files_in_one_line(tmp_path: Path) -> None:
    import json

    from tests.fixtures.ledger import ledger_env, run_ledger_cli

    env, ledger_dir = ledger_env(tmp_path), tmp_path / "ledger"
    run_ledger_cli(ledger_dir, env, "init")
    for name, text in (("merchants.csv", MERCHANTS), ("stores.csv", STORES),
                       ("members.csv", "member_id,name,store_id,balance,points\nA1,Ann,spa-1,100.00,10\n"
                                       "A2,Bob,spa-1,-1,0\n"),
                       ("bad.csv", "member_id,name,shop\n")):
        (tmp_path / name).write_text(text, encoding="utf-8")
    files = ["--merchants", str(tmp_path / "merchants.csv"), "--stores", str(tmp_path / "stores.csv"),
             "--members", str(tmp_path / "members.csv")]
    done = run_ledger_cli(ledger_dir, env, "import", *files, check=False)
    assert done.returncode == 1, "a refused row is worth a non-zero exit"
    assert "members           2 rows: 1 imported, 0 already there, 1 refused" in done.stdout
    assert "balances   file 100.00 CNY  imported 100.00 CNY  ledger before 0.00 CNY  after 100.00 CNY" in done.stdout
    assert "refused    members.csv line 3: balance -1 is negative" in done.stdout and "\nreconciled" in done.stdout
    again = json.loads(run_ledger_cli(ledger_dir, env, "import", *files, "--json", check=False).stdout)
    assert again["files"]["members"]["unchanged"] == 1 and again["reconciled"]
    bad = run_ledger_cli(ledger_dir, env, "import", "--members", str(tmp_path / "bad.csv"), check=False)
    assert bad.returncode != 0 and "unknown column(s) shop" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    missing = run_ledger_cli(ledger_dir, env, "import", "--members", str(tmp_path / "nope.csv"), check=False)
    assert "cannot read" in missing.stderr and "Traceback" not in missing.stderr
    assert run_ledger_cli(ledger_dir, env, "verify").returncode == 0


@pytest.mark.postgres
def test_the_import_reconciles_and_is_idempotent_on_postgresql(tmp_path: Path, postgres_server: Any) -> None:
    home = init_ledger(tmp_path / "pg-ledger", postgres_server.url(postgres_server.create_database()), issuer="acme",
                       clock=lambda: T0_MS)
    try:
        text, balance, points = members_csv(300)
        report = _import(text + "BAD1,Bad,spa-1,,,,,-1.00,,,,\n")
        assert report["reconciled"] and report["files"]["members"]["imported"] == 300
        assert report["totals"]["after"] == {"balance": balance, "points": points}
        assert [r["line"] for r in report["refused"]] == [302]
        again = _import(text)
        assert again["files"]["members"] == {"read": 300, "imported": 0, "unchanged": 300, "refused": 0}
        assert [m["member_id"] for m in admin.find_members(name="member 7 zhang")] == ["M000007"]
        assert verify.verify_all() == []
    finally:
        home.database.close()


@given(st.lists(st.lists(st.text(max_size=12), min_size=0, max_size=6), max_size=8))
@settings(max_examples=200, deadline=None)
def test_any_members_file_gives_rows_or_refusals_never_a_traceback(table: list[list[str]]) -> None:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["member_id", "name", "store_id", "balance", "points", "tier", "consent_sms"])
    writer.writerows(table)
    lines = set()
    for item in rows.read_members(out.getvalue(), "CNY"):
        assert isinstance(item, rows.MemberRow | rows.Refusal)
        assert item.line not in lines
        lines.add(item.line)
        if isinstance(item, rows.MemberRow):
            assert item.balance >= 0 and item.points >= 0 and item.member_id and item.name


@given(st.integers(min_value=0, max_value=10**12))
def test_a_balance_is_read_to_the_cent(minor: int) -> None:
    text = f"member_id,name,store_id,balance\nX1,Name,s,{minor // 100}.{minor % 100:02d}\n"
    (row,) = list(rows.read_members(text, "CNY"))
    assert isinstance(row, rows.MemberRow) and row.balance == minor
