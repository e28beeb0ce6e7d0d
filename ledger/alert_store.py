"""Alerts, their delivery outbox and the detectors' state, as ledger tables.

An alert is what an admin sees: one row per rule + subject + window, however many findings merged into it
(``count``). New alerts write their outbox rows in the same transaction, so delivery never blocks ingest and
a crash cannot lose a notification. Lifecycle: open → acknowledged → resolved; each step is written to the
ledger's audit log with who and when.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import peewee

from ledger import store
from ledger.anomaly.model import Finding, Severity
from ledger.errors import LedgerError

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


store.bound_text("alert", "summary", 2000)


def create_tables() -> None:
    register()
    store.db.create_tables(MODELS, safe=True)
    store.enforce_lengths(MODELS)


_STATE_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
"""``json.dumps(value, sort_keys=True, separators=(",", ":"))`` without building an encoder per value (a busy
batch writes thousands of states)."""
STAMP_KEY = "~stamp"
"""The ``AnomalyState`` row naming the last flush; no detector key starts with ``~``."""
MAX_CACHED = 50_000
"""Keys kept between detection runs; past this the cache starts over (memory stays bounded on a big fleet)."""


class DbState:
    """A ``StateStore`` over ``AnomalyState``: reads through a cache, writes on ``flush()`` (same transaction).

    The cache outlives a detection run (write-behind): every flush also writes a fresh random stamp, and
    ``begin()`` keeps the cache only while the stored stamp is still the one this process wrote, i.e. no other
    server process (PostgreSQL) has changed the state since. A failed run must call ``clear_cache()``: values
    are handed out live and the detectors change them in place before ``put``.

    Plain parameterised SQL rather than the query builder: detection reads a handful of keys for every entry,
    and building peewee queries cost more than running them.
    """

    def __init__(self) -> None:
        self._cache: dict[str, dict[str, Any] | None] = {}
        self._dirty: set[str] = set()
        self._stamp: str | None = None  # the stamp the cache matches; None: cache not trusted

    def begin(self) -> None:
        """Start a detection run, inside its write transaction and after any detector lock."""
        row = store.db.execute_sql(self._sql('SELECT "value" FROM {t} WHERE "key" = ?'), (STAMP_KEY,)).fetchone()
        stamp = str(json.loads(row[0]).get("s")) if row else None
        if stamp is None or stamp != self._stamp or len(self._cache) > MAX_CACHED:
            self._cache.clear()
        self._stamp = stamp
        self._dirty.clear()

    @staticmethod
    def _sql(text: str) -> str:
        return text.replace("{t}", f'"{AnomalyState._meta.table_name}"').replace("?", store.db.param)

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return self._cache[key]
        except KeyError:
            row = store.db.execute_sql(self._sql('SELECT "value" FROM {t} WHERE "key" = ?'), (key,)).fetchone()
            value = self._cache[key] = json.loads(row[0]) if row else None
            return value

    def prefetch(self, keys: Iterable[str]) -> None:
        """Read ``keys`` not cached yet in a few queries (chunks of 400) instead of one query per key; a key with
        no row is cached as absent, so the detectors' later reads cost no query."""
        wanted = sorted({k for k in keys if k not in self._cache})
        for start in range(0, len(wanted), 400):
            chunk = wanted[start:start + 400]
            rows = store.db.execute_sql(
                self._sql(f'SELECT "key", "value" FROM {{t}} WHERE "key" IN ({", ".join("?" * len(chunk))})'),
                chunk).fetchall()
            found = {row[0]: row[1] for row in rows}
            loads = json.loads
            for key in chunk:
                text = found.get(key)
                self._cache[key] = loads(text) if text is not None else None

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
        # cached keys not written yet are dirty; every other cached key is a row already
        keys = {row[0] for row in rows} | {k for k in self._dirty if k.startswith(prefix)}
        for key in sorted(keys):
            value = self.get(key)
            if value is not None:
                yield key, value

    def flush(self) -> None:
        if not self._dirty:
            return
        # identifies this flush only (not a secret, no effect on detection): other processes see a new stamp
        self._stamp = os.urandom(8).hex()
        self._cache[STAMP_KEY] = {"s": self._stamp}
        self._dirty.add(STAMP_KEY)
        dirty = sorted(self._dirty)
        gone = [k for k in dirty if self._cache[k] is None]
        encode = _STATE_JSON.encode
        cache = self._cache
        kept = [(k, encode(value)) for k in dirty if (value := cache[k]) is not None]
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
        """Forget cached reads and unflushed writes (after a failed run: the cache may hold rolled-back values)."""
        self._cache.clear()
        self._dirty.clear()
        self._stamp = None


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
    members: set[str] | None = None  # ``evidence`` as a set once it went through _cap (unique, ≤ MAX_EVIDENCE)

    def merge_evidence(self, new: Sequence[str]) -> None:
        """``evidence = _cap(evidence + new)``, without rebuilding the list for the common case of one new id (a
        firing burst adds one operation per finding, thousands per batch)."""
        members = self.members
        if members is not None and len(new) == 1:
            item = new[0]
            if item not in members:
                members.add(item)
                self.evidence.append(item)
                if len(self.evidence) > MAX_EVIDENCE:  # exactly one over: _cap keeps the first and the last halves
                    members.discard(self.evidence.pop(MAX_EVIDENCE // 2))
            return
        self.evidence = _cap(self.evidence + list(new))
        self.members = set(self.evidence)


def _group(findings: Iterable[Finding]) -> list[_Group]:
    """Merge a call's findings by rule + subject + window first, so a burst costs one row update."""
    # the subject type itself in the key (a str enum: hashes and compares as its value, without .value's cost)
    groups: dict[tuple[str, str, str, str | None], _Group] = {}
    for f in findings:
        key = (f.rule, f.subject_type, f.subject_id, f.window)
        g = groups.get(key)
        at_ms, since_ms = f.at_ms, f.since_ms
        first_ms = at_ms if since_ms is None or since_ms > at_ms else since_ms  # f.first_ms, inline
        if g is None:
            groups[key] = _Group(f, f.count, first_ms, at_ms, list(f.evidence), f.severity)
            continue
        g.count += f.count
        if first_ms < g.first_ms:
            g.first_ms = first_ms
        if at_ms > g.last_ms:
            g.last_ms = at_ms
        evidence, members = f.evidence, g.members
        if members is not None and len(evidence) == 1:  # g.merge_evidence(evidence), its common case inline
            item = evidence[0]
            if item not in members:
                members.add(item)
                g.evidence.append(item)
                if len(g.evidence) > MAX_EVIDENCE:
                    members.discard(g.evidence.pop(MAX_EVIDENCE // 2))
        else:
            g.merge_evidence(evidence)
        if f.severity is not g.severity and f.severity.rank > g.severity.rank:
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


@dataclass(slots=True)
class _Open:
    """An alert not yet resolved, as ``record_findings`` matches and updates it in memory."""

    id: int
    window: str | None
    severity: str
    evidence_json: str | None
    count: int
    first_ms: int
    last_ms: int
    evidence: list[str] | None = None  # decoded on first match
    dirty: bool = False


_Subject = tuple[str, str, str]  # rule, subject type, subject id


def _load_open(groups: Sequence[_Group], dedup_ms: int) -> dict[_Subject, list[_Open]]:
    """Every unresolved alert any of ``groups`` could merge into, in a few queries (a superset of each group's
    own condition, which ``_match`` then applies exactly)."""
    buckets: dict[tuple[str, str, bool], list[_Group]] = {}
    for g in groups:
        f = g.finding
        buckets.setdefault((f.rule, f.subject_type.value, f.window is not None), []).append(g)
    table = Alert._meta.table_name
    p = store.db.param
    found: dict[_Subject, dict[int, _Open]] = {}
    for (rule, subject_type, windowed), members in buckets.items():
        subjects = sorted({g.finding.subject_id for g in members})
        if windowed:
            extra, extra_args = ' AND "dedup_window" IS NOT NULL', []
        else:
            extra, extra_args = f' AND "last_seen_ms" >= {p}', [min(g.first_ms for g in members) - dedup_ms]
        for start in range(0, len(subjects), 400):
            chunk = subjects[start:start + 400]
            rows = store.db.execute_sql(
                f'SELECT "id", "subject_id", "dedup_window", "severity", "evidence", "count", "first_seen_ms", '
                f'"last_seen_ms" FROM "{table}" WHERE "rule" = {p} AND "subject_type" = {p} AND "subject_id" IN '
                f'({", ".join(p for _ in chunk)}) AND "status" != {p}{extra}',
                [rule, subject_type, *chunk, AlertStatus.RESOLVED.value, *extra_args]).fetchall()
            for row in rows:
                found.setdefault((rule, subject_type, str(row[1])), {})[int(row[0])] = _Open(
                    int(row[0]), row[2], str(row[3]), row[4], int(row[5]), int(row[6]), int(row[7]))
    return {key: list(by_id.values()) for key, by_id in found.items()}


def _match(candidates: list[_Open], g: _Group, dedup_ms: int) -> _Open | None:
    """The alert ``g`` merges into: the same window, or (without one) overlapping within ``dedup_ms``; the most
    recently seen one wins."""
    window = g.finding.window
    best: _Open | None = None
    for a in candidates:
        if window is not None:
            if a.window != window:
                continue
        elif not (a.last_ms >= g.first_ms - dedup_ms and a.first_ms <= g.last_ms + dedup_ms):
            continue
        if best is None or a.last_ms > best.last_ms or (a.last_ms == best.last_ms and a.id < best.id):
            best = a
    return best


def _names(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _insert_alert(g: _Group, now_ms: int) -> int:
    f = g.finding
    p = store.db.param
    columns = ("rule", "severity", "subject_type", "subject_id", "terminal_id", "dedup_window", "summary",
               "evidence", "count", "first_seen_ms", "last_seen_ms", "created_ms", "status", "note")
    values = (f.rule, g.severity.value, f.subject_type.value, f.subject_id, f.terminal_id, f.window, f.summary,
              Alert.evidence.db_value(_cap(g.evidence)), g.count, g.first_ms, g.last_ms, now_ms,
              AlertStatus.OPEN.value, "")
    row = store.db.execute_sql(
        f'INSERT INTO "{Alert._meta.table_name}" ({_names(columns)}) '
        f'VALUES ({", ".join(p for _ in columns)}) RETURNING "id"', values).fetchone()
    return int(row[0])


def record_findings(findings: Sequence[Finding], now_ms: int, dedup_ms: int,
                    channels: Sequence[Channel] = ()) -> list[Recorded]:
    """Merge findings into alerts (call inside a transaction); queue new alerts on ``channels``.

    Reads every alert the findings could merge into up front and writes the changed ones back in one
    statement: a busy batch touches thousands of alerts, and a query per alert dominated ingest."""
    groups = _group(findings)
    if not groups:
        return []
    open_alerts = _load_open(groups, dedup_ms)
    outbox: list[tuple[int, str]] = []
    out: list[Recorded] = []
    for g in groups:
        f = g.finding
        candidates = open_alerts.setdefault((f.rule, f.subject_type.value, f.subject_id), [])
        existing = _match(candidates, g, dedup_ms)
        if existing is not None:
            if existing.evidence is None:
                existing.evidence = list(json.loads(existing.evidence_json) if existing.evidence_json else [])
            existing.count += g.count
            existing.first_ms = min(existing.first_ms, g.first_ms)
            existing.last_ms = max(existing.last_ms, g.last_ms)
            existing.evidence = _cap(existing.evidence + g.evidence)
            before = Severity(existing.severity)
            if g.severity.rank > before.rank:
                existing.severity = g.severity.value
                # an escalation reaches channels the alert was too mild for until now
                outbox += [(existing.id, c.name) for c in channels
                           if before.rank < c.min_severity.rank <= g.severity.rank]
            existing.dirty = True
            out.append(Recorded(existing.id, False, f))
            continue
        alert_id = _insert_alert(g, now_ms)
        candidates.append(_Open(alert_id, f.window, g.severity.value, None, g.count, g.first_ms, g.last_ms,
                                evidence=_cap(g.evidence)))
        outbox += [(alert_id, c.name) for c in channels if g.severity.rank >= c.min_severity.rank]
        out.append(Recorded(alert_id, True, f))
    _write_back([a for alerts in open_alerts.values() for a in alerts if a.dirty])
    _queue(outbox, now_ms)
    return out


def _write_back(changed: list[_Open]) -> None:
    if not changed:
        return
    p = store.db.param
    rows = [(a.severity, Alert.evidence.db_value(a.evidence), a.count, a.first_ms, a.last_ms, a.id)
            for a in sorted(changed, key=lambda a: a.id)]
    store.db.cursor().executemany(
        f'UPDATE "{Alert._meta.table_name}" SET "severity" = {p}, "evidence" = {p}, "count" = {p}, '
        f'"first_seen_ms" = {p}, "last_seen_ms" = {p} WHERE "id" = {p}', rows)


def _queue(outbox: list[tuple[int, str]], now_ms: int) -> None:
    """Outbox rows for (alert id, channel) pairs, in order (delivery goes by row id)."""
    if not outbox:
        return
    p = store.db.param
    columns = ("alert_id", "channel", "status", "attempts", "created_ms", "next_attempt_ms", "last_error")
    rows = [(alert_id, channel, OutboxStatus.PENDING.value, 0, now_ms, now_ms, "") for alert_id, channel in outbox]
    store.db.cursor().executemany(
        f'INSERT INTO "{AlertOutbox._meta.table_name}" ({_names(columns)}) '
        f'VALUES ({", ".join(p for _ in columns)})', rows)


# -- queries and lifecycle -----------------------------------------------------------------------------------

def get_alert(alert_id: int) -> Alert:
    alert = Alert.get_or_none(Alert.id == alert_id)
    if alert is None:
        raise LedgerError(f"there is no alert {alert_id}")
    return alert


def list_alerts(*, severity: str | None = None, rule: str | None = None, terminal: str | None = None,
                since_ms: int | None = None, status: str | None = None, limit: int = 1000,
                where: Any = None) -> list[Alert]:
    """Alerts newest first; ``where``: a further clause (the console's merchant scope)."""
    query = Alert.select() if where is None else Alert.select().where(where)
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
