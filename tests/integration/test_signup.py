"""Member sign-up at the till, end to end: a real ledger process, two enrolled terminals driven through the real
CLI, the reader simulator writing each new member's card to a blank card.

The same person signs up offline at till A (a provisional member id, the card queued) and online at till B (the
ledger creates the member and issues the card at once). When till A syncs, the ledger finds the phone already
known: it merges A's sign-up onto the member B created, lists it as a conflict it resolved, and attaches A's card
to that member. The ledger ends with one member, and both cards work.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.fixtures.sim import SimFactory
from tests.fixtures.sync import SyncWorld


def _op(world: SyncWorld, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return world.cardpos(data_dir, "terminal", "op", *args, "--json", timeout=90)


def _ok(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, (done.stdout, done.stderr)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _written(sim_reply: str) -> str:
    assert sim_reply.startswith("ok card ") and " valid CP1:" in sim_reply, sim_reply
    return sim_reply.split(" ", 4)[4]


def test_offline_and_online_signups_with_one_phone_end_as_one_member_with_two_working_cards(
        sync_world: SyncWorld, sim_process: SimFactory) -> None:
    world = sync_world
    url = world.server().url
    _, till_a = world.enroll("till A", url)
    _, till_b = world.enroll("till B", url)
    sim = sim_process(None)

    # Till A, offline: journaled under a provisional id, the card queued, the consent wording shown.
    world.ledger.stop()
    offline = _ok(_op(world, till_a, "signup", "--name", "Li Na", "--phone", "138 0013 8000", "--birthday",
                      "1990-05-17", "--sms", "--language", "zh", "--reader", sim.port, "--wait", "2"))
    provisional = offline["payload"]["member"]
    assert provisional.startswith("P") and offline["new_card"]["stage"] == "queued"
    assert offline["payload"]["consent"] == {"sms": True, "mail": False, "wording": "consent_1"}
    assert offline["payload"]["birthday"] == "1990-05-17" and offline["payload"]["language"] == "zh"
    assert "退订" in offline["consent_wording"]["text"]

    # Till B, online: the ledger creates the member and issues the card, written to the blank card at once.
    world.server()
    assert sim.command("blank card for till B") == "ok blank card 1 on the reader"
    online = _ok(_op(world, till_b, "signup", "--name", "Li  Na", "--phone", "13800138000", "--mail",
                     "--language", "en", "--reader", sim.port, "--wait", "10"))
    member_id = online["new_card"]["member_id"]
    assert online["new_card"]["stage"] == "written" and not member_id.startswith("P")
    card_b = _written(sim.command("card 1"))

    # Till A syncs and asks again: merged onto the same member, its card attached to it and written.
    assert sim.command("blank card for till A") == "ok blank card 2 on the reader"
    again = _ok(_op(world, till_a, "newcard", "--for", provisional, "--reader", sim.port, "--wait", "10"))
    assert again["new_card"]["member_id"] == member_id and again["new_card"]["stage"] == "written"
    card_a = _written(sim.command("card 2"))
    assert card_a != card_b

    # One member at the ledger with that phone, two active cards; the merge listed as a resolved conflict.
    found = world.ledger.admin_json("member", "find", "--phone", "13800138000")["members"]
    assert [(m["member_id"], m["name"]) for m in found] == [(member_id, "Li Na")]
    shown = world.member_show(member_id)
    assert len([c for c in shown["cards"] if c["status"] == "active"]) == 2
    conflicts = world.ledger.admin_json("member", "signups", "--conflicts")["signups"]
    assert [(c["provisional_id"], c["member_id"], c["outcome"]) for c in conflicts] == [
        (provisional, member_id, "merged")]
    text = world.ledger.admin("member", "signups").stdout
    assert f"{provisional} -> {member_id}  merged" in text and "conflict resolved" in text

    # Both cards work for the one member, each at the other till (after its pull).
    for till, card in ((till_a, card_b), (till_b, card_a)):
        assert _ok(world.cardpos(till, "terminal", "sync", "--once", "--json"))["ok"]
        sale = _ok(_op(world, till, "sale", "12.00", "--tender", "cash", "--card", card))
        assert sale["payload"]["member"] == member_id
    assert world.verify().returncode == 0
