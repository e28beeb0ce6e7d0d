"""Property: over random multi-merchant workloads (top-ups, sales, refunds, voids, points, coupons, fees, late
offline entries across a period boundary) every statement sums to zero, liabilities tie out period to period and
to the members' balances, ``ledger verify`` finds nothing, and closing a closed period again gives the same signed
bytes. Real SQLite ledgers and the real apply path; the workload keeps its own books to check the totals."""

from __future__ import annotations

import random
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cardkit.core.money import round_half_up
from cardkit.journal import GENESIS_HASH, JournalEntry, make_entry
from ledger import admin, apply, store
from ledger.home import init_ledger
from ledger.merchants import admin as merchants
from ledger.settlement import books, periods
from ledger.settlement.records import ClosedPeriod
from tests.fixtures.ledger import with_members_card

NOV, DEC = periods.start_ms("2026-11"), periods.start_ms("2026-12")
MERCHANTS = ("restaurant", "shop", "spa")
STORES = ("restaurant-1", "shop-1", "spa-1", "lobby")  # the lobby belongs to no merchant: the program's own


@dataclass
class Books:
    """What the workload did, kept by the test itself."""

    balance: dict[str, int] = field(default_factory=dict)
    points: dict[str, int] = field(default_factory=dict)
    sales: list[dict[str, Any]] = field(default_factory=list)
    topups: list[dict[str, Any]] = field(default_factory=list)
    coupons: dict[str, list[str]] = field(default_factory=dict)
    taken_in: int = 0


class Tills:
    def __init__(self) -> None:
        self.ids = [admin.add_terminal(f"till {s}", s)[0] for s in STORES]
        self.heads: dict[str, JournalEntry | None] = dict.fromkeys(self.ids)

    def apply(self, till: int, kind: str, payload: dict[str, Any], wall_ms: int) -> str:
        tid = self.ids[till]
        head = self.heads[tid]
        entry = make_entry(terminal_id=tid, seq=head.seq + 1 if head else 1,
                           prev_hash=head.hash if head else GENESIS_HASH, wall_ms=wall_ms, mono_ns=0,
                           cashier_id="c1", kind=kind, payload=with_members_card(payload, str(store.db.database)),
                           entry_uuid=str(uuid.uuid4()))
        with store.atomic_write():
            apply.apply_entries([entry], batch_id=f"b-{tid}-{entry.seq}", now_ms=wall_ms)
            store.Terminal.update(last_seq=entry.seq, last_hash=entry.hash).where(
                store.Terminal.terminal_id == tid).execute()
        self.heads[tid] = entry
        return entry.uuid


def _share(x: int, r: int, n: int) -> int:
    return round_half_up(x * r, n) if n else 0


