"""Alerts: a filtered list (new ones appear without reload: ``static/console.js`` polls the feed), one alert
with its evidence and the entries behind it, acknowledge and resolve with a note."""

from __future__ import annotations

import json
from typing import Any

import peewee
from fastapi.responses import Response

from ledger import admin, alert_store, store
from ledger.anomaly.model import Severity
from ledger.console import entries, fmt
from ledger.console.scope import Scope, scope_of
from ledger.console.web import NotFound, Page
from ledger.merchants.models import Store

STATUSES = [s.value for s in alert_store.AlertStatus]
SEVERITIES = [s.value for s in Severity]
FEED_LIMIT = 50


def _alert_id(page: Page) -> int:
    text = page.param("alert_id")
    if not text.isdigit() or len(text) > 18:
        raise NotFound(f"there is no alert {text!r}")
    return int(text)


def _filters(page: Page) -> dict[str, str]:
    return {"status": page.query("status") if page.query("status") in STATUSES else "",
            "severity": page.query("severity") if page.query("severity") in SEVERITIES else "",
            "rule": page.query("rule")[:40], "terminal": page.query("terminal")[:40]}


def _in_scope(scope: Scope) -> Any:
    """Alerts a merchant manager sees: those raised on their terminals or about one of their stores or terminals."""
    A = alert_store.Alert
    if scope.whole_program:
        return peewee.SQL("1 = 1")
    clause = scope.terminal_filter(A.terminal_id)
    if scope.store_ids:
        clause = clause | ((A.subject_type == "store") & A.subject_id.in_(sorted(scope.store_ids)))
    if scope.terminal_ids:
        clause = clause | ((A.subject_type == "terminal") & A.subject_id.in_(sorted(scope.terminal_ids)))
    return clause


def _foreign_ids(scope: Scope) -> list[str]:
    """Store and terminal ids of other merchants (and of stores no merchant owns): what a merchant manager's alert
    texts must not name. Longest first, so no id is half-replaced inside a longer one."""
    if scope.whole_program:
        return []
    stores: Any = Store.select(Store.store_id).tuples()
    terminals: Any = store.Terminal.select(store.Terminal.terminal_id, store.Terminal.store_id).tuples()
    ids = {str(s) for (s,) in stores} | {str(sid) for _, sid in terminals}
    ids |= {str(tid) for tid, _ in terminals}
    return sorted((i for i in ids if i and not scope.sees_store(i) and not scope.sees_terminal(i)), key=len,
                  reverse=True)


def redact(text: str, foreign: list[str]) -> str:
    """``text`` with every id in ``foreign`` replaced (an alert on a manager's own till may name the other store
    where the same card was used: that sale is another merchant's)."""
    for item in foreign:
        text = text.replace(item, "[another merchant]")
    return text


def alerts(page: Page) -> Response:
    chosen = _filters(page)
    scope = scope_of(page)
    rows = alert_store.list_alerts(severity=chosen["severity"] or None, rule=chosen["rule"] or None,
                                   terminal=chosen["terminal"] or None, status=chosen["status"] or None, limit=200,
                                   where=None if scope.whole_program else _in_scope(scope))
    foreign = _foreign_ids(scope)
    for row in rows:
        row.summary = redact(str(row.summary), foreign)  # shown, never saved
    latest = max((int(a.id) for a in rows), default=0)
    A = alert_store.Alert
    top = A.select(A.id).where(_in_scope(scope)).order_by(A.id.desc()).first()
    rule_rows: Any = A.select(A.rule).where(_in_scope(scope)).distinct().order_by(A.rule).tuples()
    rules = [str(row[0]) for row in rule_rows]
    return page.render("alerts.html", alerts=rows, chosen=chosen, statuses=STATUSES, severities=SEVERITIES,
                       rules=rules, latest=max(latest, int(top.id) if top else 0),
                       filtered=any(chosen.values()))


def alerts_feed(page: Page) -> Response:
    """Alerts newer than ``after`` (JSON for the polling script); text already in the page's language."""
    after = page.query("after")
    after_id = int(after) if after.isdigit() and len(after) < 19 else 0
    A = alert_store.Alert
    scope = scope_of(page)
    rows = list(A.select().where((A.id > after_id) & _in_scope(scope)).order_by(A.id).limit(FEED_LIMIT))
    t = page.t
    zone = page.console.settings.time_zone
    foreign = _foreign_ids(scope)
    items = [{"id": int(a.id), "severity": a.severity, "severity_text": t(f"severity.{a.severity}"),
              "rule": a.rule, "summary": redact(str(a.summary), foreign),
              "status": a.status, "status_text": t(f"alert.status.{a.status}"),
              "count": int(a.count), "last_seen": fmt.when(int(a.last_seen_ms), zone), "url": f"/alerts/{int(a.id)}"}
             for a in rows]
    body = {"alerts": items, "latest": max([after_id, *(int(a.id) for a in rows)]),
            "open": A.select().where((A.status == alert_store.AlertStatus.OPEN.value) & _in_scope(scope)).count()}
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/json")


def alert(page: Page) -> Response:
    alert_id = _alert_id(page)
    row = alert_store.Alert.get_or_none((alert_store.Alert.id == alert_id) & _in_scope(scope_of(page)))
    if row is None:  # another merchant's alert is, to a merchant manager, no alert at all
        raise NotFound(f"there is no alert {alert_id}")
    scope = scope_of(page)
    found, other = entries.evidence_entries(list(row.evidence or []))
    if not scope.whole_program:  # evidence from other merchants' tills: their sales, not shown
        found = [e for e in found if scope.sees_terminal(str(e["terminal_id"]))]
        other = [o for o in other if scope.sees_terminal(o.split(":")[0])]
        row.summary = redact(str(row.summary), _foreign_ids(scope))
    history = list(reversed(_alert_history(alert_id)))
    return page.render("alert.html", alert=row, evidence=found, other_evidence=other, history=history,
                       summary=entries.summary)


def _alert_history(alert_id: int) -> list[dict[str, object]]:
    A = store.AuditLog
    rows = A.select().where(A.subject == f"alert:{alert_id}").order_by(A.id.desc()).limit(50)
    return [{"at_ms": int(r.at_ms), "actor": r.actor, "action": r.action, "details": r.details or {}} for r in rows]


def alert_acknowledge(page: Page) -> Response:
    alert_id = _alert_id(page)
    note = page.field("note", limit=500).strip()
    alert_store.acknowledge(alert_id, page.actor, page.now_ms)
    if note:
        admin.audit_event("alert_note", f"alert:{alert_id}", actor=page.actor, note=note, origin=page.origin)
    return page.redirect(f"/alerts/{alert_id}", message="alert_acknowledged")


def alert_resolve(page: Page) -> Response:
    alert_id = _alert_id(page)
    alert_store.resolve(alert_id, page.actor, page.now_ms, page.field("note", limit=500).strip())
    return page.redirect(f"/alerts/{alert_id}", message="alert_resolved")


HANDLERS = {"alerts": alerts, "alerts_feed": alerts_feed, "alert": alert, "alert_acknowledge": alert_acknowledge,
            "alert_resolve": alert_resolve}
