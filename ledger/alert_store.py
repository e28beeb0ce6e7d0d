"""Alerts, their delivery outbox and the detectors' state, as ledger tables.

An alert is what an admin sees: one row per rule + subject + window, however many findings merged into it
(``count``). New alerts write their outbox rows in the same transaction, so delivery never blocks ingest and
a crash cannot lose a notification. Lifecycle: open → acknowledged → resolved; each step is written to the
ledger's audit log with who and when.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import peewee

from ledger import store
from ledger.anomaly.model import Finding, Severity
from terminal.errors import LedgerError

MAX_EVIDENCE = 50
"""Evidence ids kept per alert (the first and the latest); ``count`` keeps counting beyond them."""


class AlertStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Alert(store.BaseModel):
    id = peewee.BigAutoField()
    rule = peewee.CharField(max_length=40, index=True)
    severity = peewee.CharField(max_length=10, index=True)
    subject_type = peewee.CharField(max_length=10)
    subject_id = peewee.CharField(max_length=80)
    terminal_id = peewee.CharField(max_length=40, null=True, index=True)
    dedup_window = peewee.CharField(max_length=120, null=True)  # e.g. a cashier shift
    summary = peewee.TextField()
    evidence = store.JSONField(default=list)
    count = peewee.BigIntegerField(default=1)
    first_seen_ms = peewee.BigIntegerField()
    last_seen_ms = peewee.BigIntegerField(index=True)
    created_ms = peewee.BigIntegerField()
    status = peewee.CharField(max_length=14, index=True, default=AlertStatus.OPEN.value)
    acked_by = peewee.TextField(null=True)
    acked_ms = peewee.BigIntegerField(null=True)
    resolved_by = peewee.TextField(null=True)
    resolved_ms = peewee.BigIntegerField(null=True)
    note = peewee.TextField(default="")

    class Meta:
        indexes = ((("rule", "subject_type", "subject_id"), False),)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "rule": self.rule, "severity": self.severity, "subject_type": self.subject_type,
            "subject_id": self.subject_id, "terminal_id": self.terminal_id, "window": self.dedup_window,
            "summary": self.summary, "evidence": list(self.evidence or []), "count": self.count,
            "first_seen_ms": self.first_seen_ms, "last_seen_ms": self.last_seen_ms, "created_ms": self.created_ms,
            "status": self.status, "acked_by": self.acked_by, "acked_ms": self.acked_ms,
            "resolved_by": self.resolved_by, "resolved_ms": self.resolved_ms, "note": self.note,
        }


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"  # gave up after the channel's max attempts


class AlertOutbox(store.BaseModel):
    """One notification of one alert on one channel (``webhook`` or ``email``)."""

    id = peewee.BigAutoField()
    alert_id = peewee.BigIntegerField(index=True)
    channel = peewee.CharField(max_length=16)
    status = peewee.CharField(max_length=10, default=OutboxStatus.PENDING.value)
    attempts = peewee.IntegerField(default=0)
    created_ms = peewee.BigIntegerField()
    next_attempt_ms = peewee.BigIntegerField()
    sent_ms = peewee.BigIntegerField(null=True)
    message_id = peewee.CharField(max_length=64, null=True)  # one mail may carry many rows (digest)
    last_error = peewee.TextField(default="")

    class Meta:
        indexes = ((("channel", "status", "next_attempt_ms"), False),)


class AnomalyState(store.BaseModel):
    """The detectors' small per-subject memory (``ledger.anomaly.state``), one JSON document per key."""

    key = peewee.CharField(primary_key=True, max_length=200)
    value = store.JSONField()


MODELS: list[type[peewee.Model]] = [Alert, AlertOutbox, AnomalyState]


def register() -> None:
    store.register_models(*MODELS)


def create_tables() -> None:
    register()
    store.db.create_tables(MODELS, safe=True)


