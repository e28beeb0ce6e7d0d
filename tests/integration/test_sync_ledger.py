"""Terminal ↔ ledger sync end to end: real ledger server process, real terminal data dirs, the real CLI."""

from __future__ import annotations

import json
import random
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.config import SyncSettings
from cardkit.envelope import seal_batch
from cardkit.errors import CardposError
from cardkit.journal import make_entry
from ledger import admin
from terminal import documents
from terminal.offline.store import TerminalStore
from terminal.sync.client import LedgerClient, LedgerRefused
from terminal.sync.service import Backoff, SyncService, load_identity_key
from tests.fixtures.sync import SyncWorld


def sale(member: str, card: str, net: int, *, sv: bool = True, pts_redeem: int = 0) -> dict[str, Any]:
    return {"card": card, "member": member, "cur": "CNY", "gross": net, "tier_disc": 0, "coupon_disc": 0,
            "pts_disc": 0, "net": net, "tender": "sv" if sv else "cash", "sv": net if sv else 0,
            "pts_earn": net // 100, "pts_redeem": pts_redeem, "coupons": [], "offline": True}


def topup(member: str, card: str, amount: int, bonus: int = 0) -> dict[str, Any]:
    return {"card": card, "member": member, "cur": "CNY", "amount": amount, "bonus": bonus, "tender": "cash",
            "offline": True}


def expected_effect(kind: str, p: dict[str, Any]) -> tuple[int, int]:
    """(balance change, points change) of one entry, computed here independently of the ledger's fold."""
    if kind == "sale":
        return -p["sv"], p["pts_earn"] - p["pts_redeem"]
    if kind == "topup":
        return p["amount"] + p["bonus"], 0
    return 0, 0


def random_op(rng: random.Random, world: SyncWorld) -> tuple[str, dict[str, Any]]:
    member = rng.choice(sorted(world.members))
    card = world.members[member]
    if rng.random() < 0.25:
        return "topup", topup(member, card, rng.randint(1, 50) * 1000, rng.choice([0, 500]))
    return "sale", sale(member, card, rng.randint(100, 9_000), sv=rng.random() < 0.6)


def open_terminal(data_dir: Path) -> TerminalStore:
    enrollment = documents.require_enrollment(data_dir)
    return TerminalStore.open(data_dir, enrollment.terminal_id)


def make_service(store: TerminalStore, *, timeout_s: float = 5.0, batch_bytes: int = 256 * 1024,
                 seed: int = 0, url: str | None = None) -> SyncService:
    enrollment = documents.require_enrollment(store.data_dir)
    settings = SyncSettings(ledger_url=url or enrollment.ledger_url, interval_s=0.2, timeout_s=timeout_s,
                            batch_bytes=batch_bytes)
    return SyncService(store, enrollment, load_identity_key(store.data_dir), settings=settings,
                       rng=random.Random(seed), sleep=lambda s: None, backoff=Backoff(base_s=0.01, cap_s=0.05))


def assert_ledger_matches(world: SyncWorld, terminals: list[Path]) -> None:
    """Ledger balances/points equal opening + every terminal entry; each entry applied exactly once."""
    expected = {m: list(v) for m, v in world.opening.items()}
    all_uuids: list[str] = []
    for data_dir in terminals:
        with open_terminal(data_dir) as store:
            assert store.journal.queue_depth == 0
            for entry in store.journal.iter_entries():
                d_balance, d_points = expected_effect(entry.kind, entry.payload)
                expected[entry.payload["member"]][0] += d_balance
                expected[entry.payload["member"]][1] += d_points
                all_uuids.append(entry.uuid)
    world.open_admin()
    applied = 0
    for member_id, (balance, points) in expected.items():
        view = admin.member_view(member_id, history=0)
        assert (view["balance"], view["points"]) == (balance, points), member_id
        applied += view["entries"]
    assert applied == len(all_uuids) == len(set(all_uuids))  # no loss, no duplicate
    # The same through the admin CLI people use: one member's figures, and the ledger's own invariant check.
    first = sorted(expected)[0]
    shown = world.member_show(first)
    assert (shown["balance"], shown["points"]) == tuple(expected[first])
    verified = world.verify()
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize("suite", ["x25519", "mlkem768x25519"])
def test_enroll_append_sync_and_the_ledger_shows_it(sync_world: SyncWorld, suite: str) -> None:
    ledger = sync_world.server()
    terminal_id, data_dir = sync_world.enroll("till 1", ledger.url, suite=suite)
    enrollment = documents.require_enrollment(data_dir)
    assert enrollment.terminal_id == terminal_id and enrollment.hpke_suite == suite
    key_path = documents.identity_key_path(data_dir)
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert documents.load_document(data_dir, "trust_list.cose") is not None
    assert documents.load_document(data_dir, "rules.cose") is not None

    rng = random.Random(5)
    with open_terminal(data_dir) as store:
        for _ in range(40):
            store.journal.append(*random_op(rng, sync_world), cashier_id="c1")
    done = sync_world.cardpos(data_dir, "terminal", "sync", "--once", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["pushed"], report["acked_seq"], report["applied"], report["queue_depth"]) == (40, 40, 40, 0)
    assert report["pulled"].get("members", 0) > 0  # the store's member snapshots came back
    assert_ledger_matches(sync_world, [data_dir])

    again = sync_world.cardpos(data_dir, "terminal", "sync", "--once", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["pushed"] == 0
    status = sync_world.cardpos(data_dir, "terminal", "status", "--json")
    shown = json.loads(status.stdout)
    assert (shown["queue_depth"], shown["synced_seq"], shown["last_error"]) == (0, 40, None)
    with open_terminal(data_dir) as store:
        member = sorted(sync_world.members)[0]
        cached = store.cache.get(member)
        assert cached is not None and cached.balance == admin.member_view(member)["balance"]


def test_unreachable_ledger_fails_clearly_and_loses_nothing(sync_world: SyncWorld) -> None:
    ledger = sync_world.server()
    _terminal_id, data_dir = sync_world.enroll("till 1", ledger.url)
    ledger.stop()
    rng = random.Random(9)
    with open_terminal(data_dir) as store:
        for _ in range(10):
            store.journal.append(*random_op(rng, sync_world), cashier_id="c1")
    done = sync_world.cardpos(data_dir, "terminal", "sync", "--once")
    assert done.returncode == 1
    assert f"ledger unreachable at {ledger.url}" in done.stdout + done.stderr
    assert "10 entries stay queued" in done.stdout + done.stderr
    status = json.loads(sync_world.cardpos(data_dir, "terminal", "status", "--json").stdout)
    assert status["queue_depth"] == 10 and "unreachable" in status["last_error"]

    ledger.start()
    done = sync_world.cardpos(data_dir, "terminal", "sync", "--once", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["acked_seq"] == 10
    assert_ledger_matches(sync_world, [data_dir])


def test_enroll_with_a_used_or_wrong_code_is_refused(sync_world: SyncWorld) -> None:
    ledger = sync_world.server()
    _tid, code = sync_world.add_terminal("till 1")
    first = sync_world.root / "first"
    first.mkdir()
    assert sync_world.cardpos(first, "terminal", "enroll", "--ledger", ledger.url, "--code", code).returncode == 0
    second = sync_world.root / "second"
    second.mkdir()
    done = sync_world.cardpos(second, "terminal", "enroll", "--ledger", ledger.url, "--code", code)
    assert done.returncode == 1 and "bad_code" in done.stderr
    assert documents.read_enrollment(second) is None
    done = sync_world.cardpos(first, "terminal", "enroll", "--ledger", ledger.url, "--code", "XXXX")
    assert done.returncode == 1 and "already enrolled" in done.stderr
    # A ledger whose root key is not the one the installer was told to expect is not trusted.
    _tid, code = sync_world.add_terminal("till 2")
    third = sync_world.root / "third"
    third.mkdir()
    done = sync_world.cardpos(third, "terminal", "enroll", "--ledger", ledger.url, "--code", code,
                              "--root-key", "ab" * 32)
    assert done.returncode == 1 and "--root-key" in done.stderr
    assert documents.read_enrollment(third) is None


def test_commands_on_an_unenrolled_terminal_say_what_to_do(sync_world: SyncWorld) -> None:
    data_dir = sync_world.root / "fresh"
    data_dir.mkdir()
    status = sync_world.cardpos(data_dir, "terminal", "status")
    assert status.returncode == 1 and "not enrolled" in status.stdout
    done = sync_world.cardpos(data_dir, "terminal", "sync", "--once")
    assert done.returncode == 1 and "cardpos terminal enroll --ledger URL --code CODE" in done.stderr
    done = sync_world.cardpos(data_dir, "terminal", "enroll", "--ledger", "http://127.0.0.1:9", "--code", "X")
    assert done.returncode == 1 and "ledger unreachable at http://127.0.0.1:9" in done.stderr


def test_background_thread_syncs_and_reports_status(sync_world: SyncWorld) -> None:
    ledger = sync_world.server()
    _tid, data_dir = sync_world.enroll("till 1", ledger.url)
    seen: list[Any] = []
    rng = random.Random(2)
    with open_terminal(data_dir) as store:
        service = make_service(store)
        service.on_status = seen.append
        for _ in range(5):
            store.journal.append(*random_op(rng, sync_world), cashier_id="c1")
        service.start()
        try:
            for _ in range(200):  # bounded wait for the thread to drain the queue
                if service.status.queue_depth == 0 and service.status.online:
                    break
                service._stop.wait(0.05)
            assert service.status.online and service.status.queue_depth == 0
            ledger.stop()
            store.journal.append(*random_op(rng, sync_world), cashier_id="c1")
            service.kick()
            for _ in range(200):
                if not service.status.online:
                    break
                service._stop.wait(0.05)
            assert not service.status.online and service.status.offline_since_ms is not None
            assert "unreachable" in (service.status.last_error or "")
            ledger.start()
            for _ in range(400):  # backoff is capped at 50 ms here: it comes back by itself
                if service.status.online and service.status.queue_depth == 0:
                    break
                service._stop.wait(0.05)
            assert service.status.online and service.status.queue_depth == 0
        finally:
            service.stop()
    assert any(not s.online for s in seen) and seen[-1].online
    assert_ledger_matches(sync_world, [data_dir])


def test_ledger_restored_from_backup_gets_the_missing_entries_again(sync_world: SyncWorld) -> None:
    """The terminal's synced mark is past what the ledger has: the ledger says sequence_gap, we resend."""
    ledger = sync_world.server()
    _tid, data_dir = sync_world.enroll("till 1", ledger.url)
    rng = random.Random(4)
    backup = sync_world.root / "ledger-backup"
    with open_terminal(data_dir) as store:
        service = make_service(store)
        for _ in range(6):
            store.journal.append(*random_op(rng, sync_world), cashier_id="c1")
        service.sync_once()
        ledger.stop()
        shutil.copytree(sync_world.ledger_dir, backup)
        ledger.start()
        for _ in range(6):
            store.journal.append(*random_op(rng, sync_world), cashier_id="c1")
        service.sync_once()
        assert store.journal.synced_seq == 12
        ledger.stop()
        shutil.rmtree(sync_world.ledger_dir)
        shutil.copytree(backup, sync_world.ledger_dir)  # the ledger lost entries 7..12
        ledger.start()
        for _ in range(3):
            store.journal.append(*random_op(rng, sync_world), cashier_id="c1")
        report = service.sync_once()
        assert report.acked_seq == 15 and report.applied == 9
    assert_ledger_matches(sync_world, [data_dir])


def test_forged_replayed_and_reordered_batches_are_refused_and_recorded(sync_world: SyncWorld) -> None:
    ledger = sync_world.server()
    terminal_id, data_dir = sync_world.enroll("till 1", ledger.url)
    enrollment = documents.require_enrollment(data_dir)
    key = load_identity_key(data_dir)
    hpke_key = bytes.fromhex(enrollment.ledger_hpke_public_key)
    member, card = sorted(sync_world.members.items())[0]
    prev, entries = bytes(32), []
    now_ms = time.time_ns() // 1_000_000  # the ledger quarantines entries stamped before the terminal enrolled
    for seq in range(1, 5):
        entry = make_entry(terminal_id=terminal_id, seq=seq, prev_hash=prev, wall_ms=now_ms + seq,
                           mono_ns=seq, cashier_id="c1", kind="sale", payload=sale(member, card, 100),
                           entry_uuid=str(uuid.uuid4()))
        entries.append(entry)
        prev = entry.hash

    def seal(batch: list[Any], *, tid: str = terminal_id, signer: Ed25519PrivateKey = key) -> bytes:
        return seal_batch(batch, terminal_id=tid, batch_id=str(uuid.uuid4()), terminal_key=signer,
                          ledger_public_key=hpke_key)

    client = LedgerClient(ledger.url, timeout_s=5)

    def refused(envelope: bytes) -> str:
        with pytest.raises(LedgerRefused) as info:
            client.push(envelope)
        return info.value.code

    good = seal(entries[:2])
    assert client.push(good).acked_seq == 2
    replay = client.push(good)  # the same batch again: acknowledged, nothing applied twice
    assert (replay.acked_seq, replay.applied, replay.duplicates) == (2, 0, 2)
    assert refused(seal(entries[3:])) == "sequence_gap"  # reordered: 4 before 3
    tampered = bytearray(seal(entries[2:3]))
    tampered[-70] ^= 0x01
    assert refused(bytes(tampered)) == "bad_signature"
    assert refused(seal(entries[2:3], signer=Ed25519PrivateKey.generate())) == "bad_signature"
    stranger = make_entry(terminal_id="t-nobody", seq=1, prev_hash=bytes(32), wall_ms=1, mono_ns=1, cashier_id=None,
                          kind="sale", payload=sale(member, card, 1), entry_uuid=str(uuid.uuid4()))
    assert refused(seal([stranger], tid="t-nobody")) == "unknown_terminal"
    changed = make_entry(terminal_id=terminal_id, seq=2, prev_hash=entries[0].hash, wall_ms=1, mono_ns=1,
                         cashier_id="c1", kind="sale", payload=sale(member, card, 99_999), entry_uuid=str(uuid.uuid4()))
    assert refused(seal([entries[0], changed])) == "tampered"
    assert refused(cbor2.dumps([b"junk", b"\x00" * 64])) == "malformed"
    sync_world.open_admin()
    reasons = {row["reason"] for row in admin.rejected_batches()}
    assert {"sequence_gap", "tampered"} <= reasons
    # Refusals before a terminal's signature checked out are counted per source, not recorded per request
    # (tests/security/test_unauthenticated_noise.py).
    assert not {"bad_signature", "unknown_terminal", "malformed"} & reasons
    assert admin.member_view(member)["entries"] == 2


def test_member_snapshot_records_the_synced_seq_it_covers(sync_world: SyncWorld) -> None:
    """The counter folds entries after this seq onto the snapshot; it must be the seq the ledger had applied."""
    from terminal.offline.state import MEMBERS_SYNCED_SEQ

    ledger = sync_world.server()
    _tid, data_dir = sync_world.enroll("till snapshot", ledger.url)
    rng = random.Random(7)
    with open_terminal(data_dir) as store:
        assert store.sync_state.last_sync_ms is not None  # enrolling counts as a sync
        service = make_service(store)
        for _ in range(4):
            store.journal.append(*random_op(rng, sync_world), cashier_id="c1")
        report = service.sync_once()
        assert report.acked_seq == 4
        assert store.sync_state.get(MEMBERS_SYNCED_SEQ) == 4
        store.journal.append(*random_op(rng, sync_world), cashier_id="c1")
        ledger.stop()
        with pytest.raises(CardposError):
            service.sync_once()
        assert store.sync_state.get(MEMBERS_SYNCED_SEQ) == 4  # no new snapshot: the mark stays
