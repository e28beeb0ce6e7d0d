"""Detection reads a batch's state in bulk and keeps it cached between runs: the cache must never hide another
process's writes or a rolled-back run, and alerts merged in bulk must come out as one-by-one merging made them."""

from __future__ import annotations

from ledger import alert_store, alerts, delivery, events, store
from ledger.alert_store import Alert
from ledger.anomaly.model import Finding, Severity, SubjectType
from tests.fixtures.alerts import ALERT_T0, AlertLedger, Chain, reject_payload


def forged(chain: Chain, count: int, start_ms: int) -> list:
    return [chain.add("card_reject", reject_payload("bad_signature"), start_ms + i * 1000) for i in range(count)]


def test_a_second_detector_process_sees_the_first_ones_state_and_back(alert_ledger: AlertLedger):
    first = alerts.install(alert_ledger.ledger_dir, start_worker=False)
    # another server process on the same database: its own service, its own cache
    second = alerts.AlertService(ledger_dir=alert_ledger.ledger_dir,
                                 config=delivery.load_config(alert_ledger.ledger_dir))
    chain = Chain("T-1")
    taps = forged(chain, 7, ALERT_T0)
    first.observe(chain.batch(taps[:3]))  # 3 of the 5 that make a burst, cached in ``first``
    assert [r.finding.count for r in second.observe(chain.batch(taps[3:5]))] == [5]
    # ``first`` must drop its cache (3 taps, not firing): it sees the burst firing and adds to the alert
    [recorded] = first.observe(chain.batch(taps[5:6]))
    assert not recorded.created
    second.observe(chain.batch(taps[6:]))
    assert [(a.rule, a.count) for a in Alert.select()] == [("forged_burst", 7)]


def test_a_failed_detection_run_leaves_no_cached_state_behind(alert_ledger: AlertLedger):
    svc = alerts.install(alert_ledger.ledger_dir, start_worker=False)
    chain = Chain("T-1")
    taps = forged(chain, 7, ALERT_T0)
    svc.observe(chain.batch(taps[:3]))
    table = Alert._meta.table_name
    store.db.execute_sql(f'ALTER TABLE "{table}" RENAME TO "alert_away"')
    events.publish(chain.batch(taps[3:5]))  # reaches 5: recording the alert fails, the whole run rolls back
    store.db.execute_sql(f'ALTER TABLE "alert_away" RENAME TO "{table}"')
    assert Alert.select().count() == 0
    # the state is what the database holds (3 taps), not the rolled-back 5: one more tap is still no burst
    # (the chain detector does report the seqs it never saw: that run's state was rolled back too)
    assert [r.finding.rule for r in svc.observe(chain.batch(taps[5:6]))] == ["sequence_gap"]
    [recorded] = svc.observe(chain.batch(taps[6:]))
    assert (recorded.finding.rule, recorded.created, recorded.finding.count) == ("forged_burst", True, 5)


def velocity_finding(card: str, op: str, at_ms: int, window: str | None = None) -> Finding:
    return Finding("velocity", Severity.WARNING, SubjectType.CARD, card, at_ms, (op,), f"card {card} busy",
                   window=window)


def test_findings_merged_in_bulk_match_merging_one_at_a_time(alert_ledger: AlertLedger):
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    dedup = 3_600_000
    many = [velocity_finding("card-1", f"T-1:{i}", ALERT_T0 + i) for i in range(120)]
    many += [velocity_finding("card-2", "T-1:500", ALERT_T0), velocity_finding("card-2", "T-1:500", ALERT_T0 + 1)]
    with store.atomic_write():
        bulk = alert_store.record_findings(many, ALERT_T0, dedup)
    with store.atomic_write():
        # one call per finding: the old way; into a copy of the subjects so both can be compared
        single = [alert_store.record_findings([velocity_finding(f.subject_id + "-x", f.evidence[0], f.at_ms)],
                                              ALERT_T0, dedup)[0] for f in many]
    assert sum(r.created for r in bulk) == 2 and sum(r.created for r in single) == 2
    rows = {a.subject_id: a for a in Alert.select()}
    for card in ("card-1", "card-2"):
        merged, one_by_one = rows[card], rows[card + "-x"]
        assert (merged.count, merged.first_seen_ms, merged.last_seen_ms, merged.evidence) == (
            one_by_one.count, one_by_one.first_seen_ms, one_by_one.last_seen_ms, one_by_one.evidence)
    card1 = rows["card-1"]
    assert card1.count == 120
    assert card1.evidence == [f"T-1:{i}" for i in range(25)] + [f"T-1:{i}" for i in range(95, 120)]
    assert rows["card-2"].evidence == ["T-1:500"]  # a repeated id is kept once


def test_window_findings_merge_only_into_their_own_window(alert_ledger: AlertLedger):
    alerts.install(alert_ledger.ledger_dir, start_worker=False)
    dedup = 3_600_000
    with store.atomic_write():
        alert_store.record_findings([velocity_finding("c1", "T-1:1", ALERT_T0, window="shift-a")], ALERT_T0, dedup)
    with store.atomic_write():
        recorded = alert_store.record_findings(
            [velocity_finding("c1", "T-1:2", ALERT_T0 + 1, window="shift-a"),
             velocity_finding("c1", "T-1:3", ALERT_T0 + 2, window="shift-b"),
             velocity_finding("c1", "T-1:4", ALERT_T0 + 3, window="shift-b")], ALERT_T0, dedup)
    assert [r.created for r in recorded] == [False, True]  # shift-b's two findings group into one new alert
    rows = [(a.dedup_window, a.count, a.evidence) for a in Alert.select().order_by(Alert.id)]
    assert rows == [("shift-a", 2, ["T-1:1", "T-1:2"]), ("shift-b", 2, ["T-1:3", "T-1:4"])]
