"""``cardpos ledger import`` writes members a chunk at a time and streams the members file from its path: where the
chunk boundaries fall changes nothing (the same members, staging rows, consents, report and reconciliation), a bad
row never takes the good rows of its chunk with it, and a streamed file imports exactly as the same bytes do. The
faster row checks give what the plain ones give."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit.core.money import CURRENCY_EXPONENTS, Money
from cardkit.errors import CardposError
from ledger import admin, member_facts, pii, store, verify
from ledger.home import init_ledger
from ledger.importer import rows
from ledger.importer.run import import_program
from ledger.importer.staging import ImportedMember, LegacyCard

T0_MS = 1_793_800_000_000
MERCHANTS = "merchant_id,name\nspa,Hotel Spa\nshop,Hotel Shop\n"
STORES = "store_id,merchant_id,name\nspa-1,spa,Spa floor 3\nshop-1,shop,Lobby shop\n"
HEADER = "member_id,name,store_id,phone,email,notes,tier,balance,points,card_number,consent_sms,consent_email"


def _good(n: int) -> str:
    return (f"M{n:04d},Member {n} Li,{'spa-1' if n % 2 else 'shop-1'},139{n:08d},m{n}@example.com,note {n},"
            f"{('standard', 'gold', 'platinum')[n % 3]},{n}.{n % 100:02d},{n * 3},OLD-{n:06d},"
            f"{('yes', 'no', '')[n % 3]},{'yes' if n % 4 == 0 else ''}")


BAD_ROWS = {  # the row placed at each data-row position (1-based): bad ones at and around chunk boundaries
    7: "B0007,Bad Balance,spa-1,,,,,1.005,,,,",
    8: "B0008,Bad Tier,spa-1,,,,diamond,,,,,",
    14: "M0003,Same Id Again,spa-1,,,,,,,,,",
    15: "B0015,Card Again,spa-1,,,,,,,OLD-000002,,",
    21: "CLASH,Already Here,spa-1,,,,,,,,,",
    22: "B0022,Nowhere,nowhere,,,,,,,,,",
    28: "B0028,Short,spa-1",
    29: "B0029,Consent,spa-1,,,,,,,,perhaps,",
}


def members_file(count: int = 40) -> str:
    lines = [HEADER]
    for position in range(1, count + 1):
        lines.append(BAD_ROWS.get(position, _good(position)))
    return "\n".join(lines) + "\n"


def _snapshot() -> dict[str, Any]:
    """What the import wrote, in terms that do not depend on the ledger's keys (two ledgers have two keys):
    personal data decrypted, every lookup hash checked against what it should hash."""
    keys = pii.active()
    members = []
    for member in store.Member.select():
        details = keys.details_of(member)
        phone, email = pii.normal_phone(details.phone), pii.normal_email(details.email)
        assert member.phone_hash == (keys.lookup_hash("phone", phone) if phone else None)
        assert member.email_hash == (keys.lookup_hash("email", email) if email else None)
        words = {str(w.word_hash) for w in store.MemberNameWord.select().where(
            store.MemberNameWord.member_id == member.member_id)}
        assert words == {keys.lookup_hash("name", w) for w in pii.name_words(details.name)}
        members.append((member.member_id, details.name, details.phone, details.email, details.notes,
                        member.store_id, member.opening_tier, member.currency, int(member.opening_balance),
                        int(member.opening_points), member.created_ms, member.version))
    return {  # sorted here, not by the database (PostgreSQL's collation is not SQLite's byte order)
        "members": sorted(members),
        "staged": sorted((m.member_id, m.digest, m.consents, m.source, m.line, m.imported_ms)
                         for m in ImportedMember.select()),
        "cards": sorted((c.card_number, c.member_id) for c in LegacyCard.select()),
        "consents": sorted((c.member_id, c.channel, c.granted, c.at_ms, c.source, c.actor)
                           for c in member_facts.ConsentEvent.select()),
        "facts": sorted((f.member_id, f.updated_ms) for f in member_facts.MemberFactsRow.select()),
        "members_version": store.current("members"),
    }


def _import_into(root: Path, chunk: int, members: str | Path,
                 db_url: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fresh ledger with one member already there, the members file imported with ``chunk``-row chunks and
    then again; (the first report, what the ledger holds) and the second report is checked to be a no-op."""
    home = init_ledger(root, db_url, issuer="acme", clock=lambda: T0_MS)
    home.randbytes = random.Random(5).randbytes
    try:
        admin.add_member("Clash", store_id="store-1", member_id="CLASH", balance=500, points=5)
        given = ("members.csv", members.encode() if isinstance(members, str) else members)
        report = import_program(merchants_csv=("merchants.csv", MERCHANTS.encode()),
                                stores_csv=("stores.csv", STORES.encode()), members_csv=given, chunk=chunk).as_dict()
        held = _snapshot()
        again = import_program(members_csv=given, chunk=chunk).as_dict()
        assert again["reconciled"] and again["files"]["members"]["imported"] == 0
        assert again["files"]["members"]["unchanged"] == report["files"]["members"]["imported"]
        assert _snapshot() == held, "the second run changes nothing"
        assert verify.verify_all() == []
        return report, held
    finally:
        home.database.close()


