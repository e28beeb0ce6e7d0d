"""Tier upgrade with a new card, end to end: a real ledger process, two enrolled terminal data dirs driven through
the real CLI, and the reader simulator on a pty whose blank card receives the new token.

tap -> upgrade journaled -> pushed -> the ledger issues the new card and revokes the old one (balances stay with
the member) -> the token is written to the simulator's blank card -> the new card verifies and shows the
member's history made with either card -> the old card is refused as revoked at both terminals after their pull.
Offline the new card is queued and listed for the ledger's admins; a failed write is retried with the same card.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from cardkit.cards.textform import token_from_text
from ledger import admin
from tests.fixtures.sim import SimFactory
from tests.fixtures.sync import SyncWorld

MEMBER = "M001"


def _op(world: SyncWorld, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return world.cardpos(data_dir, "terminal", "op", *args, "--json", timeout=90)


def _ok(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, (done.stdout, done.stderr)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _sync(world: SyncWorld, data_dir: Path) -> None:
    done = world.cardpos(data_dir, "terminal", "sync", "--once", "--json")
    assert done.returncode == 0, done.stderr


def _card_text(world: SyncWorld, member_id: str) -> str:
    """A fresh standard card for the member (its first card is replaced in each test)."""
    world.open_admin()
    card = admin.issue_card(member_id)
    return card.token_text


def _setup(world: SyncWorld) -> tuple[Path, Path, str]:
    url = world.server().url
    _, till_a = world.enroll("till A", url)
    _, till_b = world.enroll("till B", url)
    card = _card_text(world, MEMBER)
    for till in (till_a, till_b):
        _sync(world, till)
    # Enough yearly spend for the next tier (preferred from 2000.00), paid in cash: no balance moves.
    _ok(_op(world, till_a, "sale", "2100.00", "--tender", "cash", "--card", card))
    return till_a, till_b, card


def test_upgrade_writes_the_new_card_and_revokes_the_old_one_everywhere(
        sync_world: SyncWorld, sim_process: SimFactory, tmp_path: Path) -> None:
    world = sync_world
    till_a, till_b, old_text = _setup(world)
    balance_before = world.member_show(MEMBER)["balance"]
    wallet = tmp_path / "sim-wallet.json"
    wallet.write_text('{"version": 1, "cards": []}\n')
    sim = sim_process(wallet)
    assert sim.command("blank new card for Ann") == "ok blank card 1 on the reader"

    done = _ok(_op(world, till_a, "upgrade", "--card", old_text, "--reader", sim.port, "--wait", "10"))
    new = done["new_card"]
    assert (new["stage"], new["tier"], new["last_error"]) == ("written", "preferred", None)
    old_card = new["old_card"]

    # The simulator's blank card now holds the token the ledger issued, and is saved in its wallet file.
    reply = sim.command("card 1")
    assert reply.startswith("ok card 1 valid CP1:"), reply
    new_text = reply.split(" ", 4)[4]
    assert json.loads(wallet.read_text())["cards"][0]["token_text"] == new_text

    # At the ledger: one new active card of the new tier, the old one replaced, the balance where it was.
    shown = world.member_show(MEMBER)
    cards = {c["card_id"]: c for c in shown["cards"]}
    assert cards[old_card]["status"] == "replaced" and cards[new["new_card"]]["status"] == "active"
    assert cards[new["new_card"]]["tier"] == "preferred" == shown["tier"]
    # No second new card: besides the new one, only the member's other card (issued before, untouched) is active.
    assert {c["card_id"] for c in shown["cards"] if c["status"] == "active"} == {
        new["new_card"], world.members[MEMBER]}
    assert shown["balance"] == balance_before

    # The new card verifies at till A and shows the member's history made with the old card too.
    history = _ok(_op(world, till_a, "history", "--card", new_text, "--by", "member"))
    kinds = [op["kind"] for op in history["operations"]]
    assert kinds[:2] == ["tier_upgrade", "sale"], kinds
    assert {op.get("card") for op in history["operations"] if "card" in op} <= {old_card, None}

    # The old card is refused as revoked: at till A (it pulled after the issue) and at till B after its pull.
    refused = _op(world, till_a, "balance", "--card", old_text)
    assert refused.returncode == 1 and json.loads(refused.stdout)["reason"] == "revoked", refused.stdout
    _sync(world, till_b)
    refused = _op(world, till_b, "sale", "1.00", "--tender", "cash", "--card", old_text)
    assert refused.returncode == 1 and json.loads(refused.stdout)["reason"] == "revoked", refused.stdout
    assert _ok(_op(world, till_b, "balance", "--card", new_text))["tier"] == "preferred"

    # Asking again for the same upgrade changes nothing: the same card, already written.
    again = _ok(_op(world, till_a, "newcard", "--for", old_card, "--reader", sim.port))
    assert again["new_card"]["new_card"] == new["new_card"] and again["new_card"]["stage"] == "written"
    assert world.verify().returncode == 0


def test_offline_upgrade_is_queued_listed_for_admins_and_a_failed_write_is_retried_with_the_same_card(
        sync_world: SyncWorld, sim_process: SimFactory, tmp_path: Path) -> None:
    world = sync_world
    till_a, _, old_text = _setup(world)
    sim = sim_process(None)
    world.ledger.stop()

    done = _ok(_op(world, till_a, "upgrade", "--card", old_text, "--reader", sim.port))
    assert done["new_card"]["stage"] == "queued" and "unreachable" in done["new_card"]["last_error"]
    old_card = done["new_card"]["old_card"]

    world.server()
    _sync(world, till_a)
    listed = world.ledger.admin_json("card", "requests")
    assert [(r["card_id"], r["tier"], r["request"]) for r in listed["pending"]] == [
        (old_card, "preferred", done["new_card"]["request"])]
    text = world.ledger.admin("card", "requests").stdout
    assert f"waiting  {MEMBER}  card {old_card} (standard) -> preferred" in text

    # The ledger issues it now; the first write fails and leaves the card blank.
    assert sim.command("blank").startswith("ok blank card 1")
    assert sim.command("writefail") == "ok the next write fails"
    failed = _op(world, till_a, "newcard", "--for", old_card, "--reader", sim.port, "--wait", "5")
    assert failed.returncode == 1, failed.stdout
    answer = json.loads(failed.stdout)
    assert answer["error"] == "new_card_not_written" and "still blank" in answer["message"]
    assert sim.command("card 1") == "ok card 1 blank -"
    listed = world.ledger.admin_json("card", "requests")
    assert listed["pending"] == [] and len(listed["issued"]) == 1
    issued_card = listed["issued"][0]["new_card"]

    # The retry (card taken off and put back) writes the same card: never two live new cards.
    assert sim.command("remove") == "ok removed"
    assert sim.command("tap 1").startswith("ok tapped 1 blank")
    retried = _ok(_op(world, till_a, "newcard", "--reader", sim.port, "--wait", "5"))
    assert retried["new_card"]["new_card"] == issued_card and retried["new_card"]["stage"] == "written"
    written = sim.command("card 1").split(" ", 4)[4]
    world.open_admin()
    shown = world.member_show(MEMBER)
    assert {c["card_id"] for c in shown["cards"] if c["status"] == "active"} == {issued_card, world.members[MEMBER]}
    assert token_from_text(written)  # a real card text
    assert _ok(_op(world, till_a, "balance", "--card", written))["tier"] == "preferred"
