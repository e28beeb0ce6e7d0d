"""Funding lines, statements, closing, late entries and verify, in-process on a real SQLite ledger."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.journal import GENESIS_HASH, make_entry
from ledger import admin, store
from ledger.errors import LedgerError
from ledger.home import Ledger, init_ledger
from ledger.merchants import admin as merchants
from ledger.settlement import books, export, model, periods
from ledger.settlement.records import ClosedPeriod, FundingLine
from tests.fixtures.ledger import InProcessTill as Till
from tests.fixtures.ledger import enroll_in_process, sale, topup, with_members_card

NOV = periods.start_ms("2026-11")
DEC = periods.start_ms("2026-12")


class Clock:
    def __init__(self) -> None:
        self.now_ms = NOV + 86_400_000

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    home = init_ledger(tmp_path / "ledger", issuer="hotel", clock=clock)
    home.randbytes = random.Random(7).randbytes
    for name in ("restaurant", "shop", "spa"):
        merchants.add_merchant(name.title(), merchant_id=name)
        merchants.assign_store(f"{name}-1", name)
    merchants.set_program(point_cost=(1, 1), name="Hotel")
    yield home
    home.database.close()


def till_at(ledger: Ledger, store_id: str) -> Till:
    _, code = admin.add_terminal(f"{store_id} till", store_id)
    key = Ed25519PrivateKey.generate()
    body = enroll_in_process(ledger, code, key)
    till = Till(ledger, body["terminal_id"], key, bytes.fromhex(body["ledger_hpke_public_key"]))
    till.wall_ms = NOV + 3_600_000
    return till


def push(till: Till, kind: str, payload: dict[str, object]) -> str:
    """Journal and sync one entry (uuids unique across tills, as real terminals make them)."""
    prev = till.entries[-1].hash if till.entries else GENESIS_HASH
    till.wall_ms += 1
    entry = make_entry(terminal_id=till.terminal_id, seq=len(till.entries) + 1, prev_hash=prev, wall_ms=till.wall_ms,
                       mono_ns=0, cashier_id="c1", kind=kind,
                       payload=with_members_card(dict(payload), str(till.ledger.ledger_dir)),
                       entry_uuid=str(uuid.uuid4()))
    till.entries.append(entry)
    result = till.ingest(entry.seq, entry.seq)
    assert result.applied == 1, result
    return entry.uuid


def positions(document: dict[str, object]) -> dict[str, int]:
    return {p["party"]: p["net"] for p in document["positions"]}  # type: ignore[attr-defined,index]


def test_three_merchants_settle_exactly(ledger: Ledger, clock: Clock) -> None:
    shop, restaurant, spa = (till_at(ledger, f"{m}-1") for m in ("shop", "restaurant", "spa"))
    li = admin.add_member("Li", store_id="shop-1")
    push(shop, "topup", topup(li, 100_000, bonus=10_000))                     # shop takes 1000.00 (+100.00 bonus)
    meal = push(restaurant, "sale", sale(li, 30_000, pts_earn=300))           # 300.00 of it spent at the restaurant
    push(spa, "sale", sale(li, 20_000, pts_earn=200, pts_redeem=0))           # 200.00 at the spa
    refund = sale(li, 0)
    refund.update({"orig": meal, "amount": 10_000, "sv": 10_000, "pts_back": 0, "pts_rev": 100,
                   "supervisor": "s1"})
    for key in ("gross", "tier_disc", "coupon_disc", "pts_disc", "net", "pts_earn", "pts_redeem", "coupons"):
        del refund[key]
    push(spa, "refund", refund)                                               # refunded at the spa: the meal's
    document = books.draft("2026-11")
    # shop owes 1000 + 100 bonus; restaurant: 300 - 100 redeemed, points 300 - 100 issued at 0.01 = 2.00 owed;
    # spa: 200 redeemed, 200 points issued = 2.00 owed
    assert positions(document) == {"shop": -110_000, "restaurant": 20_000 - 200, "spa": 20_000 - 200,
                                   "program": 110_000 - 39_600}
    assert sum(positions(document).values()) == 0
    assert [r["closing"] for r in document["liability"] if r["issuer"] == "shop"] == [110_000 - 40_000]
    assert store.MemberProjection.get_by_id(li).balance == 70_000
    assert admin.verify_ledger() == []

    clock.now_ms = DEC + 1_000
    row, first = books.close("2026-11", actor="test")
    again, second = books.close("2026-11", actor="test")
    assert first and not second and bytes(again.statement) == bytes(row.statement)
    audit = store.AuditLog.get(store.AuditLog.action == "settlement_close")
    assert audit.details["sha256"] == row.sha256 == model.digest(bytes(row.statement))

    spa.wall_ms = NOV + 7_200_000  # an offline entry from November that arrives in December
    push(spa, "sale", sale(li, 5_000))
    line = FundingLine.get((FundingLine.flow == "sv_out") & (FundingLine.amount == 5_000))
    assert (line.period, line.late_from) == ("2026-12", "2026-11")
    assert bytes(ClosedPeriod.get_by_id("2026-11").statement) == bytes(row.statement)
    december = books.draft("2026-12")
    assert [(a["from_period"], a["party"], a["net"]) for a in december["adjustments"]] == [
        ("2026-11", "spa", 5_000), ("2026-11", "program", -5_000)]
    assert positions(december) == {"shop": 0, "restaurant": 0, "spa": 5_000, "program": -5_000}
    assert december["transfers"] == [{"from": "program", "to": "spa", "amount": 5_000}]
    assert admin.verify_ledger() == []

    csv_text = export.to_csv(december)
    assert "adjustment,2026-12,2026-11,spa" in csv_text
    assert "transfer,2026-12" in csv_text


def test_closing_refuses_an_open_month_and_verify_catches_a_changed_statement(ledger: Ledger,
                                                                             clock: Clock) -> None:
    with pytest.raises(LedgerError, match="not over until 2026-12-01"):
        books.close("2026-11", actor="t")
    with pytest.raises(LedgerError, match="YYYY-MM"):
        books.close("2026-13", actor="t")
    row, _ = books.close("2026-11", actor="t", early=True)
    document = json.loads(bytes(row.statement))
    document["parties"][0]["net"] = 1
    ClosedPeriod.update(statement=model.canonical_bytes(document)).execute()
    problems = admin.verify_ledger()
    assert any("does not match its hash" in p for p in problems)
    assert any("signature does not verify" in p for p in problems)


def test_coupons_are_funded_by_their_issuer_and_voids_reverse_them(ledger: Ledger) -> None:
    shop, spa = till_at(ledger, "shop-1"), till_at(ledger, "spa-1")
    li = admin.add_member("Li", store_id="shop-1", balance=50_000)
    coupon = admin.issue_coupon(li, amount_off=1_000)
    merchants.set_coupon_funder(coupon, "shop")
    paid = sale(li, 9_000, coupons=[coupon])
    paid.update({"gross": 10_000, "coupon_disc": 1_000})
    original = push(spa, "sale", paid)
    document = books.draft("2026-11")
    rows = {r["party"]: r for r in document["parties"]}
    assert rows["shop"]["coupons_funded"] == 1_000 and rows["spa"]["coupons_honoured"] == 1_000
    assert rows["spa"]["sv_redeemed"] == 9_000
    lines = FundingLine.select().where(FundingLine.flow == "sv_out")
    assert [(r.issuer_id, r.amount) for r in lines] == [("program", 9_000)]  # the opening balance is the program's
    void = {"card": "card", "member": li, "cur": "CNY", "orig": original, "sv": 9_000, "pts_back": 0, "pts_rev": 0,
            "coupons_back": [coupon], "spend": 9_000, "supervisor": "s", "offline": False}
    push(shop, "void", void)
    after = {r["party"]: r for r in books.draft("2026-11")["parties"]}
    assert all(after[p]["net"] == 0 for p in after)
    assert admin.verify_ledger() == []


def test_direct_netting_uses_the_fewest_transfers() -> None:
    positions = {"a": 500, "b": -500, "c": 300, "d": -200, "e": -100}
    moves = model.transfers(positions, "direct")
    assert len(moves) == 3 == model.fewest_transfers_count(positions)
    settled = dict(positions)
    for payer, payee, amount in moves:
        settled[payer] += amount
        settled[payee] -= amount
    assert set(settled.values()) == {0}
    assert model.transfers({"a": 10, "program": -10}, "operator") == [("program", "a", 10)]


def test_liability_report_reserves_a_share_of_the_previous_quarter(ledger: Ledger, clock: Clock) -> None:
    today, clock.now_ms = clock.now_ms, periods.start_ms("2026-09")  # the shop's till was enrolled in September
    shop = till_at(ledger, "shop-1")
    clock.now_ms = today
    spa = till_at(ledger, "spa-1")
    li = admin.add_member("Li", store_id="shop-1")
    shop.wall_ms = periods.start_ms("2026-09") + 3_600_000  # a September top-up: last quarter's balance
    push(shop, "topup", topup(li, 100_000))
    spa.wall_ms = NOV + 3_600_000
    push(spa, "topup", topup(li, 20_000))
    push(spa, "sale", sale(li, 30_000))  # spends the shop's stored value first
    report = books.reserve_report("2026-11-02")
    rows = {r["issuer"]: r for r in report["issuers"]}
    assert (rows["shop"]["outstanding"], rows["shop"]["previous_quarter_end"], rows["shop"]["reserve"]) == (
        70_000, 100_000, 30_000)
    assert (rows["spa"]["outstanding"], rows["spa"]["reserve"]) == (20_000, 0)
    assert report["total_outstanding"] == store.MemberProjection.get_by_id(li).balance == 90_000
    assert "reserve 30.00%" in export.reserve_text(report)
    with pytest.raises(LedgerError, match="YYYY-MM-DD"):
        books.reserve_report("2026-11-31")


def topped_up_at_the_shop_and_spent_at_the_spa(ledger: Ledger) -> tuple[str, Till]:
    """Li, topped up 500.00 (+50.00 bonus) at the shop and spending 200.00 of it at the spa: (member, spa till)."""
    shop, spa = till_at(ledger, "shop-1"), till_at(ledger, "spa-1")
    li = admin.add_member("Li", store_id="shop-1", balance=1_000)
    push(shop, "topup", topup(li, 50_000, bonus=5_000))
    push(spa, "sale", sale(li, 20_000, pts_earn=200))
    return li, spa


def test_a_ledger_from_before_funding_lines_is_backfilled(ledger: Ledger) -> None:
    from ledger.settlement.hook import backfill
    from ledger.settlement.records import FundingTotal, MemberLots

    topped_up_at_the_shop_and_spent_at_the_spa(ledger)
    before = books.draft("2026-11")
    FundingLine.delete().execute()
    FundingTotal.delete().execute()
    MemberLots.delete().execute()
    assert any("without its funding record" in p for p in admin.verify_ledger())
    assert backfill() == 2
    assert backfill() == 0  # a second run changes nothing
    assert admin.verify_ledger() == []
    assert books.draft("2026-11") == before


def test_statements_come_from_totals_kept_with_the_lines_and_verify_compares_them(ledger: Ledger) -> None:
    from ledger.settlement.records import FundingTotal

    li, spa = topped_up_at_the_shop_and_spent_at_the_spa(ledger)
    push(spa, "sale", sale(li, 10_000, pts_earn=100))
    lines = list(FundingLine.select())
    totals = {(t.flow, t.merchant_id, t.issuer_id): (int(t.amount), int(t.points), int(t.lines))
              for t in FundingTotal.select().where(FundingTotal.period == "2026-11")}
    for key, (amount, points, count) in totals.items():
        mine = [f for f in lines if (f.flow, f.merchant_id, f.issuer_id) == key]
        assert (amount, points, count) == (sum(int(f.amount) for f in mine), sum(int(f.points) for f in mine),
                                           len(mine))
    assert sum(t[2] for t in totals.values()) == len(lines)
    assert admin.verify_ledger() == []

    FundingTotal.update(amount=FundingTotal.amount + 1).where(FundingTotal.flow == "sv_out").execute()
    problems = admin.verify_ledger()
    assert any("sv_out total of spa" in p and "funding lines add up to" in p for p in problems), problems


def test_a_ledger_from_before_the_totals_gets_them_from_its_lines(ledger: Ledger) -> None:
    from ledger.settlement.records import OLD_COVERING_INDEX, OLD_ORIG_UUID_INDEX, ORIG_UUID_INDEX, FundingTotal

    topped_up_at_the_shop_and_spent_at_the_spa(ledger)
    before = books.draft("2026-11")
    # the older layout: lines with their covering index, no totals
    FundingTotal.delete().execute()
    store.db.execute_sql(f'CREATE INDEX "{OLD_COVERING_INDEX}" ON "funding_line" ("period", "late_from", "flow", '
                         '"merchant_id", "issuer_id", "currency", "amount", "points")')
    store.db.execute_sql(f'CREATE INDEX "{OLD_ORIG_UUID_INDEX}" ON "funding_line" ("orig_uuid")')
    store.create_schema()  # what `ledger serve` and `ledger init` run on an existing ledger
    indexes = {str(r[0]) for r in store.db.execute_sql(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'funding_line'").fetchall()}
    assert OLD_COVERING_INDEX not in indexes and OLD_ORIG_UUID_INDEX not in indexes
    assert ORIG_UUID_INDEX in indexes  # the partial one: only reversals have an orig_uuid
    assert FundingTotal.select().count() > 0
    assert books.draft("2026-11") == before
    assert admin.verify_ledger() == []
    store.create_schema()  # once only: a second start adds nothing twice
    assert books.draft("2026-11") == before


def test_a_funding_row_is_the_entrys_columns_then_the_lines_fields_in_order() -> None:
    from ledger.settlement.funding import Line
    from ledger.settlement.hook import LINE_COLUMNS

    # record_funding builds each row as entry columns + the Line tuple + period columns
    assert Line._fields == ("flow", "merchant", "issuer", "amount", "points")
    assert LINE_COLUMNS[6:11] == ("flow", "merchant_id", "issuer_id", "amount", "points")
