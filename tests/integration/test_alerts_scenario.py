"""The double-spend scenario with real parts: a ``cardpos ledger serve`` process (alerts installed, delivery
worker running), the reader simulator on a pty with one member card, three enrolled terminals with their own
SQLite journals and sync services.

Terminals A and B sync once, then lose the ledger (it is stopped). The same card spends most of its stored value
at both, offline. The ledger comes back; A and B sync. The merged balance is below zero: a double-spend alert
exists, it was delivered to the webhook, the card is on hold, and terminal C refuses the card after its next pull.
"""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path
from typing import Any

import pytest

from cardkit.config import load_settings
from cardkit.core.money import Money
from cardkit.wallet import Wallet, WalletCard
from ledger import admin, store
from terminal.documents import require_enrollment
from terminal.reader.device import ReaderDevice
from terminal.reader.events import CardPresented, CardRemoved, ReaderEvent, ReaderState, ReaderStatus
from terminal.service.loader import load_verifier, open_counter
from terminal.sync.service import SyncReport, SyncService, load_identity_key
from tests.fixtures.sync import SyncWorld, init_world

SECRET = "scenario-hook-secret"


def _next(events: queue.Queue[ReaderEvent], kind: type, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        connected = getattr(event, "state", None) == ReaderState.CONNECTED
        if isinstance(event, kind) and (kind is not ReaderStatus or connected):
            return event
    raise AssertionError(f"no {kind.__name__} event within {timeout_s} s")


class Terminal:
    """One enrolled terminal in this process: its counter (offline unless told) and its sync service."""

    def __init__(self, world: SyncWorld, data_dir: Path) -> None:
        config = world.root / "empty-config.toml"
        config.touch()
        self.settings = load_settings(config, env={"CARDPOS_DATA_DIR": str(data_dir)})
        self.counter = open_counter(self.settings)
        self.enrollment = require_enrollment(data_dir)
        self.sync = SyncService(self.counter.store, self.enrollment, load_identity_key(data_dir),
                                settings=self.settings.sync)

    def sync_once(self) -> SyncReport:
        """Sync, then check cards with what the pull brought (as the app's ``reload_documents`` does)."""
        report = self.sync.sync_once()
        self.counter.verifier = load_verifier(self.settings.data_dir, self.enrollment,
                                              clock_skew_s=self.settings.terminal.clock_skew_s)
        return report

    def close(self) -> None:
        self.counter.close()


@pytest.fixture
def world(tmp_path: Path):
    w = init_world(tmp_path, n_members=0)
    try:
        yield w
    finally:
        w.stop_all()


def test_offline_double_spend_is_alerted_held_and_refused_everywhere(world: SyncWorld, sim_process,
                                                                     webhook_receiver) -> None:
    hook = webhook_receiver()
    (world.ledger_dir / "alerts.toml").write_text(
        f'min_severity = "warning"\npoll_s = 1\n[webhook]\nurl = "{hook.url}"\nsecret = "{SECRET}"\n',
        encoding="utf-8")
    world.open_admin()
    member = admin.add_member("Eve Twice", balance=10_000)  # 100.00 of stored value
    card = admin.issue_card(member)
    store.db.close()
    wallet = Wallet()
    wallet.add(WalletCard("Eve's card", "valid", card.token_text))
    wallet_path = world.root / "wallet.json"
    wallet.save(wallet_path)

    server = world.server()
    ids_dirs = [world.enroll(name, server.url) for name in ("till A", "till B", "till C")]
    terminals = [Terminal(world, data_dir) for _, data_dir in ids_dirs]
    a, b, c = terminals
    sim = sim_process(wallet_path)
    events: queue.Queue[ReaderEvent] = queue.Queue()
    # the same card twice in a row is a new tap once it has left the reader (a short debounce)
    reader = ReaderDevice(sim.port, on_event=events.put, debounce_ms=200)
    reader.start()
    try:
        _next(events, ReaderStatus)
        for t in terminals:
            t.sync_once()  # member snapshot, trust list, revocations: each terminal knows the 100.00

        server.stop()  # the ledger is gone: A and B work offline

        spent = []
        for t in (a, b):
            assert sim.command("tap 1").startswith("ok")
            tap = t.counter.tap(_next(events, CardPresented).token)
            _next(events, CardRemoved)
            assert tap.accepted and tap.member is not None
            assert tap.member.state.balance == 10_000  # each terminal alone still sees the whole balance
            receipt = t.counter.sale(tap.claims, Money.parse("80.00"), tender="sv", cashier_id="c1")
            assert receipt.payload["offline"] is True
            spent.append(receipt.payload["sv"])
        assert sum(spent) > 10_000  # together they spent more than there was

        world.server()  # the ledger is back
        assert a.sync_once().applied >= 1
        assert b.sync_once().applied >= 1

        listed = world.ledger.admin_json("alerts", "list", "--rule", "double_spend")["alerts"]
        assert len(listed) == 1
        alert = listed[0]
        assert (alert["severity"], alert["subject_type"], alert["subject_id"]) == ("critical", "card", card.card_id)
        terminal_ids = {tid for tid, _ in ids_dirs[:2]}
        assert {e.rsplit(":", 1)[0] for e in alert["evidence"]} == terminal_ids
        shown = world.member_show(member)
        assert shown["balance"] == 10_000 - sum(spent) < 0

        # the hold went through the ledger's own admin path (audit log, revocations feed)
        audit = world.ledger.admin_json("audit")["rows"]
        assert any(r["action"] == "card_hold" and r["actor"] == "anomaly" and r["subject"] == card.card_id
                   for r in audit)

        # the ledger's delivery worker posted it, signed
        [request] = [r for r in hook.wait_for(1, timeout_s=20) if r.json()["alert"]["rule"] == "double_spend"]
        from ledger.delivery import verify_signature

        assert verify_signature(SECRET, request.body, request.headers["X-Cardpos-Signature"])
        assert card.card_id in request.json()["text"]

        # terminal C pulls the hold and refuses the card at its next tap
        c.sync_once()
        assert sim.command("tap 1").startswith("ok")
        refused = c.counter.tap(_next(events, CardPresented).token)
        assert not refused.accepted, "terminal C accepted a card the ledger put on hold"
        assert refused.verdict.reason is not None and refused.verdict.reason.value == "on_hold"
        assert refused.reject_entry is not None and refused.reject_entry.payload["card"] == card.card_id
        report = c.sync_once()  # the refusal itself reaches the ledger
        assert report.applied == 1
        assert json.loads(world.ledger.admin("alerts", "show", str(alert["id"]), "--json").stdout)["count"] == 1
    finally:
        reader.stop()
        for t in terminals:
            t.close()
