"""What each terminal says about itself on every pull (signed with the pull): its software version and how many
journal entries it still has to send. The console shows them beside the last sync (issue 16), so an admin sees
a terminal running old software or one that is online but behind with its queue."""

from __future__ import annotations

from dataclasses import dataclass

import peewee

from ledger import store

MAX_VERSION_CHARS = 32


class TerminalReport(store.BaseModel):
    terminal_id = peewee.CharField(primary_key=True, max_length=40)
    app_version = peewee.CharField(max_length=MAX_VERSION_CHARS)
    queue_depth = peewee.BigIntegerField()
    reported_ms = peewee.BigIntegerField()


store.register_models(TerminalReport)


@dataclass(frozen=True)
class Report:
    app_version: str
    queue_depth: int
    reported_ms: int


def record(terminal_id: str, app_version: str, queue_depth: int, now_ms: int) -> None:
    """Keep the terminal's latest word (one row per terminal, replaced)."""
    with store.atomic_write():
        TerminalReport.insert(terminal_id=terminal_id, app_version=app_version[:MAX_VERSION_CHARS],
                              queue_depth=queue_depth, reported_ms=now_ms).on_conflict(
            conflict_target=[TerminalReport.terminal_id],
            update={TerminalReport.app_version: app_version[:MAX_VERSION_CHARS],
                    TerminalReport.queue_depth: queue_depth, TerminalReport.reported_ms: now_ms}).execute()


def latest() -> dict[str, Report]:
    """terminal id → its latest report (terminals that never reported are absent)."""
    if not store.db.table_exists(TerminalReport._meta.table_name):
        return {}
    return {str(row.terminal_id): Report(str(row.app_version), int(row.queue_depth), int(row.reported_ms))
            for row in TerminalReport.select()}
