"""Alerts in a real ledger database: dedup across batches, persistent detector state, lifecycle with the audit
log, the automatic hold on a double spend, thresholds from the loaded rules, silent terminals."""

from __future__ import annotations

import pytest

from ledger import admin, alert_store, alerts, apply, events, store
from ledger.alert_store import Alert
from ledger.errors import LedgerError
from tests.fixtures.alerts import ALERT_T0, AlertLedger, Chain, reject_payload, sale_payload

MIN = 60_000


def publish_applied(chain: Chain, entries, received_ms: int) -> None:
    """What ingest does: apply the entries in a write transaction, then publish after commit."""
    with store.atomic_write():
        apply.apply_entries(entries, batch_id=f"{chain.terminal_id}-{entries[0].seq}", now_ms=received_ms)
    events.publish(chain.batch(entries, received_ms))


def test_dedup_across_batches_and_state_survives_a_restart(alert_ledger: AlertLedger):
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    chain = Chain("T-1")
    taps = [chain.add("card_reject", reject_payload("bad_signature"), ALERT_T0 + i * 1000) for i in range(12)]
    events.publish(chain.batch(taps[:3]))  # 3 taps: under the threshold of 5
    assert Alert.select().count() == 0
    alerts.install(alert_ledger.ledger_dir, start_worker=False)  # a server restart: state is in the database
    events.publish(chain.batch(taps[3:5]))
    events.publish(chain.batch(taps[5:]))
    [alert] = list(Alert.select())
    assert (alert.rule, alert.count) == ("forged_burst", 12)
    # a second burst within the dedup interval (an hour) is still the same incident
    later = [chain.add("card_reject", reject_payload("unknown_key"), ALERT_T0 + 30 * MIN + i) for i in range(5)]
    events.publish(chain.batch(later))
    assert [a.count for a in Alert.select()] == [17]
    # once resolved, a new burst opens a new alert
    alert_store.resolve(alert.id, "ops", alert_ledger.clock.now, "reader replaced")
    again = [chain.add("card_reject", reject_payload("bad_signature"), ALERT_T0 + 40 * MIN + i) for i in range(5)]
    events.publish(chain.batch(again))
    assert [(a.status, a.count) for a in Alert.select().order_by(Alert.id)] == [("resolved", 17), ("open", 5)]


def test_bursts_further_apart_than_the_dedup_interval_are_separate_alerts(alert_ledger: AlertLedger):
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    chain = Chain("T-1")
    for start in (ALERT_T0, ALERT_T0 + 30 * MIN, ALERT_T0 + 200 * MIN):
        events.publish(chain.batch([chain.add("card_reject", reject_payload("bad_signature"), start + i * 1000)
                                    for i in range(5)]))
    rows = list(Alert.select().order_by(Alert.id))
    assert [(a.count, a.first_seen_ms, a.last_seen_ms) for a in rows] == [
        (10, ALERT_T0, ALERT_T0 + 30 * MIN + 4000),  # 30 minutes apart: the same incident
        (5, ALERT_T0 + 200 * MIN, ALERT_T0 + 200 * MIN + 4000),  # more than an hour later: a new one
    ]


def test_an_escalated_alert_reaches_the_channels_it_was_too_mild_for(alert_ledger: AlertLedger):
    alert_ledger.write_config('[webhook]\nurl = "http://127.0.0.1:9/x"\nmin_severity = "critical"\n'
                              '[email]\nhost = "127.0.0.1"\nto = "a@b.test"\nmin_severity = "warning"\n')
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    member = admin.add_member("Blocked Card", balance=1_000)
    card = admin.issue_card(member).card_id
    admin.revoke_card(card, "stolen")
    chain = Chain("T-1")
    taps = [chain.add("card_reject", reject_payload("revoked", card), ALERT_T0 + i * MIN) for i in range(2)]
    events.publish(chain.batch(taps))  # warning: the email channel only
    assert [(o.channel) for o in alert_store.AlertOutbox.select()] == ["email"]
    # then a stale terminal accepted the revoked card: the same alert, now critical
    events.publish(chain.batch([chain.add("sale", sale_payload(card, member, net=500), alert_ledger.clock.now + MIN)]))
    [alert] = list(Alert.select())
    assert (alert.severity, alert.count) == ("critical", 3)
    assert sorted(o.channel for o in alert_store.AlertOutbox.select()) == ["email", "webhook"]


def test_lifecycle_is_written_to_the_audit_log(alert_ledger: AlertLedger):
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    events.publish(events.BatchRejected("T-7", "tampered", "seq 4 differs", ALERT_T0, [4]))
    [alert] = list(Alert.select())
    assert (alert.rule, alert.severity, alert.status) == ("tampered_batch", "critical", "open")
    alert_ledger.clock.advance(5 * MIN)
    alert_store.acknowledge(alert.id, "alice", alert_ledger.clock.now)
    with pytest.raises(LedgerError, match="only an open alert"):
        alert_store.acknowledge(alert.id, "bob", alert_ledger.clock.now)
    alert_ledger.clock.advance(5 * MIN)
    alert_store.resolve(alert.id, "bob", alert_ledger.clock.now, note="terminal re-imaged")
    with pytest.raises(LedgerError, match="already resolved"):
        alert_store.resolve(alert.id, "bob", alert_ledger.clock.now)
    alert = Alert.get_by_id(alert.id)
    assert (alert.acked_by, alert.acked_ms) == ("alice", ALERT_T0 + 5 * MIN)
    assert (alert.resolved_by, alert.resolved_ms, alert.note) == ("bob", ALERT_T0 + 10 * MIN, "terminal re-imaged")
    audit = [(r.actor, r.action, r.subject, r.at_ms) for r in
             store.AuditLog.select().where(store.AuditLog.action.startswith("alert_")).order_by(store.AuditLog.id)]
    assert audit == [("alice", "alert_acknowledge", f"alert:{alert.id}", ALERT_T0 + 5 * MIN),
                     ("bob", "alert_resolve", f"alert:{alert.id}", ALERT_T0 + 10 * MIN)]
    with pytest.raises(LedgerError, match="no alert 999"):
        alert_store.get_alert(999)


