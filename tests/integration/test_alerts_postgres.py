"""The alert store, detector state and delivery on PostgreSQL (the same code runs plain SQL there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import admin, alert_store, alerts, apply, events, store
from ledger.alert_store import Alert, AlertOutbox
from ledger.home import init_ledger
from tests.fixtures.alerts import ALERT_T0, AlertClock, Chain, reject_payload, sale_payload

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_alert_ledger(postgres_url: str, tmp_path: Path):
    clock = AlertClock()
    ledger_dir = tmp_path / "ledger"
    init_ledger(ledger_dir, db_url=postgres_url, clock=clock)
    try:
        yield ledger_dir, clock
    finally:
        alerts.uninstall()
        if not store.db.is_closed():
            store.db.close()


def test_burst_dedup_double_spend_hold_and_delivery_on_postgres(pg_alert_ledger, webhook_receiver):
    ledger_dir, clock = pg_alert_ledger
    hook = webhook_receiver()
    (ledger_dir / "alerts.toml").write_text(f'[webhook]\nurl = "{hook.url}"\nsecret = "k"\n', encoding="utf-8")
    alerts.install(ledger_dir, start_worker=False)

    chain = Chain("T-1")
    taps = [chain.add("card_reject", reject_payload("bad_signature"), ALERT_T0 + i * 100) for i in range(300)]
    for i in range(0, 300, 30):
        events.publish(chain.batch(taps[i:i + 30]))
    assert [(a.rule, a.count) for a in Alert.select()] == [("forged_burst", 300)]
    assert alert_store.AnomalyState.select().count() >= 2  # the state lives in the database (upserted)

    member = admin.add_member("Pg Spender", balance=5_000)
    card = admin.issue_card(member).card_id
    a, b = Chain("T-A"), Chain("T-B")
    for c, at in ((a, ALERT_T0), (b, ALERT_T0 + 60_000)):
        entries = [c.add("sale", sale_payload(card, member, net=4_000, sv=4_000), at)]
        with store.atomic_write():
            apply.apply_entries(entries, batch_id=f"{c.terminal_id}-1", now_ms=at)
        events.publish(c.batch(entries))
    assert [a.rule for a in Alert.select().order_by(Alert.id)] == ["forged_burst", "double_spend"]
    assert store.Card.get_by_id(card).status == "on_hold"

    report = alerts.deliver_pending(clock.now)
    assert report.sent == 2 and len(hook.requests) == 2
    assert {r.json()["alert"]["rule"] for r in hook.requests} == {"forged_burst", "double_spend"}
    assert AlertOutbox.select().where(AlertOutbox.status == "sent").count() == 2
    alert_store.acknowledge(Alert.select().order_by(Alert.id).first().id, "pg-admin", clock.now)
    assert store.AuditLog.select().where(store.AuditLog.action == "alert_acknowledge").count() == 1
