"""Refunds and voids anywhere through the headless ``cardpos terminal op`` (issue 14), as subprocesses against a real
ledger process: a sale and a top-up made at a store-1 terminal and synced are refunded (in part) and voided at a
store-2 terminal, the original fetched from the ledger with what is left to refund and the reversal authorized
online, through the app's service code; a refund beyond what is left is refused with the reason; once the ledger
stops, the store-2 terminal refuses another terminal's sale with the app's offline reason and journals nothing,
while its own sales can still be refunded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cardkit.authorization import OFFLINE_PATH
from terminal import documents
from terminal.offline.store import TerminalStore
from tests.conftest import REPO_ROOT
from tests.fixtures.sync import SyncWorld, init_world
from tests.integration.test_op_every_store import OP_TIMEOUT_S, op, op_json, store1_member, till

SUPERVISOR_PIN = {"SUP_PIN": "4321"}


def journal_length(data_dir: Path) -> int:
    store = TerminalStore.open(data_dir, documents.require_enrollment(data_dir).terminal_id)
    try:
        return store.journal.last_seq
    finally:
        store.close()


def add_supervisor(world: SyncWorld, data_dir: Path) -> None:
    added = subprocess.run([sys.executable, "-m", "cardpos", "terminal", "cashier", "add", "s1", "--name", "Sue",
                            "--role", "supervisor", "--pin-env", "SUP_PIN"],
                           env={**world.terminal_env(data_dir), **SUPERVISOR_PIN}, cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=OP_TIMEOUT_S)
    assert added.returncode == 0, added.stderr


def reverse(world: SyncWorld, data_dir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """``op refund|void ...`` approved by supervisor s1; (exit status, the JSON answer)."""
    done = op(world, data_dir, *args, "--supervisor", "s1", "--supervisor-pin-env", "SUP_PIN", "--json",
              env=SUPERVISOR_PIN)
    assert done.stdout.strip() and "Traceback" not in done.stderr, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, answer


def test_op_refunds_and_voids_another_terminals_operations_online_and_refuses_them_offline(tmp_path: Path) -> None:
    world = init_world(tmp_path, n_members=0)
    try:
        world.server()
        guest = store1_member(world, "Chen Jie")  # 800.00 of stored value
        home = till(world, "home-till", "store-1")
        away = till(world, "away-till", "store-2")
        add_supervisor(world, away)

        status, sale = op_json(world, home, "sale", "200.00", "--card", guest)
        assert status == 0, sale
        status, topup = op_json(world, home, "topup", "100.00", "--card", guest, "--tender", "bank_card")
        assert status == 0, topup
        assert world.cardpos(home, "terminal", "sync", "--once").returncode == 0
        member_id = str(sale["payload"]["member"])

        # Online at store 2: the original is fetched from the ledger and part of it refunded, authorized online.
        status, refund = reverse(world, away, "refund", str(sale["uuid"]), "50.00")
        assert status == 0, refund
        payload = refund["payload"]
        assert (payload["orig"], payload["amount"], payload["sv"]) == (sale["uuid"], 5_000, 5_000)
        assert refund["offline"] is False and payload["auth"] != OFFLINE_PATH, "authorized by the ledger"
        assert ["Still refundable", "150.00"] in refund["lines"], refund["lines"]
        assert world.cardpos(away, "terminal", "sync", "--once").returncode == 0
        assert world.member_show(member_id)["balance"] == 80_000 - 20_000 + 10_000 + 5_000

        # Beyond what is left (the ledger's figure: 150.00 of 200.00): refused with the reason, nothing journaled.
        before = journal_length(away)
        status, refused = reverse(world, away, "refund", str(sale["uuid"]), "150.01")
        assert status == 1 and refused["error"] == "refund_exceeds", refused
        assert refused["message"] == ("declined: At most 150.00 CNY can still be refunded on that sale "
                                      "(50.00 CNY of 200.00 CNY already refunded)")
        assert journal_length(away) == before

        # A void of the other terminal's top-up, authorized online (it takes back the 100.00 the top-up gave).
        status, void = reverse(world, away, "void", str(topup["uuid"]))
        assert status == 0, void
        assert world.cardpos(away, "terminal", "sync", "--once").returncode == 0
        assert world.member_show(member_id)["balance"] == 80_000 - 20_000 + 5_000
        status, own = op_json(world, away, "sale", "40.00", "--card", guest, "--tender", "cash")
        assert status == 0, own
        verified = world.verify()
        assert verified.returncode == 0, verified.stdout + verified.stderr

        # The ledger stops: another terminal's sale is refused with the app's offline reason, nothing journaled.
        status, other = op_json(world, home, "sale", "30.00", "--card", guest, "--tender", "cash")
        assert status == 0, other
        assert world.cardpos(home, "terminal", "sync", "--once").returncode == 0
        world.ledger.stop()
        before = journal_length(away)
        done = op(world, away, "refund", str(other["uuid"]), "10.00", "--supervisor", "s1",
                  "--supervisor-pin-env", "SUP_PIN", env=SUPERVISOR_PIN)
        assert done.returncode == 1
        said = done.stderr.strip()
        assert "\n" not in said and "Traceback" not in said, said
        assert f"Operation {other['uuid']} was not recorded at this terminal and the ledger cannot be reached" in said
        assert "offline, only this terminal's operations can be refunded or voided" in said
        status, refused = reverse(world, away, "void", str(other["uuid"]))
        assert status == 1 and refused["error"] == "original_unavailable", refused
        assert journal_length(away) == before

        # Its own sale is still refunded offline, from this terminal's journal.
        status, offline = reverse(world, away, "refund", str(own["uuid"]), "15.00")
        assert status == 0, offline
        assert offline["offline"] is True
        assert journal_length(away) == before + 1
    finally:
        world.stop_all()
