"""Members at every store through the headless ``cardpos terminal op`` (issue 14), as subprocesses against a real
ledger process: a store-2 terminal's ``op`` serves a store-1 member it was never sent, looked up online with the
app's service code (name, balance, preferences, notes; a stored-value sale authorized and applied to the member's
one balance); once the ledger stops, a member it was never sent takes the unknown-balance path with the app's
words (cash works, stored value is refused with the reason).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cardkit.cards.textform import token_to_text
from ledger import admin
from terminal.i18n import words_for
from tests.conftest import REPO_ROOT
from tests.fixtures.sync import SyncWorld, init_world

OP_TIMEOUT_S = 120


def till(world: SyncWorld, name: str, store_id: str) -> Path:
    """A terminal of ``store_id`` enrolled with the real CLI and synced once (it pulls its store's members)."""
    world.open_admin()
    _, code = admin.add_terminal(name, store_id)
    data_dir = world.root / name
    data_dir.mkdir()
    done = world.cardpos(data_dir, "terminal", "enroll", "--ledger", world.ledger.url, "--code", code)
    assert done.returncode == 0, done.stderr
    synced = world.cardpos(data_dir, "terminal", "sync", "--once")
    assert synced.returncode == 0, synced.stderr
    return data_dir


def op(world: SyncWorld, data_dir: Path, *args: str, env: dict[str, str] | None = None,
       ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cardpos", "terminal", "op", *args, "--no-print"],
                          env={**world.terminal_env(data_dir), **(env or {})}, cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=OP_TIMEOUT_S)


def op_json(world: SyncWorld, data_dir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = op(world, data_dir, *args, "--json")
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout)


def store1_member(world: SyncWorld, name: str, **details: Any) -> str:
    """A store-1 member with 800.00 and 1,200 points; the text form of their card."""
    world.open_admin()
    member_id = admin.add_member(name, store_id="store-1", balance=80_000, points=1_200, **details)
    return token_to_text(admin.issue_card(member_id).token)


def test_op_at_store2_looks_up_a_store1_member_then_takes_the_unknown_balance_path(tmp_path: Path) -> None:
    world = init_world(tmp_path, n_members=0)
    try:
        world.server()
        guest = store1_member(world, "Li Wei", notes="allergic to nuts", prefs={"drink": "green tea"})
        stranger = store1_member(world, "Zhang Min")
        away = till(world, "away-till", "store-2")

        # Online: the member this store was never sent is looked up at the ledger and served with their figures.
        status, shown = op_json(world, away, "balance", "--card", guest)
        assert status == 0, shown
        assert (shown["name"], shown["balance"], shown["points"]) == ("Li Wei", "800.00", 1_200)
        assert shown["balance_known"] and shown["looked_up"] and shown["lookup_problem"] is None
        assert shown["prefs"] == {"drink": "green tea"} and shown["notes"] == "allergic to nuts"
        text = op(world, away, "balance", "--card", guest)
        assert text.returncode == 0, text.stderr
        assert "Balance 800.00" in text.stdout and "Looked up at the ledger" in text.stdout
        world.open_admin()
        assert [r for r in admin.audit_log(limit=50) if r["action"] == "member_lookup"], "the read was audited"

        # A stored-value sale at store 2, authorized online, lands on the member's one balance at the ledger.
        status, sale = op_json(world, away, "sale", "120.00", "--card", guest)
        assert status == 0, sale
        assert sale["offline"] is False
        assert world.cardpos(away, "terminal", "sync", "--once").returncode == 0
        assert sale["payload"]["member"] == shown["member"]
        assert world.member_show(shown["member"])["balance"] == 80_000 - 12_000

        # The ledger stops: a member this terminal was never sent still verifies, on the unknown-balance path.
        world.ledger.stop()
        unknown = op(world, away, "balance", "--card", stranger)
        assert unknown.returncode == 0, unknown.stderr
        said = " ".join(unknown.stdout.split())
        assert "Balance unknown" in said and "Points unknown" in said
        assert " ".join(words_for("en")("member.unknown_explain").split()) in said, "the app's words"
        assert "Look-up at the ledger:" in said
        status, shown = op_json(world, away, "balance", "--card", stranger)
        assert status == 0 and shown["balance"] is None and shown["points"] is None
        assert not shown["balance_known"] and shown["lookup_problem"]
        refused = op(world, away, "sale", "10.00", "--card", stranger)
        assert refused.returncode == 1
        assert "balance is not known at this terminal" in refused.stderr
        assert "\n" not in refused.stderr.strip() and "Traceback" not in refused.stderr
        status, cash = op_json(world, away, "sale", "50.00", "--card", stranger, "--tender", "cash")
        assert status == 0, cash
        assert cash["offline"] is True
        # The member looked up before is served from this terminal's cache, as an estimate.
        status, again = op_json(world, away, "balance", "--card", guest)
        assert status == 0 and again["balance"] == "680.00" and again["balance_known"]
    finally:
        world.stop_all()