def _step(rng: random.Random, tills: Tills, ledger_books: Books, members: list[str], wall_ms: int) -> None:
    till = rng.randrange(len(STORES))
    member = rng.choice(members)
    base = {"card": "card", "member": member, "cur": "CNY", "offline": rng.random() < 0.3}
    balance, points = ledger_books.balance[member], ledger_books.points[member]
    choice = rng.choice(["topup", "topup", "sale", "sale", "sale", "refund", "void", "redeem", "fee"])
    if choice == "topup":
        amount = rng.randrange(1, 60_000)
        bonus = rng.choice([0, amount // 10])
        u = tills.apply(till, "topup", {**base, "amount": amount, "bonus": bonus, "tender": "cash"}, wall_ms)
        ledger_books.topups.append({"uuid": u, "till": till, "amount": amount, "bonus": bonus, "void": False,
                                    "member": member})
        ledger_books.balance[member] += amount + bonus
        ledger_books.taken_in += amount
    elif choice == "sale":
        gross = rng.randrange(1, 40_000)
        coupon_ids = ledger_books.coupons[member][:1] if rng.random() < 0.3 else []
        coupon_disc = min(gross, 500) if coupon_ids else 0
        redeem = min(max(points, 0), rng.choice([0, 100, 300]))
        net = gross - coupon_disc
        sv = min(net, max(balance, 0)) if not base["offline"] else net  # offline may overdraw
        sv = sv if rng.random() < 0.8 else 0
        earn = net // 100
        payload = {**base, "gross": gross, "tier_disc": 0, "coupon_disc": coupon_disc, "pts_disc": 0, "net": net,
                   "tender": "sv" if sv else "cash", "sv": sv, "pts_earn": earn, "pts_redeem": redeem,
                   "coupons": coupon_ids}
        u = tills.apply(till, "sale", payload, wall_ms)
        for cid in coupon_ids:
            ledger_books.coupons[member].remove(cid)
        ledger_books.sales.append({"uuid": u, "payload": payload, "refunded": 0, "void": False, "member": member})
        ledger_books.balance[member] -= sv
        ledger_books.points[member] += earn - redeem
    elif choice == "refund":
        open_sales = [s for s in ledger_books.sales if not s["void"] and s["refunded"] < s["payload"]["net"]]
        if not open_sales:
            return
        sale = rng.choice(open_sales)
        p, before = sale["payload"], sale["refunded"]
        after = before + rng.randrange(1, p["net"] - before + 1)
        sv = _share(p["sv"], after, p["net"]) - _share(p["sv"], before, p["net"])
        back = _share(p["pts_redeem"], after, p["net"]) - _share(p["pts_redeem"], before, p["net"])
        rev = _share(p["pts_earn"], after, p["net"]) - _share(p["pts_earn"], before, p["net"])
        tills.apply(till, "refund", {**base, "member": sale["member"], "orig": sale["uuid"], "amount": after - before,
                                     "sv": sv, "pts_back": back, "pts_rev": rev, "tender": p["tender"],
                                     "supervisor": "s1"}, wall_ms)
        sale["refunded"] = after
        ledger_books.balance[sale["member"]] += sv
        ledger_books.points[sale["member"]] += back - rev
    elif choice == "void":
        candidates = ([("sale", s) for s in ledger_books.sales if not s["void"] and not s["refunded"]]
                      + [("topup", t) for t in ledger_books.topups if not t["void"]
                         and ledger_books.balance[t["member"]] >= t["amount"] + t["bonus"]])
        if not candidates:
            return
        what, original = rng.choice(candidates)
        owner = original["member"]
        if what == "sale":
            p = original["payload"]
            payload = {**base, "member": owner, "orig": original["uuid"], "sv": p["sv"], "pts_back": p["pts_redeem"],
                       "pts_rev": p["pts_earn"], "coupons_back": p["coupons"], "spend": p["net"], "supervisor": "s1"}
            ledger_books.balance[owner] += p["sv"]
            ledger_books.points[owner] += p["pts_redeem"] - p["pts_earn"]
            ledger_books.coupons[owner] += p["coupons"]
        else:
            payload = {**base, "member": owner, "orig": original["uuid"],
                       "sv": -(original["amount"] + original["bonus"]), "pts_back": 0, "pts_rev": 0,
                       "coupons_back": [], "spend": 0, "supervisor": "s1"}
            ledger_books.balance[owner] -= original["amount"] + original["bonus"]
            ledger_books.taken_in -= original["amount"]
        tills.apply(till, "void", payload, wall_ms)
        original["void"] = True
    elif choice == "redeem" and points > 0:
        pts = rng.randrange(1, points + 1)
        tills.apply(till, "redeem", {**base, "pts": pts, "item": "mug"}, wall_ms)
        ledger_books.points[member] -= pts
    elif choice == "fee":
        tender = "sv" if balance >= 9_900 else "cash"
        tills.apply(till, "membership_fee", {**base, "amount": 9_900, "tender": tender, "tier": "preferred",
                                             "until": wall_ms // 1000 + 86_400 * 365}, wall_ms)
        ledger_books.balance[member] -= 9_900 if tender == "sv" else 0


def _check_statement(document: dict[str, Any]) -> None:
    assert sum(p["net"] for p in document["positions"]) == 0
    for row in document["liability"]:
        assert row["opening"] + row["joined"] + row["taken_in"] - row["redeemed"] + row["adjustments"] == \
            row["closing"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # each example is a whole ledger: no shrinking
@given(seed=st.integers(0, 2**32), before=st.integers(0, 25), after=st.integers(0, 25),
       late=st.integers(0, 6), direct=st.booleans())
def test_random_workloads_settle_exactly(seed: int, before: int, after: int, late: int, direct: bool) -> None:
    run_workload(seed, before, after, late, direct)


def run_workload(seed: int, before: int, after: int, late: int, direct: bool, db_url: str | None = None) -> None:
    """One workload on a fresh ledger (SQLite in a temporary directory, or the PostgreSQL database ``db_url``)."""
    rng = random.Random(seed)
    clock = {"now": NOV + 3_600_000}
    with tempfile.TemporaryDirectory() as tmp:
        home = init_ledger(Path(tmp) / "ledger", db_url, clock=lambda: clock["now"])
        home.randbytes = random.Random(seed).randbytes
        try:
            for merchant in MERCHANTS:
                merchants.add_merchant(merchant.title(), merchant_id=merchant)
                merchants.assign_store(f"{merchant}-1", merchant)
            merchants.set_program(point_cost=(rng.randrange(0, 5), rng.randrange(1, 4)),
                                  float_holder="direct" if direct else "operator")
            ledger_books = Books()
            members = []
            for n in range(3):
                opening = rng.choice([0, 10_000])
                member = admin.add_member(f"M{n}", store_id=rng.choice(STORES), balance=opening)
                members.append(member)
                ledger_books.balance[member], ledger_books.points[member] = opening, 0
                ledger_books.coupons[member] = []
                for _ in range(2):
                    coupon = admin.issue_coupon(member, amount_off=500)
                    funder = rng.choice([*MERCHANTS, None])
                    if funder:
                        merchants.set_coupon_funder(coupon, funder)
                    ledger_books.coupons[member].append(coupon)
            tills = Tills()
            for i in range(before):
                _step(rng, tills, ledger_books, members, NOV + 3_600_000 + i * 60_000)
            clock["now"] = DEC + 1_000
            november, _ = books.close("2026-11", actor="test")
            for i in range(after + late):
                dated = NOV + 7_200_000 + i if i < late else DEC + 3_600_000 + i * 60_000
                _step(rng, tills, ledger_books, members, dated)
            clock["now"] = periods.start_ms("2027-01") + 1_000
            december, _ = books.close("2026-12", actor="test")
            again, closed_now = books.close("2026-11", actor="test")

            assert not closed_now and bytes(again.statement) == bytes(november.statement)
            assert bytes(ClosedPeriod.get_by_id("2026-11").statement) == bytes(november.statement)
            nov, dec = books.model_document(november), books.model_document(december)
            for document in (nov, dec):
                _check_statement(document)
            nov_closing = {r["issuer"]: r["closing"] for r in nov["liability"]}
            dec_opening = {r["issuer"]: r["opening"] for r in dec["liability"]}
            assert {k: v for k, v in nov_closing.items() if v} == {k: v for k, v in dec_opening.items() if v}
            assert sum(r["closing"] for r in dec["liability"]) == sum(ledger_books.balance.values())
            taken = sum(p["sv_taken_in"] for d in (nov, dec) for p in d["parties"])
            taken += sum(a["sv_taken_in"] for a in dec["adjustments"])
            assert taken == ledger_books.taken_in
            projected = {p.member_id: (p.balance, p.points) for p in store.MemberProjection.select()}
            for member in members:
                assert projected.get(member, (ledger_books.balance[member], 0)) == (
                    ledger_books.balance[member], ledger_books.points[member]), admin.verify_ledger()
            assert admin.verify_ledger() == []
        finally:
            home.database.close()
