"""A stolen terminal key must not mint money (issue 13): a real ``cardpos ledger serve`` process, batches signed with
an enrolled terminal's own key, saying what no till makes.

Each such entry is quarantined with a reason (journaled, not applied, alerted, listed for admins, and not a chain
break for ``ledger verify``) while the terminal's later entries in the same batch still apply, and the balances are
those of the valid entries only.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from terminal.offline.state import QUARANTINED_SEQS
from terminal.sync.service import SyncStatus
from terminal.ui.messages import SyncStatusChanged
from terminal.ui.screens.technician import TechnicianScreen
from tests.fixtures.ledger import LedgerServer, LedgerTerminal, sale, topup
from tests.fixtures.sync import SyncWorld
from tests.fixtures.ui import TECHNICIAN_PIN, UiWorld, settle, sign_in
from tests.integration.test_sync_ledger import make_service, open_terminal

CNY = 100  # minor units per yuan


@pytest.fixture
def ledger(shared_ledger_server: LedgerServer) -> LedgerServer:
    return shared_ledger_server


@pytest.fixture
def till(ledger: LedgerServer) -> LedgerTerminal:
    code = ledger.admin_json("terminal", "add", "stolen till", "--store", "store-1")["code"]
    return LedgerTerminal.enroll(ledger.url, code)


def member_with_card(ledger: LedgerServer, name: str, store: str, balance: str) -> tuple[str, str]:
    member_id = ledger.admin_json("member", "add", name, "--store", store, "--balance", balance)["member_id"]
    return member_id, ledger.admin_json("card", "issue", "--member", member_id)["card_id"]


def balance_of(ledger: LedgerServer, member_id: str) -> int:
    return int(ledger.admin_json("member", "show", member_id, "--history", "0")["balance"])


def refund(member: str, card: str, orig: str, amount: int, *, sv: int | None = None) -> dict[str, Any]:
    return {"card": card, "member": member, "cur": "CNY", "orig": orig, "amount": amount,
            "sv": amount if sv is None else sv, "pts_back": 0, "pts_rev": 0, "tender": "sv", "supervisor": "s1",
            "offline": False}


def void(member: str, card: str, orig: str, sv: int) -> dict[str, Any]:
    return {"card": card, "member": member, "cur": "CNY", "orig": orig, "sv": sv, "pts_back": 0, "pts_rev": 0,
            "coupons_back": [], "spend": sv, "supervisor": "s1", "offline": False}


def quarantined(ledger: LedgerServer, terminal_id: str) -> dict[int, dict[str, Any]]:
    rows = ledger.admin_json("quarantine", "list", "--terminal", terminal_id)["entries"]
    return {row["seq"]: row for row in rows}


def test_the_five_stolen_key_entries_are_quarantined_and_later_entries_still_apply(
        ledger: LedgerServer, till: LedgerTerminal) -> None:
    ann, ann_card = member_with_card(ledger, "Ann Here", "store-1", "100.00")
    bo, _ = member_with_card(ledger, "Bo Elsewhere", "store-2", "100.00")
    till.append("topup", topup(ann, 100 * CNY, card=ann_card))                     # 1 valid
    bought = till.append("sale", sale(ann, 30 * CNY, card=ann_card))                # 2 valid: the original
    till.append("topup", topup(bo, 200 * CNY, card=ann_card))                       # 3 another store's member
    till.append("void", void(ann, ann_card, "6f9e0c4e-0000-4000-8000-000000000001", 50_000 * CNY))  # 4 no such sale
    till.append("topup", topup(ann, -1_000 * CNY, card=ann_card))                   # 5 negative top-up
    till.append("refund", refund(ann, ann_card, bought.uuid, 50 * CNY))             # 6 more than the sale
    till.append("topup", {**topup(ann, 10 * CNY, card=ann_card), "bonus": 2**63})   # 7 beyond 64 bits
    till.append("topup", topup(ann, 20 * CNY, card=ann_card))                       # 8 valid, after them all

    # The ledger signs the answer, quarantined list included (push_verified checks that signature).
    assert till.push_verified(1, 8) == {"acked_seq": 8, "applied": 3, "duplicates": 0, "quarantined": [3, 4, 5, 6, 7]}
    assert balance_of(ledger, ann) == (100 + 100 - 30 + 20) * CNY
    assert balance_of(ledger, bo) == 100 * CNY

    held = quarantined(ledger, till.terminal_id)
    assert sorted(held) == [3, 4, 5, 6, 7]
    assert held[3]["code"] == "not_members_card"  # members are program-wide; the card is not bo's
    assert (held[4]["code"], held[5]["code"], held[6]["code"], held[7]["code"]) == (
        "unknown_original", "negative_amount", "refund_exceeds", "integer_range")
    assert all(row["reason"] for row in held.values())
    assert held[4]["kind"] == "void" and held[4]["member_id"] == ann

    # Each quarantine is alerted (one alert for the terminal, counting them), and verify sees no chain break.
    [alert] = [a for a in ledger.admin_json("alerts", "list", "--terminal", till.terminal_id)["alerts"]
               if a["rule"] == "quarantined_entry"]
    assert (alert["severity"], alert["count"]) == ("critical", 5)
    assert ledger.admin("verify", check=False).returncode == 0
    assert ledger.admin_json("verify")["quarantined"] >= 5

    # The ack was lost: the same entries again are duplicates, and the answer names the quarantined ones again.
    again = till.push_verified(1, 8)
    assert again == {"acked_seq": 8, "applied": 0, "duplicates": 8, "quarantined": [3, 4, 5, 6, 7]}
    # The chain goes on over the quarantined entries.
    till.append("sale", sale(ann, 5 * CNY, card=ann_card))
    assert till.push_verified(9, 9) == {"acked_seq": 9, "applied": 1, "duplicates": 0}
    assert balance_of(ledger, ann) == (100 + 100 - 30 + 20 - 5) * CNY
    assert ledger.admin("verify", check=False).returncode == 0


def test_times_beyond_64_bits_are_a_refused_batch_and_far_ahead_is_quarantined(ledger: LedgerServer,
                                                                               till: LedgerTerminal) -> None:
    """``wall_ms`` is part of every entry's envelope columns, held to signed 64-bit by the bounded decoder: past it
    the whole batch is refused as malformed with the reason (recorded, the terminal's own signature) — never a
    server error — and the same seq in range then applies. A time in range but three days ahead of the ledger's
    clock is an entry no till makes: quarantined while the entries around it apply."""
    from cardkit.journal import make_entry

    ann, card = member_with_card(ledger, "Ann Clock", "store-1", "10.00")
    till.append("topup", topup(ann, 100, card=card))
    assert till.push_verified(1, 1)["applied"] == 1

    def append_at(wall_ms: int) -> None:
        last = till.entries[-1]
        till.entries.append(make_entry(terminal_id=till.terminal_id, seq=last.seq + 1, prev_hash=last.hash,
                                       wall_ms=wall_ms, mono_ns=last.mono_ns + 1, cashier_id="c1", kind="topup",
                                       payload=topup(ann, 100, card=card), entry_uuid=str(uuid.uuid4())))

    append_at(2**63)
    refused = till.push(2, 2)
    assert refused.status_code == 400 and refused.json()["error"] == "malformed", refused.text
    assert "64-bit" in refused.json()["message"]
    assert [row["reason"] for row in ledger.admin_json("audit", "--rejected")["rows"]
            if row["terminal_id"] == till.terminal_id] == ["malformed"]
    till.entries.pop()
    append_at(till.wall_ms + 3 * 86_400_000)  # three days ahead of the ledger
    till.append("topup", topup(ann, 100, card=card))
    assert till.push_verified(2, 3) == {"acked_seq": 3, "applied": 1, "duplicates": 0, "quarantined": [2]}
    held = quarantined(ledger, till.terminal_id)
    assert held[2]["code"] == "bad_time"
    assert balance_of(ledger, ann) == 10 * CNY + 200
    assert ledger.admin("verify", check=False).returncode == 0
    assert "Traceback" not in ledger.stderr()


def test_partial_refunds_add_up_to_the_sale_and_no_further(ledger: LedgerServer, till: LedgerTerminal) -> None:
    ann, card = member_with_card(ledger, "Ann Refunds", "store-1", "100.00")
    bought = till.append("sale", sale(ann, 50 * CNY, card=card))      # 1
    till.append("refund", refund(ann, card, bought.uuid, 20 * CNY))    # 2 ok: 30 left
    till.append("refund", refund(ann, card, bought.uuid, 20 * CNY))    # 3 ok: 10 left
    till.append("refund", refund(ann, card, bought.uuid, 20 * CNY))    # 4 more than is left
    till.append("void", void(ann, card, bought.uuid, 50 * CNY))        # 5 a refunded sale cannot be voided
    till.append("refund", refund(ann, card, bought.uuid, 10 * CNY))    # 6 ok: the rest
    till.append("refund", refund(ann, card, bought.uuid, 1, sv=0))     # 7 nothing left
    assert till.push(1, 7).json()["quarantined"] == [4, 5, 7]
    held = quarantined(ledger, till.terminal_id)
    assert (held[4]["code"], held[5]["code"], held[7]["code"]) == ("refund_exceeds", "already_refunded",
                                                                   "refund_exceeds")
    assert balance_of(ledger, ann) == 100 * CNY  # spent 50, all 50 refunded


def test_a_void_gives_back_exactly_what_the_original_took_once(ledger: LedgerServer, till: LedgerTerminal) -> None:
    ann, card = member_with_card(ledger, "Ann Voids", "store-1", "100.00")
    bought = till.append("sale", sale(ann, 40 * CNY, card=card))       # 1
    till.append("void", void(ann, card, bought.uuid, 400 * CNY))       # 2 ten times what the sale took
    till.append("void", void(ann, card, bought.uuid, 40 * CNY))        # 3 ok
    till.append("void", void(ann, card, bought.uuid, 40 * CNY))        # 4 voided already
    assert till.push(1, 4).json()["quarantined"] == [2, 4]
    held = quarantined(ledger, till.terminal_id)
    assert (held[2]["code"], held[4]["code"]) == ("void_mismatch", "already_voided")
    assert balance_of(ledger, ann) == 100 * CNY


def test_the_terminal_learns_which_entries_were_quarantined(sync_world: SyncWorld) -> None:
    """A real terminal data dir and ``cardpos terminal sync``: its journal holds an entry no till makes (as with a
    stolen key: a top-up for another store's member); the sync reports its seq, the terminal keeps it, and the
    ledger applies the entries around it."""
    from ledger import admin

    world = sync_world
    server = world.server()
    ann, card = sorted(world.members.items())[0]
    world.open_admin()
    faraway = admin.add_member("Far Away", store_id="store-9", balance=1_000)
    _, data_dir = world.enroll("till", server.url)
    with open_terminal(data_dir) as store:
        store.journal.append("topup", {"card": card, "member": ann, "cur": "CNY", "amount": 1_000, "bonus": 0,
                                       "tender": "cash", "offline": False})
        store.journal.append("topup", {"card": card, "member": faraway, "cur": "CNY", "amount": 90_000,
                                       "bonus": 0, "tender": "cash", "offline": False})
        store.journal.append("topup", {"card": card, "member": ann, "cur": "CNY", "amount": 2_000, "bonus": 0,
                                       "tender": "cash", "offline": False})
    done = world.cardpos(data_dir, "terminal", "sync", "--once", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["acked_seq"], report["applied"], report["quarantined"], report["queue_depth"]) == (3, 2, [2], 0)
    text = world.cardpos(data_dir, "terminal", "sync", "--once")
    assert text.returncode == 0 and "quarantined" not in text.stdout  # nothing new to report the second time
    assert world.member_show(ann)["balance"] == world.opening[ann][0] + 3_000
    assert world.member_show(faraway)["balance"] == 1_000
    with open_terminal(data_dir) as store:
        assert store.sync_state.get(QUARANTINED_SEQS) == [2]
        service = make_service(store)
        assert service.status.quarantined == (2,)  # what the technician screen shows after a restart
        service.client.close()
    [row] = world.ledger.admin_json("quarantine", "list")["entries"]
    assert (row["seq"], row["code"], row["member_id"]) == (2, "not_members_card", faraway)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_technician_screen_shows_quarantined_entries(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await pilot.press("f9")
        await settle(pilot)
        await pilot.press(*"t1", "enter", *TECHNICIAN_PIN, "enter")
        await settle(pilot)
        assert isinstance(app.screen, TechnicianScreen)
        now = ui_world.clock_ms()
        app.post_message(SyncStatusChanged(SyncStatus(online=True, offline_since_ms=None, queue_depth=0,
                                                      last_sync_ms=now, last_error=None, quarantined=(7, 9))))
        await settle(pilot)
        app.screen.show_sync()
        text = str(app.screen.query_one("#tech-sync").render())
        assert "Quarantined by the ledger (journaled, not applied): 2 entries, seq 7, 9" in text


def test_refunds_are_judged_the_same_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    """PostgreSQL: a batch with refunds takes the members lock before reading what was refunded (two workers
    refunding one sale at once must see each other), and quarantines what exceeds the sale as on SQLite."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger import admin, quarantine, store
    from ledger.home import init_ledger
    from ledger.verify import verify_all
    from tests.fixtures.ledger import InProcessTill, enroll_in_process

    ledger = init_ledger(tmp_path / "ledger", postgres_url)
    try:
        ann = admin.add_member("Ann PG", balance=10_000)
        _, code = admin.add_terminal("pg till")
        key = Ed25519PrivateKey.generate()
        body = enroll_in_process(ledger, code, key)
        till = InProcessTill(ledger, body["terminal_id"], key, bytes.fromhex(body["ledger_hpke_public_key"]))
        bought = till.append("sale", sale(ann, 3_000))
        card = bought.payload["card"]
        till.append("refund", refund(ann, card, bought.uuid, 2_000))
        till.append("refund", refund(ann, card, bought.uuid, 2_000))  # 1,000 left
        till.append("refund", refund(ann, card, bought.uuid, 1_000))
        result = till.ingest(1, 4)
        assert (result.applied, result.quarantined) == (3, [3])
        assert [row["code"] for row in quarantine.list_quarantined()] == ["refund_exceeds"]
        assert admin.member_view(ann)["balance"] == 10_000
        assert verify_all() == []
    finally:
        store.db.close()
