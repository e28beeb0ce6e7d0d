"""The audit log for auditors and owners: filter by actor, action, member and time; the two questions asked
most ("who looked at member X", "what did admin Y look at") are the same filter on the read actions."""

from __future__ import annotations

from fastapi.responses import Response

from ledger.console import auditq, fmt
from ledger.console.web import Page


def audit(page: Page) -> Response:
    zone = page.console.settings.time_zone
    since = fmt.parse_local_date(page.query("since"), zone) if page.query("since") else None
    until = fmt.parse_local_date(page.query("until"), zone) if page.query("until") else None
    before = page.query("before")
    chosen = auditq.AuditFilter(
        actor=page.query("actor").strip(), action=page.query("action").strip(), member=page.query("member").strip(),
        since_ms=since, until_ms=until + 86_400_000 if until is not None else None,
        reads_only=page.query("reads") == "1", before_id=int(before) if before.isdigit() and len(before) < 19 else None)
    rows = auditq.search(chosen)
    older = rows[-1]["id"] if len(rows) == auditq.PAGE else None
    params = {k: page.query(k) for k in ("actor", "action", "member", "since", "until", "reads") if page.query(k)}
    return page.render("audit.html", rows=rows, chosen=chosen, actions=auditq.actions(), params=params,
                       older=older, since=page.query("since"), until=page.query("until"),
                       read_actions=auditq.READ_ACTIONS)


HANDLERS = {"audit": audit}
