"""Anomaly alerts at the ledger: detection on every ingest event, alerts with dedup, delivery in the background.

``install(ledger_dir)`` (called by ``ledger serve`` and ``ledger init`` once the database is open) creates the
alert tables, subscribes the detectors to ``ledger.events`` and starts the delivery worker. For each event the
observer runs the detectors and records their findings as alerts plus outbox rows in one transaction after
the batch's own commit; a card whose stored value went below zero is then put on hold through
``ledger.admin.hold_card`` so every terminal refuses it after its next pull.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import peewee

from cardkit.errors import CardposError
from ledger import admin, alert_store, delivery, events, noise, publish, store
from ledger.anomaly.batch import BatchPlan, plan_batch
from ledger.anomaly.engine import AnomalyEngine
from ledger.anomaly.model import Finding
from ledger.anomaly.thresholds import Thresholds

log = logging.getLogger("cardpos.ledger.alerts")

ADVISORY_LOCK_ID = 0x63617264  # "card": one detector at a time across PostgreSQL server processes
BLOCKED_STATUSES = ("revoked", "on_hold")
CHUNK = 400  # parameters per IN (...) list, well under SQLite's limit


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


class DbLedgerView:
    """The ledger's merged figures, read from its tables after a batch has committed.

    Answers are cached until ``clear()`` (the alert service clears at the start and end of every detection run,
    inside which the figures cannot change); ``prefetch`` reads a whole batch's cards and members in a few
    queries instead of one or two per entry.
    """

    def __init__(self) -> None:
        self._balances: dict[str, int | None] = {}
        self._blocked: dict[str, int | None] = {}

    def clear(self) -> None:
        self._balances.clear()
        self._blocked.clear()

    def prefetch(self, card_ids: Iterable[str], member_ids: Iterable[str]) -> None:
        p = store.db.param
        members = sorted({m for m in member_ids if m not in self._balances})
        for chunk in _chunks(members):
            rows = store.db.execute_sql(
                f'SELECT "member_id", "balance" FROM "{store.MemberProjection._meta.table_name}" '
                f'WHERE "member_id" IN ({", ".join(p for _ in chunk)})', chunk).fetchall()
            found = {str(r[0]): int(r[1]) for r in rows}
            for member_id in chunk:
                self._balances[member_id] = found.get(member_id)
        cards = sorted({c for c in card_ids if c not in self._blocked})
        for chunk in _chunks(cards):
            rows = store.db.execute_sql(
                f'SELECT "card_id", "status" FROM "{store.Card._meta.table_name}" '
                f'WHERE "card_id" IN ({", ".join(p for _ in chunk)})', chunk).fetchall()
            blocked = {str(r[0]) for r in rows if r[1] in BLOCKED_STATUSES}
            for card_id in chunk:
                if card_id in blocked:
                    self._blocked[card_id] = self._blocked_since(card_id)  # rare: one more query each
                else:
                    self._blocked[card_id] = None

    def balance_minor(self, member_id: str) -> int | None:
        if member_id not in self._balances:
            row = store.db.execute_sql(
                f'SELECT "balance" FROM "{store.MemberProjection._meta.table_name}" WHERE "member_id" = '
                f'{store.db.param}', (member_id,)).fetchone()
            self._balances[member_id] = None if row is None else int(row[0])
        return self._balances[member_id]

    def card_blocked_since(self, card_id: str) -> int | None:
        if card_id not in self._blocked:
            row = store.db.execute_sql(
                f'SELECT "status" FROM "{store.Card._meta.table_name}" WHERE "card_id" = {store.db.param}',
                (card_id,)).fetchone()
            blocked = row is not None and row[0] in BLOCKED_STATUSES
            self._blocked[card_id] = self._blocked_since(card_id) if blocked else None
        return self._blocked[card_id]

    @staticmethod
    def _blocked_since(card_id: str) -> int | None:
        change = store.db.execute_sql(
            f'SELECT "changed_ms" FROM "{store.Revocation._meta.table_name}" WHERE "card_id" = {store.db.param} '
            'ORDER BY "version" DESC LIMIT 1', (card_id,)).fetchone()
        return int(change[0]) if change is not None else None

    def terminals(self) -> dict[str, tuple[str, str, int | None]]:
        rows = store.Terminal.select(store.Terminal.terminal_id, store.Terminal.status, store.Terminal.store_id,
                                     store.Terminal.last_seen_ms)
        return {str(r.terminal_id): (str(r.status), str(r.store_id), r.last_seen_ms) for r in rows
                if r.status != "internal"}


def current_thresholds() -> Thresholds:
    """The thresholds of the newest loaded rules (the shipped defaults before any are loaded)."""
    return Thresholds.from_mapping(publish.current_rules().anomalies)


def _clock() -> int:
    from ledger.home import current, system_clock

    try:
        return current().now_ms()
    except CardposError:
        return system_clock()


@dataclass
class AlertService:
    """Detection + recording + delivery for one open ledger."""

    ledger_dir: Path
    config: delivery.DeliveryConfig
    clock: Callable[[], int] = field(default=_clock)
    engine: AnomalyEngine = field(init=False)
    state: alert_store.DbState = field(init=False)
    view: DbLedgerView = field(init=False)
    rules_version: int = field(init=False, default=-1)
    worker: delivery.DeliveryWorker | None = field(init=False, default=None)
    lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.state = alert_store.DbState()
        self.view = DbLedgerView()
        self.engine = AnomalyEngine(Thresholds(), self.state, self.view)

    def now_ms(self) -> int:
        return self.clock()

    def _refresh_thresholds(self) -> None:
        row = store.db.execute_sql(
            f'SELECT "value" FROM "{store.VersionCounter._meta.table_name}" WHERE "name" = {store.db.param}',
            ("rules",)).fetchone()
        version = int(row[0]) if row else 0  # store.current("rules"), without the query builder's cost
        if version != self.rules_version:
            self.rules_version, self.engine.thresholds = version, current_thresholds()

    def observe(self, event: events.LedgerEvent) -> list[alert_store.Recorded]:
        """Run the detectors on one event and record what they find (the ``ledger.events`` observer)."""
        if isinstance(event, events.BatchApplied):
            plan = plan_batch(event)  # pure: sorted out before the transaction, read by prefetch and detectors
            return self._detect(lambda: self.engine.on_batch(plan), lambda: self._prefetch(plan))
        return self._detect(lambda: self.engine.on_event(event),
                            lambda: self.state.prefetch(AnomalyEngine.state_keys(event)))

    def _prefetch(self, plan: BatchPlan) -> None:
        """Everything the detectors will read for a batch, in a few queries rather than a few per entry: their
        state, and the figures of the cards they check for a block and of the members who spent stored value."""
        self.state.prefetch(plan.state_keys())
        self.view.prefetch(plan.uses.keys(), plan.spends.keys())

    def check_silent_terminals(self, now_ms: int) -> list[alert_store.Recorded]:
        return self._detect(lambda: self.engine.check_silent_terminals(now_ms))

    def _detect(self, run: Callable[[], list[Finding]],
                prefetch: Callable[[], None] | None = None) -> list[alert_store.Recorded]:
        with self.lock:
            self.view.clear()
            try:
                with store.atomic_write():
                    if store.is_postgres():
                        # SQLite's IMMEDIATE transaction already serialises detectors across server processes
                        store.db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_ID,))
                    self.state.begin()  # under the lock: keeps the cached state if nobody else wrote since
                    self._refresh_thresholds()
                    if prefetch is not None:
                        prefetch()
                    findings = run()
                    self.state.flush()
                    recorded = alert_store.record_findings(
                        findings, self.now_ms(), self.engine.thresholds.alert_dedup_s * 1000,
                        self.config.channels())
            except BaseException:
                self.state.clear_cache()  # rolled back: the cache may hold what the database does not
                raise
            finally:
                self.view.clear()
            # still under the lock: two batches of one double spend must not both try to hold the card
            self._hold_cards(recorded)
        for item in recorded:
            if item.created:
                log.warning("alert raised", extra={"fields": {
                    "alert": item.alert_id, "rule": item.finding.rule, "severity": item.finding.severity.value}})
        if any(r.created for r in recorded) and self.worker is not None:
            self.worker.wake()
        return recorded

    def _hold_cards(self, recorded: list[alert_store.Recorded]) -> None:
        for card_id in sorted({r.finding.hold_card for r in recorded if r.finding.hold_card}):
            card = store.Card.get_or_none(store.Card.card_id == card_id)
            if card is None or card.status in ("on_hold", "revoked"):
                continue
            try:
                admin.hold_card(card_id, "double_spend", actor="anomaly")
                log.warning("card put on hold", extra={"fields": {"card": card_id, "reason": "double_spend"}})
            except (CardposError, peewee.DatabaseError):
                log.exception("could not put a card on hold", extra={"fields": {"card": card_id}})

    def deliver_pending(self, now_ms: int) -> delivery.DeliveryReport:
        return delivery.deliver_pending(now_ms, self.config)

    def start_worker(self) -> None:
        if self.worker is None or not self.worker.is_alive():
            self.worker = delivery.DeliveryWorker(self.config, self.now_ms, periodic=self._periodic)
            self.worker.start()

    def _periodic(self, now_ms: int) -> None:
        self.check_silent_terminals(now_ms)
        noise.flush(now_ms)  # summaries of unsigned refusals whose window ended with no request after it

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None


_service: AlertService | None = None
_atexit_registered = False


def service() -> AlertService | None:
    """The service ``install`` set up in this process, if any."""
    return _service


def install(ledger_dir: Path, *, start_worker: bool = True) -> AlertService:
    """Create the alert tables and subscribe the detectors to ingest events. Called by ``ledger serve`` and
    ``ledger init`` after the ledger database is open. Installing again replaces the previous service."""
    global _service
    alert_store.create_tables()
    if _service is not None:
        uninstall()
    svc = AlertService(ledger_dir=ledger_dir, config=delivery.load_config(ledger_dir))
    events.subscribe(_observer)
    _service = svc
    if start_worker:
        svc.start_worker()
        global _atexit_registered
        if not _atexit_registered:
            # stop the worker before the interpreter tears down: a daemon thread killed inside a database call
            # can crash a short-lived command (``ledger init`` installs alerts too) on its way out
            atexit.register(uninstall)
            _atexit_registered = True
    return svc


def uninstall() -> None:
    """Unsubscribe and stop the worker (tests; server shutdown)."""
    global _service
    events.unsubscribe(_observer)
    if _service is not None:
        _service.stop()
        noise.flush(_service.now_ms(), everything=True)  # what was counted but not summarized yet
    _service = None


def _observer(event: events.LedgerEvent) -> None:
    if _service is not None:
        _service.observe(event)


def check_silent_terminals(now_ms: int) -> int:
    """Raise alerts for terminals silent longer than ``terminal_silent_s``; returns how many alerts are new.
    The delivery worker calls this every minute; the server may call it on its own timer too."""
    if _service is None:
        return 0
    return sum(1 for r in _service.check_silent_terminals(now_ms) if r.created)


def deliver_pending(now_ms: int) -> delivery.DeliveryReport:
    """Send due notifications once with the installed service's channel settings."""
    if _service is None:
        return delivery.DeliveryReport()
    return _service.deliver_pending(now_ms)
