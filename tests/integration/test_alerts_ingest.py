"""Alerts from a real ``cardpos ledger serve`` process: what its ingest refuses or applies becomes alerts."""

from __future__ import annotations

import pytest

from cardkit.journal import make_entry
from tests.fixtures.ledger import LedgerServer, LedgerTerminal, topup


@pytest.fixture
def till(shared_ledger_server: LedgerServer) -> LedgerTerminal:
    code = shared_ledger_server.admin_json("terminal", "add", "alerts-till")["code"]
    return LedgerTerminal.enroll(shared_ledger_server.url, code)


def alerts_of(server: LedgerServer, terminal_id: str) -> list[dict]:
    return server.admin_json("alerts", "list", "--terminal", terminal_id)["alerts"]


def test_refused_batches_become_alerts(shared_ledger_server: LedgerServer, till: LedgerTerminal) -> None:
    member = shared_ledger_server.admin_json("member", "add", "Ingest Alert", "--balance", "10.00")["member_id"]
    for _ in range(4):
        till.append("topup", topup(member, 100))
    assert till.push(1, 2).status_code == 200
    assert till.push(4, 4).status_code == 409  # seq 3 missing: a gap
    e = till.entries[1]
    changed = make_entry(terminal_id=e.terminal_id, seq=e.seq, prev_hash=e.prev_hash, wall_ms=e.wall_ms,
                         mono_ns=e.mono_ns, cashier_id=e.cashier_id, kind=e.kind,
                         payload={**e.payload, "amount": 90_000}, entry_uuid=e.uuid)
    assert till.post(till.seal(2, 2, entries=[changed])).status_code == 400  # same seq, other content
    stray = make_entry(terminal_id=till.terminal_id, seq=3, prev_hash=b"\x02" * 32, wall_ms=e.wall_ms + 1,
                       mono_ns=e.mono_ns + 1, cashier_id=None, kind="topup", payload=topup(member, 100),
                       entry_uuid="00000000-0000-4000-8000-00000000abcd")
    assert till.post(till.seal(3, 3, entries=[stray])).status_code == 400  # does not link to the chain

    found = {(a["rule"], a["severity"], a["subject_id"]) for a in alerts_of(shared_ledger_server, till.terminal_id)}
    assert found == {("sequence_gap", "warning", till.terminal_id), ("tampered_batch", "critical", till.terminal_id),
                     ("broken_chain", "critical", till.terminal_id)}
    [gap] = [a for a in alerts_of(shared_ledger_server, till.terminal_id) if a["rule"] == "sequence_gap"]
    assert gap["evidence"] == [f"{till.terminal_id}:4"]


def test_applied_forged_taps_become_one_alert(shared_ledger_server: LedgerServer, till: LedgerTerminal) -> None:
    for _ in range(60):
        till.append("card_reject", {"reason": "bad_signature", "card": None, "kid": None, "manual": False})
    for first in range(1, 61, 20):
        assert till.push(first, first + 19).status_code == 200
    [alert] = alerts_of(shared_ledger_server, till.terminal_id)
    assert (alert["rule"], alert["count"], alert["status"]) == ("forged_burst", 60, "open")