def test_chunk_boundaries_anywhere_give_the_same_members_report_and_reconciliation(tmp_path: Path) -> None:
    text = members_file()
    whole, whole_held = _import_into(tmp_path / "one-chunk", 1000, text)
    assert whole["reconciled"] and whole["files"]["members"] == {"read": 40, "imported": 32, "unchanged": 0,
                                                                 "refused": 8}
    assert [r["line"] for r in whole["refused"]] == [p + 1 for p in sorted(BAD_ROWS)]
    for chunk in (1, 7, 13):
        report, held = _import_into(tmp_path / f"chunks-of-{chunk}", chunk, text)
        assert report == whole, f"chunks of {chunk}"
        assert held == whole_held, f"chunks of {chunk}"


@pytest.mark.postgres
def test_small_chunks_on_postgresql_give_what_one_chunk_gives_on_sqlite(tmp_path: Path, postgres_server: Any) -> None:
    text = members_file()
    on_sqlite = _import_into(tmp_path / "sqlite", 1000, text)
    on_postgres = _import_into(tmp_path / "postgres", 7, text, postgres_server.url(postgres_server.create_database()))
    assert on_postgres == on_sqlite


def test_a_bad_row_in_a_chunk_loses_none_of_the_good_rows_around_it(tmp_path: Path) -> None:
    report, held = _import_into(tmp_path / "ledger", 7, members_file())
    imported = {m[0] for m in held["members"]} - {"CLASH"}
    good = {f"M{p:04d}" for p in range(1, 41) if p not in BAD_ROWS}
    assert imported == good, "every good row imported, whichever chunk its bad neighbours were in"
    reasons = {r["line"]: r["reason"] for r in report["refused"]}
    assert "decimals" in reasons[8] and "tier 'diamond'" in reasons[9] and "line 4" in reasons[15]
    assert "card OLD-000002" in reasons[16] and "already exists" in reasons[22] and "store nowhere" in reasons[23]
    assert "fields" in reasons[29] and "consent_sms" in reasons[30]
    balance = sum(p * 100 + p % 100 for p in range(1, 41) if p not in BAD_ROWS)
    assert report["totals"]["imported"] == {"balance": balance, "points": sum(3 * p for p in range(1, 41)
                                                                               if p not in BAD_ROWS)}
    assert report["totals"]["after"]["balance"] == 500 + balance and report["reconciled"]


def test_a_card_held_by_an_earlier_import_is_refused_in_any_chunk(tmp_path: Path) -> None:
    home = init_ledger(tmp_path / "ledger", issuer="acme", clock=lambda: T0_MS)
    try:
        import_program(merchants_csv=("merchants.csv", MERCHANTS.encode()),
                       stores_csv=("stores.csv", STORES.encode()),
                       members_csv=("first.csv", f"{HEADER}\n{_good(1)}\n{_good(2)}\n".encode()))
        second = "\n".join([HEADER, _good(3), _good(4), "X1,Takes Card,spa-1,,,,,,,OLD-000001,,", _good(5),
                            _good(6), "X2,Takes Card,spa-1,,,,,,,OLD-000002,,", _good(7)]) + "\n"
        report = import_program(members_csv=("second.csv", second.encode()), chunk=3).as_dict()
        assert {r["line"]: r["reason"] for r in report["refused"]} == {
            4: "card OLD-000001 already belongs to member M0001", 7: "card OLD-000002 already belongs to member M0002"}
        assert report["files"]["members"]["imported"] == 5 and report["reconciled"]
    finally:
        home.database.close()


