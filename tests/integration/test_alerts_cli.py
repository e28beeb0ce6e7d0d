"""``cardpos ledger alerts ...`` as a real process over a ledger initialised by ``cardpos ledger init``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ledger import alerts, events, store
from ledger.home import open_ledger
from tests.fixtures.alerts import ALERT_T0, Chain, reject_payload
from tests.fixtures.ledger import LedgerServer, make_ledger


@pytest.fixture
def seeded(tmp_path: Path):
    """A CLI-initialised ledger holding three alerts: a forged burst at T-1, a tampered batch from T-2 and a
    replayed batch (info) from T-2."""
    server = make_ledger(tmp_path / "home")
    open_ledger(server.ledger_dir)
    alerts.install(server.ledger_dir, start_worker=False)
    chain = Chain("T-1")
    events.publish(chain.batch([chain.add("card_reject", reject_payload("bad_signature"), ALERT_T0 + i * 100)
                                for i in range(7)]))
    events.publish(events.BatchRejected("T-2", "tampered", "seq 3 differs", ALERT_T0 + 3_600_000, [3]))
    events.publish(events.BatchRejected("T-2", "replayed", "again", ALERT_T0 + 7_200_000, [1]))
    alerts.uninstall()
    store.db.close()
    return server


def cli_json(server: LedgerServer, *args: str):
    return json.loads(server.admin("alerts", *args, "--json").stdout)


def test_list_with_filters(seeded: LedgerServer):
    everything = cli_json(seeded, "list")["alerts"]
    assert [a["rule"] for a in everything] == ["replayed_batch", "tampered_batch", "forged_burst"]
    forged = everything[2]
    assert (forged["count"], forged["severity"], forged["subject_id"]) == (7, "critical", "T-1")
    assert [a["rule"] for a in cli_json(seeded, "list", "--severity", "critical")["alerts"]] == \
        ["tampered_batch", "forged_burst"]
    assert [a["rule"] for a in cli_json(seeded, "list", "--terminal", "T-2", "--rule", "tampered_batch")["alerts"]] \
        == ["tampered_batch"]
    since_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((ALERT_T0 + 3_000_000) / 1000))
    assert len(cli_json(seeded, "list", "--since", since_iso)["alerts"]) == 2
    assert len(cli_json(seeded, "list", "--since", str((ALERT_T0 + 5_000_000) // 1000))["alerts"]) == 1
    text = seeded.admin("alerts", "list", "--status", "open").stdout
    assert "forged_burst" in text and "count 7" in text and "terminal:T-1" in text


def test_show_ack_resolve_round_trip(seeded: LedgerServer):
    [forged] = cli_json(seeded, "list", "--rule", "forged_burst")["alerts"]
    shown = cli_json(seeded, "show", str(forged["id"]))
    assert shown["evidence"] == [f"T-1:{i}" for i in range(1, 8)] and shown["deliveries"] == []
    acked = cli_json(seeded, "ack", str(forged["id"]), "--by", "alice")
    assert (acked["status"], acked["acked_by"]) == ("acknowledged", "alice")
    done = seeded.admin("alerts", "resolve", str(forged["id"]), "--by", "bob", "--note", "reader swapped")
    assert f"alert #{forged['id']} resolved by bob" in done.stdout
    text = seeded.admin("alerts", "show", str(forged["id"])).stdout
    assert "acknowledged by alice" in text and "resolved by bob" in text and "reader swapped" in text
    assert [a["id"] for a in cli_json(seeded, "list", "--status", "resolved")["alerts"]] == [forged["id"]]
    actions = [(row["actor"], row["action"], row["subject"]) for row in seeded.admin_json("audit")["rows"]]
    assert ("alice", "alert_acknowledge", f"alert:{forged['id']}") in actions
    assert ("bob", "alert_resolve", f"alert:{forged['id']}") in actions


def test_refusals_are_one_sentence(seeded: LedgerServer):
    missing = seeded.admin("alerts", "ack", "999", "--by", "alice", check=False)
    assert missing.returncode == 1 and missing.stderr.strip() == "cardpos: there is no alert 999"
    no_name = seeded.admin("alerts", "ack", "1", check=False)
    assert no_name.returncode == 2 and "--by" in no_name.stderr
    bad_since = seeded.admin("alerts", "list", "--since", "yesterday", check=False)
    assert bad_since.returncode == 1 and "is not a time" in bad_since.stderr


def test_deliver_once_from_the_command_line(seeded: LedgerServer, webhook_receiver):
    hook = webhook_receiver(fail_first=1)
    (seeded.ledger_dir / "alerts.toml").write_text(f'[webhook]\nurl = "{hook.url}"\nsecret = "k"\n', "utf-8")
    # alerts raised before the channel existed were not queued; a new one is
    open_ledger(seeded.ledger_dir)
    alerts.install(seeded.ledger_dir, start_worker=False)
    events.publish(events.BatchRejected("T-3", "broken_chain", "seq 9", ALERT_T0, [9]))
    alerts.uninstall()
    store.db.close()
    first = seeded.admin("alerts", "deliver", "--json", check=False)
    assert first.returncode == 1 and json.loads(first.stdout)["failed"] == 1  # 503: retried later
    assert len(hook.requests) == 1
    [row] = [r for r in cli_json(seeded, "list", "--rule", "broken_chain")["alerts"]]
    shown = cli_json(seeded, "show", str(row["id"]))
    assert shown["deliveries"][0]["status"] == "pending" and shown["deliveries"][0]["attempts"] == 1
    text = seeded.admin("alerts", "show", str(row["id"])).stdout
    assert "webhook: pending after 1 attempt(s), last error: HTTP 503" in text
