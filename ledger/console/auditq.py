"""Reading the audit log for people: filters by actor, action, member and time, newest first, a page at a time
(queries of the console's own over ``ledger.store.AuditLog``; the console's migration indexes actor, action and
subject). "Who looked at member X" and "what did admin Y look at" are the same query on the read actions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import peewee

from ledger import store

READ_ACTIONS = ("member_view", "member_search", "members_pull")
PAGE = 100


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    member: str = ""
    since_ms: int | None = None
    until_ms: int | None = None
    reads_only: bool = False
    before_id: int | None = None


def _like_needle(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(f: AuditFilter, limit: int = PAGE) -> list[dict[str, Any]]:
    A = store.AuditLog
    query = A.select()
    if f.actor:
        query = query.where(A.actor == f.actor)
    if f.action:
        query = query.where(A.action == f.action)
    if f.reads_only:
        query = query.where(A.action.in_(READ_ACTIONS))
    if f.member:
        # the member as the subject, or named in the details (bulk reads list every member id they showed)
        needle = _like_needle(json.dumps(f.member, ensure_ascii=False))
        p = store.db.param
        query = query.where((A.subject == f.member) | peewee.SQL(f'"details" LIKE {p} ESCAPE {p}', (needle, "\\")))
    if f.since_ms is not None:
        query = query.where(A.at_ms >= f.since_ms)
    if f.until_ms is not None:
        query = query.where(A.at_ms < f.until_ms)
    if f.before_id is not None:
        query = query.where(A.id < f.before_id)
    rows = query.order_by(A.id.desc()).limit(limit)
    return [{"id": int(r.id), "at_ms": int(r.at_ms), "actor": r.actor, "action": r.action, "subject": r.subject,
             "details": r.details or {}} for r in rows]


def actions() -> list[str]:
    """The actions the log holds, for the filter's choices."""
    rows = store.db.execute_sql(f'SELECT DISTINCT "action" FROM "{store.AuditLog._meta.table_name}" ORDER BY 1')
    return [str(row[0]) for row in rows.fetchall()]