def test_a_members_file_streamed_from_its_path_imports_as_its_bytes_do(tmp_path: Path) -> None:
    text = members_file()
    path = tmp_path / "members.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())  # a spreadsheet's UTF-8 CSV starts with a byte-order mark
    from_bytes = _import_into(tmp_path / "from-bytes", 5, "\ufeff" + text)
    from_path = _import_into(tmp_path / "from-path", 5, path)
    assert from_path == from_bytes


def test_a_streamed_file_that_is_not_utf8_changes_nothing_and_names_the_byte(tmp_path: Path) -> None:
    home = init_ledger(tmp_path / "ledger", issuer="acme", clock=lambda: T0_MS)
    try:
        data = (HEADER + "\n").encode() + (_good(1) + "\n").encode() * 13_000 + b"M9,\xff\xfe,spa-1\n"
        assert len(data) > 1 << 20, "past the first block the streamed check reads"
        path = tmp_path / "members.csv"
        path.write_bytes(data)
        with pytest.raises(rows.ImportFileError) as streamed:
            import_program(members_csv=("members.csv", path))
        with pytest.raises(rows.ImportFileError) as whole:
            import_program(members_csv=("members.csv", data))
        bad_byte = data.index(b"\xff")
        expected = f"members.csv is not UTF-8 text (byte {bad_byte}); save it as UTF-8 CSV"
        assert str(streamed.value) == str(whole.value) == expected
        assert store.Member.select().count() == 0
        with pytest.raises(CardposError, match="cannot read"):
            import_program(members_csv=("gone.csv", tmp_path / "gone.csv"))
    finally:
        home.database.close()


@given(st.binary(max_size=64) | st.text(max_size=24).map(str.encode), st.lists(st.integers(1, 9), max_size=12))
@settings(max_examples=300, deadline=None)
def test_checking_utf8_in_blocks_finds_what_decoding_whole_finds(data: bytes, cuts: list[int]) -> None:
    blocks, at = [], 0
    for cut in cuts:
        blocks.append(data[at:at + cut])
        at += cut
    blocks.append(data[at:])
    try:
        rows.decode(data, "f.csv")
        whole = None
    except rows.ImportFileError as exc:
        whole = str(exc)
    try:
        assert rows.check_utf8(iter(blocks), "f.csv") == hashlib.sha256(data).hexdigest()
        streamed = None
    except rows.ImportFileError as exc:
        streamed = str(exc)
    assert streamed == whole


def _plain_amount(text: str, currency: str) -> int | str:
    """The balance as Money.parse reads it (the rule the importer's fast path must keep), or 'refused'."""
    if not text:
        return 0
    try:
        minor = Money.parse(text, currency).minor
    except CardposError:
        return "refused"
    return minor if 0 <= minor <= rows.MAX_BALANCE_MINOR else "refused"


@given(st.from_regex(r"\A-?[0-9]{0,17}(\.[0-9]{0,5})?\Z") | st.text(max_size=10),
       st.sampled_from(sorted(CURRENCY_EXPONENTS)))
@settings(max_examples=400, deadline=None)
def test_a_balance_is_read_as_money_reads_it(text: str, currency: str) -> None:
    try:
        got: int | str = rows._amount(text.strip(), currency)
    except rows.RowRefused:
        got = "refused"
    assert got == _plain_amount(text.strip(), currency)


def _plain_check(fields: dict[str, str]) -> str | None:
    """The field checks one field at a time (the rule the importer's one-pass check must keep)."""
    for name, value in fields.items():
        if len(value) > rows.MAX_FIELD_CHARS:
            return f"{name} is longer than {rows.MAX_FIELD_CHARS} characters"
        if name != "notes" and rows._CONTROL.search(value):
            return f"{name} holds a control character"
    return None


@given(st.dictionaries(st.sampled_from(["member_id", "name", "notes", "phone", "consent_sms"]),
                       st.text(alphabet=st.sampled_from("ab \t\n\x00\x7f\x1f"), max_size=8)
                       | st.sampled_from(["x" * (rows.MAX_FIELD_CHARS + 1), "x" * rows.MAX_FIELD_CHARS])))
@settings(max_examples=400, deadline=None)
def test_the_one_pass_field_check_refuses_what_the_field_by_field_check_refuses(fields: dict[str, str]) -> None:
    try:
        rows._check_lengths(fields)
        got = None
    except rows.RowRefused as exc:
        got = exc.reason
    assert got == _plain_check(fields)
