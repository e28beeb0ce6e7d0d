"""The ledger's admin operations, ingest and verify in-process, on a real SQLite file with a pinned clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.journal import make_entry
from ledger import admin, events, ingest, publish, quarantine, store
from ledger.enroll import RequestRefused
from ledger.errors import LedgerError
from ledger.home import Ledger, init_ledger, open_ledger
from tests.fixtures.ledger import InProcessTill as Till
from tests.fixtures.ledger import ManualClock as Clock
from tests.fixtures.ledger import enroll_in_process, in_process_ledger, sale, topup

T0_MS = 1_790_000_000_000
DAY_MS = 86_400_000


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    with in_process_ledger(tmp_path / "ledger", clock, seed=5) as home:
        yield home


@pytest.fixture
def till(ledger: Ledger) -> Till:
    _, code = admin.add_terminal("till", "store-1")
    key = Ed25519PrivateKey.generate()
    body = enroll_in_process(ledger, code, key)
    return Till(ledger, body["terminal_id"], key, bytes.fromhex(body["ledger_hpke_public_key"]))


@pytest.fixture
def seen() -> Iterator[list[events.LedgerEvent]]:
    got: list[events.LedgerEvent] = []
    events.subscribe(got.append)
    yield got
    events.unsubscribe(got.append)


def test_init_is_idempotent_keeps_keys_private_and_the_issuer_fixed(ledger: Ledger, clock: Clock) -> None:
    root = ledger.keys.root_public()
    again = init_ledger(ledger.ledger_dir, clock=clock)
    assert again.keys.root_public() == root and again.issuer == "acme"
    with pytest.raises(LedgerError, match="already issues cards as 'acme'"):
        init_ledger(ledger.ledger_dir, issuer="other", clock=clock)
    for path in (ledger.ledger_dir / "keys").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert (ledger.ledger_dir / "keys").stat().st_mode & 0o777 == 0o700
    with pytest.raises(LedgerError, match="not a ledger directory"):
        open_ledger(ledger.ledger_dir.parent / "nowhere")


def test_revocation_deltas_carry_each_cards_latest_status(ledger: Ledger) -> None:
    member = admin.add_member("Ann")
    a, b, c = (admin.issue_card(member).card_id for _ in range(3))
    admin.hold_card(a, "check")
    v1 = publish.revocation_version()
    admin.unhold_card(a)
    admin.hold_card(b, "check")
    admin.revoke_card(b, "stolen")
    admin.hold_card(c, "check")
    delta = publish.revocation_delta(v1)
    assert (delta.from_version, delta.to_version) == (v1, v1 + 4)
    assert delta.revoked == ((b, "stolen"),) and delta.held == (c,) and delta.unheld == (a,)
    full = publish.revocation_delta(0)
    assert full.unheld == () and full.held == (c,) and full.revoked == ((b, "stolen"),)
    assert publish.revocation_delta(10_000).from_version == 0  # a stranger's version: start over
    with pytest.raises(LedgerError, match="already revoked"):
        admin.revoke_card(b, "lost")
    with pytest.raises(LedgerError, match="reason"):
        admin.revoke_card(a, "x" * 40)


def test_rules_are_versioned_and_checked(ledger: Ledger) -> None:
    text = (Path(__file__).resolve().parents[2] / "terminal" / "defaults" / "rules.toml").read_text("utf-8")
    assert publish.current_rules().version == 1
    assert admin.load_rules(text) == 2
    assert admin.load_rules(text.replace("max_stacked = 2", "max_stacked = 3")) == 3
    assert publish.current_rules().coupons.max_stacked == 3 and publish.current_rules().version == 3
    with pytest.raises(LedgerError, match="rules"):
        admin.load_rules("version = 1\n")
    assert publish.rules_version() == 3


def test_ingest_publishes_after_commit_only_what_is_new(ledger: Ledger, till: Till,
                                                       seen: list[events.LedgerEvent]) -> None:
    ann = admin.add_member("Ann", balance=5_000)
    for amount in (100, 200, 300):
        till.append("topup", topup(ann, amount))
    assert till.ingest(1, 2).applied == 2
    result = till.ingest(1, 3)
    assert (result.acked_seq, result.applied, result.duplicates) == (3, 1, 2)
    applied = [e for e in seen if isinstance(e, events.BatchApplied)]
    assert [[x.seq for x in e.entries] for e in applied] == [[1, 2], [3]]
    assert all(e.store_id == "store-1" for e in applied)
    assert sum(isinstance(e, events.TerminalSeen) for e in seen) == 2
    forged = make_entry(terminal_id=till.terminal_id, seq=3, prev_hash=till.entries[1].hash, wall_ms=1, mono_ns=1,
                        cashier_id=None, kind="topup", payload=topup(ann, 99_999), entry_uuid=str(uuid.uuid4()))
    with pytest.raises(ingest.IngestRejected) as refused:
        ingest.ingest_batch(till.envelope([*till.entries[:2], forged]), now_ms=T0_MS, ledger=ledger)
    assert refused.value.reason == "tampered" and refused.value.status == 400
    rejection = seen[-1]
    assert isinstance(rejection, events.BatchRejected)
    assert (rejection.terminal_id, rejection.reason, rejection.seqs) == (till.terminal_id, "tampered", [3])
    assert admin.member_view(ann)["balance"] == 5_600
    assert [r["reason"] for r in admin.rejected_batches()] == ["tampered"]


def test_verify_flags_overdrafts_unknown_members_and_refused_entries(ledger: Ledger, till: Till) -> None:
    ann = admin.add_member("Ann", balance=1_000)
    bo = admin.add_member("Bo", balance=1_000)
    till.append("sale", sale(ann, 1_500))  # online spending beyond the balance
    till.append("sale", {**sale(bo, 1_500), "offline": True})  # offline double spend: allowed, flagged elsewhere
    till.append("topup", topup("m-ghost", 500))
    till.append("topup", {**topup(ann, 500), "cur": "USD"})
    # Applied unjudged, as a ledger from before the semantic checks did: verify flags them all.
    ingest.ingest_batch(till.envelope(till.entries, "b1-4"), now_ms=ledger.now_ms(), ledger=ledger,
                        semantic_checks=False)
    problems = admin.verify_ledger()
    assert any(p.startswith(f"member {ann}: stored value is negative") for p in problems)
    assert not any(p.startswith(f"member {bo}:") for p in problems)
    assert any("m-ghost, whom the ledger does not know" in p for p in problems)
    assert any(p.startswith(f"member {ann}: entry {till.terminal_id}/4:") and "USD" in p for p in problems)
    assert any(p.startswith(f"entry {till.terminal_id}/3 (topup) was applied but the ledger would quarantine it")
               and "(unknown_member)" in p for p in problems)
    assert any(p.startswith(f"entry {till.terminal_id}/4 (topup) was applied but the ledger would quarantine it")
               and "(bad_entry)" in p for p in problems)
    assert len(problems) == 5


def test_ingest_quarantines_what_verify_would_flag(ledger: Ledger, till: Till) -> None:
    ann = admin.add_member("Ann", balance=1_000)
    till.append("sale", sale(ann, 1_500))
    till.append("topup", topup("m-ghost", 500))
    till.append("topup", {**topup(ann, 500), "cur": "USD"})
    till.append("topup", topup(ann, 700))
    result = till.ingest(1, 4)
    assert (result.acked_seq, result.applied, result.quarantined) == (4, 2, [2, 3])
    assert admin.member_view(ann)["balance"] == 1_000 - 1_500 + 700
    held = quarantine.list_quarantined(terminal=till.terminal_id)
    assert [(q["seq"], q["code"]) for q in held] == [(3, "bad_entry"), (2, "unknown_member")]
    assert admin.verify_ledger() == []  # journaled through the quarantined entries, applied the rest


def test_verify_recomputes_from_entries_not_from_the_projection(ledger: Ledger, till: Till) -> None:
    ann = admin.add_member("Ann", balance=1_000, points=7)
    till.append("topup", topup(ann, 2_000, bonus=100))
    till.append("sale", sale(ann, 600, pts_earn=6, pts_redeem=2))
    till.append("refund", {"card": "card", "member": ann, "cur": "CNY", "orig": till.entries[1].uuid, "amount": 200,
                           "sv": 200, "pts_back": 1, "pts_rev": 2, "tender": "sv", "supervisor": "s", "offline": False})
    till.append("redeem", {"card": "card", "member": ann, "pts": 3, "item": "mug", "offline": False})
    till.ingest(1, 4)
    assert admin.verify_ledger() == []
    view = admin.member_view(ann)
    assert (view["balance"], view["points"]) == (1_000 + 2_100 - 600 + 200, 7 + 6 - 2 + 1 - 2 - 3)
    store.MemberProjection.update(points=store.MemberProjection.points + 1).execute()
    assert admin.verify_ledger() == [
        f"member {ann}: projection says balance 2700, points 8, tier standard but the entries give 2700, 7, standard"]


def test_member_snapshot_hides_used_coupons_and_follows_card_changes(ledger: Ledger, till: Till) -> None:
    ann = admin.add_member("Ann", phone="555", prefs={"milk": "oat"})
    card = admin.issue_card(ann).card_id
    used = admin.issue_coupon(ann, amount_off=500)
    kept = admin.issue_coupon(ann, percent_off_bp=1_000, min_spend=5_000)
    till.append("sale", sale(ann, 1_000, sv=0, coupons=[used], card=card))
    till.ingest(1, 1)
    snap = publish.members_delta("store-1", 0, ledger.now_s())
    (mine,) = [m for m in snap.members if m["member_id"] == ann]
    assert [c["coupon_id"] for c in mine["coupons"]] == [kept]
    assert mine["card_ids"] == [card] and mine["prefs"] == {"milk": "oat"} and mine["phone"] == "555"
    assert mine["state"]["used_coupons"] == [used] and mine["yearly_spend"] == 1_000
    version = snap.version
    assert publish.members_delta("store-1", version, ledger.now_s()).members == []
    new = admin.replace_card(card, "platinum")
    later = publish.members_delta("store-1", version, ledger.now_s())
    assert [(m["member_id"], m["card_ids"], m["tier"]) for m in later.members] == [(ann, [new.card_id],
                                                                                      "platinum")]
    assert publish.members_delta("store-2", 0, ledger.now_s()).members == []


def test_enrollment_codes_expire_and_work_once(ledger: Ledger, clock: Clock) -> None:
    _, code = admin.add_terminal("till", code_ttl_s=60)
    key = Ed25519PrivateKey.generate()
    clock.now_ms += 61_000
    with pytest.raises(RequestRefused) as late:
        enroll_in_process(ledger, code, key)
    assert late.value.code == "bad_code"
    terminal_id, code = admin.add_terminal("till 2")
    admin.disable_terminal(terminal_id)  # a disabled terminal's code is void as well
    with pytest.raises(RequestRefused):
        enroll_in_process(ledger, code, key)
    _, code = admin.add_terminal("till 3")
    assert enroll_in_process(ledger, code, key, "mlkem768x25519")["hpke_suite"] == "mlkem768x25519"
    with pytest.raises(RequestRefused):
        enroll_in_process(ledger, code, key)
    actions = [row["action"] for row in admin.audit_log()]
    assert actions.count("terminal_add") == 3 and "terminal_enroll" in actions and "terminal_disable" in actions


def test_admin_changes_are_audited_without_personal_details(ledger: Ledger) -> None:
    ann = admin.add_member("Ann Secret", email="ann@example.com")
    admin.update_member(ann, email="new@example.com", notes="private note")
    rows = admin.audit_log()
    assert rows[0]["action"] == "member_update" and rows[0]["details"] == {"fields": ["email", "notes"]}
    text = repr(rows)
    assert "example.com" not in text and "Secret" not in text and "private note" not in text


def test_a_locked_database_makes_ingest_busy_not_wrong(ledger: Ledger, till: Till) -> None:
    import sqlite3

    ann = admin.add_member("Ann")
    till.append("topup", topup(ann, 100))
    store.db.execute_sql("PRAGMA busy_timeout = 50")  # this thread's connection: give up quickly
    other = sqlite3.connect(ledger.ledger_dir / "ledger.sqlite3", timeout=1)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(ingest.IngestBusy):
            till.ingest(1, 1)
    finally:
        other.rollback()
        other.close()
    assert till.ingest(1, 1).applied == 1  # nothing half-applied by the busy attempt
    assert admin.rejected_batches() == []


def test_points_expire_oldest_first_as_entries_on_the_ledger_chain(ledger: Ledger, till: Till, clock: Clock) -> None:
    ann = admin.add_member("Ann", points=100)  # earned at T0
    till.append("sale", sale(ann, 1_000, sv=0, pts_earn=30, pts_redeem=40))  # spends 40 of the opening 100
    till.ingest(1, 1)
    till.wall_ms += 200 * DAY_MS
    clock.now_ms += 200 * DAY_MS  # the ledger's clock too: an entry from the future would be quarantined
    till.append("sale", sale(ann, 1_000, sv=0, pts_earn=25))
    till.ingest(2, 2)
    clock.now_ms += 100 * DAY_MS  # nothing is a year old yet
    assert admin.expire_points() == {}
    clock.now_ms += 100 * DAY_MS  # the first lots (60 left of the opening points, 30 earned) are now stale
    assert admin.expire_points() == {ann: 90}
    view = admin.member_view(ann)
    assert view["points"] == 25 and view["history"][-1]["payload"]["item"] == "points_expired"
    assert admin.expire_points() == {}  # once only
    assert admin.verify_ledger() == []


def test_a_terminal_reenrolled_with_its_old_key_gets_the_new_terminal_id(ledger: Ledger) -> None:
    key = Ed25519PrivateKey.generate()
    first, code = admin.add_terminal("till")
    assert enroll_in_process(ledger, code, key)["terminal_id"] == first
    second, code = admin.add_terminal("till again")  # the first one still active
    assert enroll_in_process(ledger, code, key)["terminal_id"] == second


def test_a_member_who_moves_store_is_dropped_by_the_old_stores_terminals(ledger: Ledger) -> None:
    ann = admin.add_member("Ann", store_id="north")
    version = publish.members_delta("north", 0, ledger.now_s()).version
    admin.update_member(ann, store_id="south")
    north = publish.members_delta("north", version, ledger.now_s())
    assert north.members == [{"member_id": ann, "deleted": True}]
    assert [m["member_id"] for m in publish.members_delta("south", version, ledger.now_s()).members] == [ann]
    assert publish.members_delta("north", 0, ledger.now_s()).members == []
    admin.update_member(ann, store_id="north")  # back again: a full snapshot, not a deletion
    back = publish.members_delta("north", version, ledger.now_s()).members
    assert [(m["member_id"], m.get("deleted")) for m in back] == [(ann, None)]


def test_another_stores_member_is_served_with_their_own_card_not_with_another(ledger: Ledger, till: Till) -> None:
    ann = admin.add_member("Ann", store_id="store-2", balance=1_000)  # members belong to the program
    bo = admin.add_member("Bo", store_id="store-1")
    till.append("topup", topup(ann, 100))
    assert till.ingest(1, 1).quarantined == []
    till.append("topup", {**topup(ann, 200), "card": admin.issue_card(bo).card_id})  # Bo's card, Ann's money
    assert till.ingest(2, 2).quarantined == [2]
    assert admin.member_view(ann)["balance"] == 1_100