def test_double_spend_merged_from_two_terminals_holds_the_card(alert_ledger: AlertLedger):
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    member = admin.add_member("Double Spender", balance=10_000)
    card = admin.issue_card(member).card_id
    a, b = Chain("T-A"), Chain("T-B")
    spend_a = [a.add("sale", sale_payload(card, member, net=8_000, sv=8_000), ALERT_T0)]
    spend_b = [b.add("sale", sale_payload(card, member, net=8_000, sv=8_000), ALERT_T0 + 2 * MIN)]
    publish_applied(a, spend_a, ALERT_T0 + 60 * MIN)
    assert store.Card.get_by_id(card).status == "active"
    publish_applied(b, spend_b, ALERT_T0 + 61 * MIN)

    assert store.MemberProjection.get_by_id(member).balance == -6_000
    [alert] = [a for a in Alert.select() if a.rule == "double_spend"]
    assert (alert.severity, alert.subject_type, alert.subject_id) == ("critical", "card", card)
    assert set(alert.evidence) == {"T-A:1", "T-B:1"}
    held = store.Card.get_by_id(card)
    assert (held.status, held.status_reason) == ("on_hold", "double_spend")
    hold = store.AuditLog.get(store.AuditLog.action == "card_hold")
    assert (hold.actor, hold.subject) == ("anomaly", card)
    # another late batch spending the same card merges into the alert and does not hold twice
    late = [b.add("sale", sale_payload(card, member, net=1_000, sv=1_000), ALERT_T0 + 3 * MIN)]
    publish_applied(b, late, ALERT_T0 + 62 * MIN)
    assert [a.count for a in Alert.select() if a.rule == "double_spend"] == [2]
    assert store.AuditLog.select().where(store.AuditLog.action == "card_hold").count() == 1


def test_thresholds_come_from_the_loaded_rules(alert_ledger: AlertLedger):
    from cardkit.core.rules import DEFAULT_RULES, Rules

    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    mapping = Rules.from_mapping(DEFAULT_RULES).to_mapping()
    mapping["anomalies"]["forged_taps_per_terminal_10min"] = 2
    toml_lines = _to_toml(mapping)
    admin.load_rules(toml_lines)
    chain = Chain("T-1")
    events.publish(chain.batch([chain.add("card_reject", reject_payload("bad_signature"), ALERT_T0 + i)
                                for i in range(2)]))
    assert [(a.rule, a.count) for a in Alert.select()] == [("forged_burst", 2)]


def _to_toml(mapping: dict) -> str:
    """A tiny TOML writer for the rules mapping (ints, strings, flat tables, arrays of flat tables)."""
    def value(v: object) -> str:
        return f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)

    lines = [f"{k} = {value(v)}" for k, v in mapping.items() if not isinstance(v, dict | list)]
    for key, table in mapping.items():
        if isinstance(table, list):
            for item in table:
                lines.append(f"[[{key}]]")
                lines += [f"{k} = {value(v)}" for k, v in item.items()]
        elif isinstance(table, dict):
            flat = {k: v for k, v in table.items() if not isinstance(v, dict)}
            if flat or not table:
                lines.append(f"[{key}]")
                lines += [f"{k} = {value(v)}" for k, v in flat.items()]
            for sub, inner in table.items():
                if isinstance(inner, dict):
                    lines.append(f"[{key}.{sub}]")
                    lines += [f"{k} = {value(v)}" for k, v in inner.items()]
    return "\n".join(lines) + "\n"


def test_silent_terminal_check_on_a_timer(alert_ledger: AlertLedger):
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    events.publish(events.TerminalSeen("T-1", "S1", ALERT_T0, ALERT_T0))
    events.publish(events.TerminalSeen("T-2", "S1", ALERT_T0 + 50 * MIN, ALERT_T0 + 50 * MIN))
    assert alerts.check_silent_terminals(ALERT_T0 + 59 * MIN) == 0
    assert alerts.check_silent_terminals(ALERT_T0 + 61 * MIN) == 1
    assert alerts.check_silent_terminals(ALERT_T0 + 62 * MIN) == 0  # reported once per silence
    [alert] = list(Alert.select())
    assert (alert.rule, alert.subject_id, alert.terminal_id) == ("terminal_silent", "T-1", "T-1")


def test_an_observer_failure_never_reaches_ingest(alert_ledger: AlertLedger):
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    store.db.execute_sql("DROP TABLE alert")  # detection cannot record anything now
    chain = Chain("T-1")
    events.publish(chain.batch([chain.add("card_reject", reject_payload("bad_signature"), ALERT_T0 + i)
                                for i in range(5)]))  # publish swallows and logs the observer's error
    assert alert_store.AnomalyState.select().count() == 0  # the whole detection transaction rolled back
