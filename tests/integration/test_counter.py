"""The counter over the real store (SQLite on disk), the real verifier and root-signed documents."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardkit.cards.challenge import sign_challenge
from cardkit.cards.verdict import RejectReason
from cardkit.core.members import Tier
from cardkit.core.money import Money
from cardkit.core.state import MemberState, fold
from cardkit.errors import DomainError, JournalError
from terminal.offline.cashiers import Cashier, CashierAuthError, CashierRoleError
from terminal.service.counter import Counter
from terminal.service.receipt import Receipt
from tests.fixtures.cards import key_from_seed
from tests.fixtures.counter import CARD_GOLD, CARD_NEW, CASHIER_PIN, SUPERVISOR_PIN, CounterWorld

M = Money.parse


def _supervisor(counter: Counter) -> Cashier:
    return counter.authorize_supervisor("s1", SUPERVISOR_PIN)


def test_tap_shows_the_member_from_the_snapshot(counter_world: CounterWorld) -> None:
    counter = counter_world.counter()
    assert counter.rules.version == 7  # the root-signed rules file was used, not the defaults
    tap = counter.tap(counter_world.token())
    assert tap.accepted and tap.member is not None
    view = tap.member
    assert (view.member_id, view.name, view.tier, view.balance, view.points) == \
        ("M0001", "Li Na", Tier.GOLD, M("1000.00"), 500)
    assert [c.coupon_id for c in view.coupons] == ["C10", "P5"]  # the expired one is not offered
    assert view.notes == "prefers paper receipts" and view.prefs == {"lang": "zh"}
    assert view.offline_estimate and view.known
    assert counter.store.journal.last_seq == 0  # an accepted tap records nothing


@pytest.mark.parametrize(("make", "reason"), [
    (lambda w: w.token(key=key_from_seed(bytes([9]) * 32)), RejectReason.BAD_SIGNATURE),
    (lambda w: w.token(expires_at=w.cards.now - 10_000), RejectReason.EXPIRED),
    (lambda w: w.token(issuer="other"), RejectReason.WRONG_ISSUER),
    (lambda w: b"\x00garbage", RejectReason.MALFORMED),
])
def test_every_reject_is_journaled_before_tap_returns(counter_world: CounterWorld, make, reason) -> None:
    counter = counter_world.counter()
    tap = counter.tap(make(counter_world), manual=True)
    assert not tap.accepted and tap.member is None and tap.verdict.reason == reason
    entries = counter.store.journal.entries()
    assert [e.kind for e in entries] == ["card_reject"]
    payload = entries[0].payload
    assert payload["reason"] == reason.value and payload["manual"] is True
    assert payload["card"] == (None if reason == RejectReason.MALFORMED else CARD_GOLD)
    assert tap.reject_entry is not None and tap.reject_entry.uuid == entries[0].uuid


def test_revoked_card_is_refused(counter_world: CounterWorld) -> None:
    counter_world.cards.revoke(CARD_GOLD)
    from terminal import documents
    revocations = counter_world.cards.revocations.to_bytes()
    documents.save_document(counter_world.data_dir, documents.REVOCATIONS_FILE, revocations)
    counter = counter_world.counter()
    tap = counter.tap(counter_world.token())
    assert tap.verdict.reason == RejectReason.REVOKED
    assert counter.store.journal.entries()[0].payload["reason"] == "revoked"


def test_challenge_cards(counter_world: CounterWorld) -> None:
    counter = counter_world.counter()
    token = counter_world.cards.challenge_token()
    card_key = counter_world.cards.card_key
    good = counter.tap(token, challenge=lambda nonce: sign_challenge(card_key, nonce))
    assert good.accepted
    clone_key = key_from_seed(bytes([7]) * 32)

    def broken_reader(nonce: bytes) -> bytes:
        raise TimeoutError("card removed")

    for challenge in (None, lambda nonce: sign_challenge(clone_key, nonce), broken_reader, lambda nonce: b"x"):
        tap = counter.tap(token, challenge=challenge)
        assert tap.verdict.reason == RejectReason.CHALLENGE_FAILED
    rejects = [e.payload["reason"] for e in counter.store.journal.entries()]
    assert rejects == ["challenge_failed"] * 4


def test_sale_is_journaled_then_acknowledged_and_the_view_follows(counter_world: CounterWorld) -> None:
    counter = counter_world.counter()
    claims = counter.tap(counter_world.token()).claims
    receipt = counter.sale(claims, M("123.45"), tender="sv", coupon_ids=["C10"], redeem_points=200,
                           cashier_id="c1")
    entry = counter.store.journal.get(receipt.uuid)
    assert entry is not None and entry.payload == receipt.payload and entry.cashier_id == "c1"
    assert "manual" not in entry.payload  # tapped, not typed
    typed = counter.sale(claims, M("1.00"), tender="cash", cashier_id="c1", manual=True)
    assert typed.payload["manual"] is True
    # gold: 12% of 123.45 = 14.814 -> 14.81; 108.64 - 10.00 - 2.00 = 96.64; points 96.64 x 1.5 = 144.96 -> 144
    p = receipt.payload
    assert (p["tier_disc"], p["coupon_disc"], p["pts_disc"], p["net"], p["sv"], p["pts_earn"]) == \
        (1481, 1000, 200, 9664, 9664, 144)
    text = receipt.to_text()
    assert "TOTAL" in text and "96.64 CNY" in text and receipt.uuid in text and "OFFLINE" in text
    view = counter.member_view(claims)
    assert (view.balance, view.points) == (M("903.36"), 500 - 200 + 144 + 1)
    assert [c.coupon_id for c in view.coupons] == ["P5"]  # C10 is used now
    assert [op.uuid for op in view.recent] == [typed.uuid, receipt.uuid] and not view.recent[0].synced
    with pytest.raises(DomainError) as caught:
        counter.sale(claims, M("60.00"), tender="cash", coupon_ids=["C10"])
    assert caught.value.code == "coupon_used"
    assert counter.store.journal.last_seq == 2  # the decline recorded nothing


def test_refunds_and_voids_conserve_exactly(counter_world: CounterWorld) -> None:
    counter = counter_world.counter()
    claims = counter.tap(counter_world.token()).claims
    start = counter.member_view(claims).state
    sale = counter.sale(claims, M("123.45"), tender="sv", coupon_ids=["C10"], redeem_points=200)
    sup = _supervisor(counter)
    first = counter.refund(sale.uuid, M("50.00"), supervisor=sup, cashier_id="c1")
    assert first.payload["supervisor"] == "s1" and first.payload["orig"] == sale.uuid
    with pytest.raises(DomainError) as caught:
        counter.refund(sale.uuid, M("46.65"), supervisor=sup)
    assert caught.value.code == "refund_exceeds" and "46.64" in str(caught.value)
    with pytest.raises(DomainError) as caught:
        counter.void(sale.uuid, supervisor=sup)
    assert caught.value.code == "already_refunded"
    counter.refund(sale.uuid, M("46.64"), supervisor=sup)
    end = counter.member_view(claims).state
    assert (end.balance, end.points, end.yearly_spend) == (start.balance, start.points, start.yearly_spend)
    assert "C10" in end.used_coupons
    # A void gives everything back, coupons included; a second void is refused.
    sale2 = counter.sale(claims, M("80.00"), tender="sv", coupon_ids=["P5"], redeem_points=100)
    counter.void(sale2.uuid, supervisor=sup)
    assert counter.member_view(claims).state == end
    with pytest.raises(DomainError) as caught:
        counter.void(sale2.uuid, supervisor=sup)
    assert caught.value.code == "already_voided"
    with pytest.raises(DomainError) as caught:
        counter.refund("00000000-0000-4000-8000-999999999999", M("1.00"), supervisor=sup)
    assert caught.value.code == "unknown_operation"


def test_refunds_need_a_supervisor(counter_world: CounterWorld) -> None:
    counter = counter_world.counter()
    claims = counter.tap(counter_world.token()).claims
    sale = counter.sale(claims, M("10.00"), tender="cash")
    cashier = counter.sign_in("c1", CASHIER_PIN)
    with pytest.raises(CashierRoleError):
        counter.refund(sale.uuid, M("1.00"), supervisor=cashier)
    with pytest.raises(CashierRoleError):
        counter.authorize_supervisor("c1", CASHIER_PIN)
    with pytest.raises(CashierAuthError):
        counter.authorize_supervisor("s1", "0000")
    kinds = [e.kind for e in counter.store.journal.entries()]
    assert kinds == ["sale", "cashier_event"]  # nothing refunded


def test_lockout_is_journaled(counter_world: CounterWorld) -> None:
    counter = counter_world.counter()
    for _ in range(5):
        with pytest.raises(CashierAuthError):
            counter.sign_in("c1", "9999")
    events = [e.payload for e in counter.store.journal.entries()]
    assert events == [{"event": "lockout", "cashier": "c1"}]


def test_offline_limits_from_first_offline_use_to_decline_through_the_counter(counter_world: CounterWorld) -> None:
    counter = counter_world.counter()
    claims = counter.tap(counter_world.token()).claims
    limit = counter.rules.offline.max_consecutive_offline_ops
    for i in range(limit):
        counter_world.clock.now += 60
        counter.sale(claims, M("10.00"), tender="sv")
        assert counter.store.journal.last_seq == i + 1
    counter_world.clock.now += 60
    with pytest.raises(DomainError) as caught:
        counter.sale(claims, M("10.00"), tender="sv")
    assert caught.value.code == "offline_limit"
    assert "cash and bank card still work" in str(caught.value)
    # Cash still works and still earns points; top-ups too.
    cash = counter.sale(claims, M("10.00"), tender="cash")
    assert cash.payload["pts_earn"] > 0
    counter.topup(claims, M("100.00"), tender="cash")
    # Back online, stored value is accepted again (and recorded as online).
    counter_world.online_flag[0] = True
    online = counter.sale(claims, M("10.00"), tender="sv")
    assert online.payload["offline"] is False
    counter_world.online_flag[0] = False
    counter.sale(claims, M("10.00"), tender="sv")  # the online use reset the offline count


def test_offline_daily_amount_and_stale_sync(counter_world: CounterWorld) -> None:
    counter = counter_world.counter()
    claims = counter.tap(counter_world.token()).claims
    counter.sale(claims, M("500.00"), tender="sv")  # gold: 440.00 from stored value
    words = "may spend 500.00 CNY offline per 24 hours and has 60.00 CNY left"
    with pytest.raises(DomainError, match=re.escape(words)):
        counter.sale(claims, M("100.00"), tender="sv")  # 88.00 more would pass the 500.00
    counter_world.clock.now += 86_401 + 60
    with pytest.raises(DomainError, match="the last sync was 24 h"):
        counter.sale(claims, M("10.00"), tender="sv")
    counter.store.sync_state.last_sync_ms = counter_world.clock.ms()
    counter.sale(claims, M("100.00"), tender="sv")  # a new day and a fresh sync


def test_nothing_is_acknowledged_that_was_not_stored(counter_world: CounterWorld) -> None:
    counter = counter_world.counter()
    claims = counter.tap(counter_world.token()).claims
    counter.sale(claims, M("10.00"), tender="sv")
    conn = counter.store.db.connection()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full once the free pages are used up
    receipts = []
    error: JournalError | None = None
    for _ in range(500):  # bounded: a few pages hold a few dozen entries
        before = counter.member_view(claims).state
        try:
            receipts.append(counter.sale(claims, M("1.00"), tender="cash"))
        except JournalError as exc:
            error = exc
            break
    assert error is not None and "disk is full" in str(error)
    conn.execute("PRAGMA max_page_count = 1073741823")
    # Exactly the acknowledged operations are in the journal; the failed one changed nothing.
    assert [e.uuid for e in counter.store.journal.entries(after_seq=1)] == [r.uuid for r in receipts]
    assert counter.member_view(claims).state == before
    assert counter.store.journal.verify_chain() is None
    counter.sale(claims, M("1.00"), tender="cash")  # space again: the chain carries on
    assert counter.store.journal.last_seq == 2 + len(receipts)


def test_member_never_sent_by_the_ledger(counter_world: CounterWorld) -> None:
    counter = counter_world.counter()
    tap = counter.tap(counter_world.new_member_token())
    assert tap.member is not None and not tap.member.known and tap.member.balance == M("0.00")
    # Issue 14: the unknown-balance path refuses stored value with its reason, not against a silent 0.00.
    with pytest.raises(DomainError) as caught:
        counter.sale(tap.claims, M("1.00"), tender="sv")
    assert caught.value.code == "unknown_balance" and "balance is not known" in str(caught.value)
    counter.topup(tap.claims, M("500.00"), tender="bank_card")
    view = counter.member_view(tap.claims)
    assert view.balance == M("550.00")
    # Still counted after the entries are synced: the ledger has not sent this member, so nothing else knows.
    counter.store.journal.mark_synced(counter.store.journal.last_seq)
    assert counter.member_view(tap.claims).balance == M("550.00")
    assert counter.history(CARD_NEW)[0].summary.startswith("top-up 500.00 CNY")


def test_synced_entries_are_not_counted_twice_after_a_new_snapshot(counter_world: CounterWorld) -> None:
    counter = counter_world.counter()
    claims = counter.tap(counter_world.token()).claims
    receipt = counter.sale(claims, M("100.00"), tender="sv")
    after = counter.member_view(claims).state
    # The ledger acks the entry and sends a snapshot that includes it.
    counter.store.journal.mark_synced(receipt.seq)
    counter.store.cache.apply_snapshot([{
        "member_id": "M0001", "name": "Li Na", "tier": "gold", "balance": after.balance, "points": after.points,
        "currency": "CNY", "yearly_spend": after.yearly_spend, "card_ids": [CARD_GOLD], "coupons": [],
    }], 2)
    view = counter.member_view(claims)
    assert (view.balance.minor, view.points) == (after.balance, after.points)
    assert view.recent[0].synced


def test_entries_synced_after_the_snapshot_still_count(counter_world: CounterWorld) -> None:
    """A push that succeeded before a failed pull: the snapshot predates the entry, so the entry is folded."""
    from terminal.service.counter import SNAPSHOT_SYNCED_SEQ

    counter = counter_world.counter()
    claims = counter.tap(counter_world.token()).claims
    counter.store.sync_state.set(SNAPSHOT_SYNCED_SEQ, 0)  # the snapshot was applied before any push
    counter.sale(claims, M("100.00"), tender="sv")
    counter.store.journal.mark_synced(1)  # pushed and acknowledged; the pull after it failed
    assert counter.member_view(claims).balance == M("912.00")
    counter.store.sync_state.set(SNAPSHOT_SYNCED_SEQ, 1)  # a later pull brought a snapshot that includes it
    counter.store.cache.apply_snapshot([{
        "member_id": "M0001", "name": "Li Na", "tier": "gold", "balance": 91_200, "points": 588,
        "currency": "CNY", "yearly_spend": 258_800, "card_ids": [CARD_GOLD], "coupons": [],
    }], 2)
    assert counter.member_view(claims).balance == M("912.00")


def test_member_update_tier_upgrade_fee_and_redeem(counter_world: CounterWorld) -> None:
    counter = counter_world.counter()
    claims = counter.tap(counter_world.token()).claims
    counter.update_member("M0001", notes="allergic to nuts", prefs={"lang": "en"}, cashier_id="c1")
    view = counter.member_view(claims)
    assert view.notes == "allergic to nuts" and view.prefs == {"lang": "en"}
    db_bytes = b"".join(p.read_bytes() for p in counter_world.data_dir.glob("terminal.sqlite3*"))
    assert b"allergic" not in db_bytes and b"Li Na" not in db_bytes  # PII encrypted at rest
    r = counter.redeem(claims, 300, "tote bag")
    assert r.after is not None and r.after.points == 200
    with pytest.raises(DomainError) as caught:
        counter.upgrade_tier(claims)
    assert caught.value.code == "tier_not_due"
    with pytest.raises(DomainError) as caught:  # 599.00 from stored value is past the offline daily limit
        counter.pay_membership_fee(claims, Tier.PLATINUM, tender="sv")
    assert caught.value.code == "offline_limit"
    fee = counter.pay_membership_fee(claims, Tier.PLATINUM, tender="bank_card")
    assert counter.member_view(claims).tier == Tier.PLATINUM
    assert fee.payload["amount"] == 59_900
    # The standard member with 1950.00 spent this year qualifies for preferred after one more sale.
    std = counter.tap(counter_world.std_token()).claims
    counter.sale(std, M("60.00"), tender="cash")
    assert counter.member_view(std).upgrade_due == Tier.PREFERRED
    up = counter.upgrade_tier(std)
    assert up.payload == {"member": "M0002", "card": std.card_id, "from": "standard", "to": "preferred"}
    assert counter.member_view(std).tier == Tier.PREFERRED


def test_z_report(counter_world: CounterWorld) -> None:
    counter = counter_world.counter()
    start_ms = counter_world.clock.ms()
    claims = counter.tap(counter_world.token()).claims
    s1 = counter.sale(claims, M("100.00"), tender="sv", redeem_points=100)
    counter.sale(claims, M("20.00"), tender="cash")
    counter.topup(claims, M("500.00"), tender="cash")
    counter.refund(s1.uuid, M("10.00"), supervisor=_supervisor(counter))
    counter.tap(b"junk")
    counter.store.journal.mark_synced(2)
    report = counter.z_report(start_ms)
    assert report.counts == {"sale": 2, "topup": 1, "refund": 1, "card_reject": 1}
    assert report.totals["sale"] == {"sv": s1.payload["net"], "cash": 1760}
    assert report.totals["topup"] == {"cash": 50_000} and report.bonus_issued == 5_000
    assert report.points_redeemed == 100
    assert report.points_issued == s1.payload["pts_earn"] + 26
    assert report.rejects == {"malformed": 1}
    assert (report.unsynced_in_period, report.unsynced_total) == (3, 3)
    assert "Z-REPORT" in report.to_text()
    closed = counter.close_shift("shift-1", start_ms)
    last = counter.store.journal.entries()[-1]
    assert last.kind == "shift_close" and last.payload["totals"] == closed.to_dict()


def test_two_counters_on_one_data_dir_never_overspend(counter_world: CounterWorld) -> None:
    """The app and a script share the data dir: concurrent sales on one balance cannot both spend it."""
    counter_world.online_flag[0] = True  # no offline limits: only the balance decides
    a, b = counter_world.counter(), counter_world.counter()
    claims = a.tap(counter_world.token()).claims
    results: list[str] = []

    def spend(counter: Counter) -> None:
        for _ in range(6):
            try:
                counter.sale(claims, M("100.00"), tender="sv")  # gold: 88.00 each
                results.append("ok")
            except DomainError as exc:
                results.append(exc.code)

    threads = [threading.Thread(target=spend, args=(c,)) for c in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    # 1000.00 buys eleven sales of 88.00, never twelve.
    assert results.count("ok") == 11 and results.count("insufficient_balance") == 1
    entries = a.store.journal.entries()
    state = fold(MemberState("M0001", "CNY", balance=100_000, points=500, tier=Tier.GOLD, yearly_spend=250_000),
                 [(e.kind, e.payload) for e in entries])
    assert state.balance == 100_000 - 11 * 8_800 >= 0
    assert a.store.journal.verify_chain() is None


def test_receipt_file(counter_world: CounterWorld, tmp_path: Path) -> None:
    counter = counter_world.counter()
    claims = counter.tap(counter_world.token()).claims
    receipt = counter.sale(claims, M("10.00"), tender="cash", cashier_id="c1")
    path = receipt.write(tmp_path / "receipts")
    assert path.read_text(encoding="utf-8") == receipt.to_text()
    assert "Cashier c1" in receipt.to_text()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_operations_through_the_counter_keep_the_books(tmp_path_factory: pytest.TempPathFactory,
                                                              data: st.DataObject) -> None:
    """Random sales, top-ups, refunds, voids and redemptions on a real store: every receipt is in the journal, the
    member view equals the fold of the snapshot and the journal, and the balance and points never go negative."""
    from tests.fixtures.cards import CardWorld
    from tests.fixtures.counter import SecondsClock, build_terminal_dir, signed_rules

    data_dir = tmp_path_factory.mktemp("random-counter")
    cards = CardWorld()
    build_terminal_dir(data_dir, cards, now_s=cards.now, rules=signed_rules())
    world = CounterWorld(data_dir=data_dir, cards=cards, clock=SecondsClock(cards.now), rules=signed_rules())
    world.online_flag[0] = data.draw(st.booleans())
    try:
        counter = world.counter()
        claims = counter.tap(world.token()).claims
        snapshot = counter.member_view(claims).state
        sup = _supervisor(counter)
        receipts: list[Receipt] = []
        for _ in range(data.draw(st.integers(1, 12))):
            world.clock.now += data.draw(st.integers(0, 7_200))
            op = data.draw(st.sampled_from(["sale", "sale", "topup", "refund", "void", "redeem"]))
            sales = [r for r in receipts if r.kind == "sale"]
            try:
                if op == "sale":
                    receipts.append(counter.sale(
                        claims, Money(data.draw(st.integers(1, 60_000))),
                        tender=data.draw(st.sampled_from(["sv", "cash", "bank_card"])),
                        coupon_ids=data.draw(st.lists(st.sampled_from(["C10", "P5"]), max_size=2, unique=True)),
                        redeem_points=100 * data.draw(st.integers(0, 3))))
                elif op == "topup":
                    receipts.append(counter.topup(claims, Money(data.draw(st.integers(1, 80_000))), tender="cash"))
                elif op == "refund" and sales:
                    target = data.draw(st.sampled_from(sales))
                    amount = data.draw(st.integers(1, max(1, target.payload["net"])))
                    receipts.append(counter.refund(target.uuid, Money(amount), supervisor=sup))
                elif op == "void" and receipts:
                    target = data.draw(st.sampled_from([r for r in receipts if r.kind in ("sale", "topup")] or
                                                       receipts[:1]))
                    receipts.append(counter.void(target.uuid, supervisor=sup))
                elif op == "redeem":
                    receipts.append(counter.redeem(claims, data.draw(st.integers(1, 400)), "gift"))
            except DomainError as exc:
                assert exc.code != "bad_entry" and str(exc)
            view = counter.member_view(claims).state
            assert view.balance >= 0 and view.points >= 0
        journal = counter.store.journal
        assert [e.uuid for e in journal.entries()] == [r.uuid for r in receipts]
        assert journal.verify_chain() is None
        expected = fold(snapshot, [(e.kind, e.payload) for e in journal.entries()])
        assert counter.member_view(claims).state == expected
        assert receipts == [] or receipts[-1].after == expected
    finally:
        world.close()


def test_a_clock_jumping_back_keeps_the_journal_and_the_limits(counter_world: CounterWorld) -> None:
    counter = counter_world.counter()
    claims = counter.tap(counter_world.token()).claims
    counter.sale(claims, M("500.00"), tender="sv")  # 440.00 of the 500.00 offline allowance
    counter_world.clock.now -= 2 * 86_400  # the terminal's clock jumps two days back
    with pytest.raises(DomainError) as caught:  # the earlier spend still counts against the allowance
        counter.sale(claims, M("100.00"), tender="sv")
    assert caught.value.code == "offline_limit"
    receipt = counter.sale(claims, M("100.00"), tender="cash")
    journal = counter.store.journal
    assert journal.verify_chain() is None and [e.seq for e in journal.entries()] == [1, 2]
    assert journal.get(receipt.uuid) is not None