class DbState:
    """A ``StateStore`` over ``AnomalyState``: reads through a cache, writes on ``flush()`` (same transaction).

    Plain parameterised SQL rather than the query builder: detection reads a handful of keys for every entry,
    and building peewee queries cost more than running them.
    """

    def __init__(self) -> None:
        self._cache: dict[str, dict[str, Any] | None] = {}
        self._dirty: set[str] = set()

    @staticmethod
    def _sql(text: str) -> str:
        return text.replace("{t}", f'"{AnomalyState._meta.table_name}"').replace("?", store.db.param)

    def get(self, key: str) -> dict[str, Any] | None:
        if key not in self._cache:
            row = store.db.execute_sql(self._sql('SELECT "value" FROM {t} WHERE "key" = ?'), (key,)).fetchone()
            self._cache[key] = json.loads(row[0]) if row else None
        return self._cache[key]

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._cache[key] = value
        self._dirty.add(key)

    def delete(self, key: str) -> None:
        self._cache[key] = None
        self._dirty.add(key)

    def scan(self, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
        # a key range on the primary key (an index scan), not LIKE: prefix <= key < prefix-with-last-char+1
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        rows = store.db.execute_sql(self._sql('SELECT "key" FROM {t} WHERE "key" >= ? AND "key" < ?'),
                                    (prefix, upper)).fetchall()
        keys = {row[0] for row in rows} | {k for k in self._cache if k.startswith(prefix)}
        for key in sorted(keys):
            value = self.get(key)
            if value is not None:
                yield key, value

    def flush(self) -> None:
        dirty = sorted(self._dirty)
        gone = [k for k in dirty if self._cache[k] is None]
        kept = [(k, json.dumps(self._cache[k], sort_keys=True, separators=(",", ":"))) for k in dirty
                if self._cache[k] is not None]
        for start in range(0, len(gone), 400):
            chunk = gone[start:start + 400]
            store.db.execute_sql(self._sql(f'DELETE FROM {{t}} WHERE "key" IN ({", ".join("?" * len(chunk))})'),
                                 chunk)
        for start in range(0, len(kept), 400):
            pairs = kept[start:start + 400]
            values = ", ".join("(?, ?)" for _ in pairs)
            store.db.execute_sql(
                self._sql(f'INSERT INTO {{t}} ("key", "value") VALUES {values} '
                          'ON CONFLICT ("key") DO UPDATE SET "value" = excluded."value"'),
                [item for pair in pairs for item in pair])
        self._dirty.clear()

    def clear_cache(self) -> None:
        """Forget cached reads (another process may have written); unflushed writes are dropped too."""
        self._cache.clear()
        self._dirty.clear()


@dataclass(frozen=True, slots=True)
class Channel:
    """A delivery channel as the alert store sees it: where to queue, and from which severity."""

    name: str
    min_severity: Severity


@dataclass(slots=True)
class _Group:
    finding: Finding
    count: int
    first_ms: int
    last_ms: int
    evidence: list[str]
    severity: Severity


def _group(findings: Iterable[Finding]) -> list[_Group]:
    """Merge a call's findings by rule + subject + window first, so a burst costs one row update."""
    groups: dict[tuple[str, str, str, str | None], _Group] = {}
    for f in findings:
        key = (f.rule, f.subject_type.value, f.subject_id, f.window)
        g = groups.get(key)
        if g is None:
            groups[key] = _Group(f, f.count, f.first_ms, f.at_ms, list(f.evidence), f.severity)
        else:
            g.count += f.count
            g.first_ms = min(g.first_ms, f.first_ms)
            g.last_ms = max(g.last_ms, f.at_ms)
            g.evidence = _cap(g.evidence + list(f.evidence))
            if f.severity.rank > g.severity.rank:
                g.severity = f.severity
    return list(groups.values())


def _cap(evidence: list[str]) -> list[str]:
    unique = list(dict.fromkeys(evidence))
    if len(unique) <= MAX_EVIDENCE:
        return unique
    half = MAX_EVIDENCE // 2
    return unique[:half] + unique[-half:]


@dataclass(frozen=True, slots=True)
class Recorded:
    alert_id: int
    created: bool
    finding: Finding


def record_findings(findings: Sequence[Finding], now_ms: int, dedup_ms: int,
                    channels: Sequence[Channel] = ()) -> list[Recorded]:
    """Merge findings into alerts (call inside a transaction); queue new alerts on ``channels``."""
    out: list[Recorded] = []
    for g in _group(findings):
        f = g.finding
        query = Alert.select().where(
            (Alert.rule == f.rule) & (Alert.subject_type == f.subject_type.value)
            & (Alert.subject_id == f.subject_id) & (Alert.status != AlertStatus.RESOLVED.value))
        if f.window is not None:
            query = query.where(Alert.dedup_window == f.window)
        else:
            query = query.where((Alert.last_seen_ms >= g.first_ms - dedup_ms)
                                & (Alert.first_seen_ms <= g.last_ms + dedup_ms))
        existing = query.order_by(Alert.last_seen_ms.desc()).first()
        if existing is not None:
            existing.count += g.count
            existing.first_seen_ms = min(existing.first_seen_ms, g.first_ms)
            existing.last_seen_ms = max(existing.last_seen_ms, g.last_ms)
            existing.evidence = _cap(list(existing.evidence or []) + g.evidence)
            before = Severity(existing.severity)
            if g.severity.rank > before.rank:
                existing.severity = g.severity.value
                # an escalation reaches channels the alert was too mild for until now
                for channel in channels:
                    if before.rank < channel.min_severity.rank <= g.severity.rank:
                        AlertOutbox.create(alert_id=existing.id, channel=channel.name, created_ms=now_ms,
                                           next_attempt_ms=now_ms)
            existing.save()
            out.append(Recorded(existing.id, False, f))
            continue
        alert = Alert.create(
            rule=f.rule, severity=g.severity.value, subject_type=f.subject_type.value, subject_id=f.subject_id,
            terminal_id=f.terminal_id, dedup_window=f.window, summary=f.summary, evidence=_cap(g.evidence),
            count=g.count, first_seen_ms=g.first_ms, last_seen_ms=g.last_ms, created_ms=now_ms)
        for channel in channels:
            if g.severity.rank >= channel.min_severity.rank:
                AlertOutbox.create(alert_id=alert.id, channel=channel.name, created_ms=now_ms,
                                   next_attempt_ms=now_ms)
        out.append(Recorded(alert.id, True, f))
    return out


# -- queries and lifecycle -----------------------------------------------------------------------------------

def get_alert(alert_id: int) -> Alert:
    alert = Alert.get_or_none(Alert.id == alert_id)
    if alert is None:
        raise LedgerError(f"there is no alert {alert_id}")
    return alert


def list_alerts(*, severity: str | None = None, rule: str | None = None, terminal: str | None = None,
                since_ms: int | None = None, status: str | None = None, limit: int = 1000) -> list[Alert]:
    query = Alert.select()
    if severity:
        query = query.where(Alert.severity == Severity(severity).value)
    if rule:
        query = query.where(Alert.rule == rule)
    if terminal:
        query = query.where(Alert.terminal_id == terminal)
    if since_ms is not None:
        query = query.where(Alert.last_seen_ms >= since_ms)
    if status:
        query = query.where(Alert.status == AlertStatus(status).value)
    return list(query.order_by(Alert.last_seen_ms.desc(), Alert.id.desc()).limit(limit))


def _audit(at_ms: int, actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
    # The ledger's append-only audit log (ledger.store.AuditLog), the same one admin actions go to.
    store.AuditLog.create(at_ms=at_ms, actor=actor, action=action, subject=subject, details=details)


def acknowledge(alert_id: int, by: str, now_ms: int) -> Alert:
    if not by.strip():
        raise LedgerError("say who acknowledges the alert (--by NAME)")
    with store.atomic_write():
        alert = get_alert(alert_id)
        if alert.status != AlertStatus.OPEN.value:
            raise LedgerError(f"alert {alert_id} is {alert.status}; only an open alert can be acknowledged")
        alert.status, alert.acked_by, alert.acked_ms = AlertStatus.ACKNOWLEDGED.value, by, now_ms
        alert.save()
        _audit(now_ms, by, "alert_acknowledge", f"alert:{alert_id}", {"rule": alert.rule})
    return alert


def resolve(alert_id: int, by: str, now_ms: int, note: str = "") -> Alert:
    if not by.strip():
        raise LedgerError("say who resolves the alert (--by NAME)")
    with store.atomic_write():
        alert = get_alert(alert_id)
        if alert.status == AlertStatus.RESOLVED.value:
            raise LedgerError(f"alert {alert_id} is already resolved")
        alert.status, alert.resolved_by, alert.resolved_ms = AlertStatus.RESOLVED.value, by, now_ms
        alert.note = note
        alert.save()
        _audit(now_ms, by, "alert_resolve", f"alert:{alert_id}", {"rule": alert.rule, "note": note})
    return alert
