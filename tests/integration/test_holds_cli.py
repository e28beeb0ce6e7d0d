"""Held authorizations at a real ledger process, with the admin CLI as subprocesses (``cardpos ledger holds``).

A terminal enrolled with the real CLI pays online through the same counter the app and ``op`` use, and never
syncs the payment, as if it broke before recording it. With a short hold lifetime, the ledger's own scheduled
sweep expires the hold (no other authorization comes) and audits it. Then, with the default lifetime: ``holds
list`` shows held authorizations by member and state, ``holds release`` gives one back (audited, the balance is
available at once), and refuses, on one line, one already released, one whose operation was synced (settled), an
unknown id and a missing reason.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from cardkit.config import Settings
from cardkit.core.money import Money
from ledger import admin, authorize
from ledger.holds import SWEEP_ENV, TTL_ENV
from terminal.service.authorization import AUTH_FIELD
from terminal.service.counter import Counter
from terminal.service.loader import open_counter
from tests.fixtures.sync import SyncWorld, init_world

MEMBER = "M000"  # init_world: 500.00
SWEEP_WAIT_S = 30.0


def till(world: SyncWorld, name: str) -> tuple[Path, Counter]:
    _, data_dir = world.enroll(name, world.ledger.url)
    done = world.cardpos(data_dir, "terminal", "sync", "--once")
    assert done.returncode == 0, done.stderr
    settings = Settings(data_dir=data_dir)
    settings.sync.authorize_timeout_s = 20.0  # a loaded test machine still answers online
    return data_dir, open_counter(settings)


def pay(counter: Counter, token: bytes, amount: int) -> str:
    """An online stored-value payment; the authorization id on its receipt."""
    receipt = counter.sale(counter.tap(token).claims, Money(amount, "CNY"), tender="sv")
    assert not receipt.offline, "authorized online"
    return str(receipt.payload[AUTH_FIELD])


def holds(world: SyncWorld, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = world.ledger.admin_json("holds", "list", *args)["holds"]
    return rows


def wait_until_swept(auth_id: str) -> None:
    """Until the ledger's own sweep has moved the hold out of "held" (at most SWEEP_WAIT_S)."""
    started = time.monotonic()
    while authorize.Authorization.get(authorize.Authorization.auth_id == auth_id).state == "held":
        assert time.monotonic() - started < SWEEP_WAIT_S, "the sweep did not expire the hold"
        time.sleep(0.2)


def test_the_sweep_expires_a_hold_and_admins_list_and_release_holds(tmp_path: Path) -> None:
    world = init_world(tmp_path, n_members=1)
    counter: Counter | None = None
    try:
        token = admin.issue_card(MEMBER).token
        world.ledger.env.update({TTL_ENV: "2", SWEEP_ENV: "1"})
        world.server()
        data_dir, counter = till(world, "till-a")

        # A hold whose payment never reaches the ledger is expired by the ledger's own sweep, and audited.
        forgotten = pay(counter, token, 45_000)
        world.open_admin()
        authorize.open_holds()
        wait_until_swept(forgotten)
        assert {r["auth_id"]: r["state"] for r in holds(world)} == {forgotten: "expired"}, "no other authorization"

        # The default lifetime again (30 minutes): holds stay until released or settled.
        world.ledger.stop()
        del world.ledger.env[TTL_ENV]
        world.server()
        synced_hold = pay(counter, token, 1_000)
        counter.close()
        counter = None
        done = world.cardpos(data_dir, "terminal", "sync", "--once")  # both payments so far reach the ledger
        assert done.returncode == 0, done.stderr
        settings = Settings(data_dir=data_dir)
        settings.sync.authorize_timeout_s = 20.0
        counter = open_counter(settings)
        stuck = pay(counter, token, 3_000)  # 500.00 − 450.00 − 10.00 = 40.00 left; 30.00 held
        assert [r["auth_id"] for r in holds(world, "--member", MEMBER, "--state", "held")] == [stuck]
        text = world.ledger.admin("holds", "list", "--state", "held").stdout
        assert stuck in text and "sv 30.00" in text and MEMBER in text

        released = world.ledger.admin_json("holds", "release", stuck, "--reason", "till lost power",
                                           "--actor", "ops")
        assert (released["ok"], released["auth_id"], released["state"]) == (True, stuck, "released")
        assert {r["auth_id"]: r["state"] for r in holds(world, "--member", MEMBER)}[stuck] == "released"
        counter.close()
        counter = None
        _, counter = till(world, "till-b")  # its pull says 40.00; the ledger held 30.00 of it until the release
        assert pay(counter, token, 4_000), "the released 30.00 is available again at once"

        for hold_id, words in ((stuck, "was already released at "),
                               (synced_hold, "is already settled: its operation is applied"),
                               ("0123456789abcdef", "no authorization '0123456789abcdef'")):
            refused = world.ledger.admin("holds", "release", hold_id, "--reason", "again", check=False)
            assert refused.returncode == 1, refused.stdout
            assert words in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
            assert "Traceback" not in refused.stderr
        as_json = world.ledger.admin("holds", "release", stuck, "--reason", "again", "--json", check=False)
        assert as_json.returncode == 1 and json.loads(as_json.stdout)["error"] == "refused"
        no_reason = world.ledger.admin("holds", "release", stuck, check=False)
        assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
        bad_state = world.ledger.admin("holds", "list", "--state", "gone", check=False)
        assert bad_state.returncode == 2 and "invalid choice" in bad_state.stderr
        rows = world.ledger.admin_json("audit", "--limit", "200")["rows"]
        (expiry,) = [r for r in rows if r["action"] == "hold_expire"]
        assert (expiry["actor"], expiry["subject"]) == ("hold-sweep", forgotten)
        assert (expiry["details"]["member"], expiry["details"]["sv"]) == (MEMBER, 45_000)
        (release,) = [r for r in rows if r["action"] == "hold_release"]  # the refused ones left no line
        assert (release["actor"], release["subject"], release["details"]["reason"]) == ("ops", stuck,
                                                                                       "till lost power")
    finally:
        if counter is not None:
            counter.close()
        world.stop_all()


@pytest.mark.postgres
def test_two_ledger_workers_on_postgresql_expire_a_hold_once(postgres_url: str, tmp_path: Path) -> None:
    """Both worker processes sweep every second; the hold is expired and audited exactly once."""
    world = init_world(tmp_path, n_members=1, db_url=postgres_url, workers=2)
    counter: Counter | None = None
    try:
        token = admin.issue_card(MEMBER).token
        world.ledger.env.update({TTL_ENV: "2", SWEEP_ENV: "1"})
        world.server()
        _, counter = till(world, "till-a")
        forgotten = pay(counter, token, 45_000)
        world.open_admin()
        authorize.open_holds()
        wait_until_swept(forgotten)
        time.sleep(3)  # several more rounds of both workers
        rows = world.ledger.admin_json("audit", "--limit", "200")["rows"]
        assert [r["subject"] for r in rows if r["action"] == "hold_expire"] == [forgotten]
    finally:
        if counter is not None:
            counter.close()
        world.stop_all()
