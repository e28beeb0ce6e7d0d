"""A cashier's shift: its opening and closing entries and the Z-report of what happened in between."""

from __future__ import annotations

from cardkit.journal import EntryKind, JournalEntry
from terminal.service.desk import Desk
from terminal.service.zreport import ZReport, build_z_report


def z_report(desk: Desk, since_ms: int, until_ms: int | None = None) -> ZReport:
    """Counts and totals of the entries stamped from ``since_ms`` to ``until_ms`` (default: a second from now)."""
    journal = desk.store.journal
    return build_z_report(
        journal.iter_entries(), terminal_id=desk.terminal_id, currency=desk.rules.currency,
        since_ms=since_ms, until_ms=until_ms if until_ms is not None else desk.clock() * 1000 + 1000,
        synced_seq=journal.synced_seq, unsynced_total=journal.queue_depth, original=journal.get,
    )


def open_shift(desk: Desk, shift_id: str, *, cashier_id: str | None = None) -> JournalEntry:
    with desk.operation_lock.hold():
        return desk.store.journal.append(EntryKind.SHIFT_OPEN, {"shift": shift_id}, cashier_id)


def close_shift(desk: Desk, shift_id: str, since_ms: int, *, cashier_id: str | None = None) -> ZReport:
    """Journal the shift's Z-report totals as ``shift_close`` and return the report."""
    report = z_report(desk, since_ms)
    with desk.operation_lock.hold():
        desk.store.journal.append(EntryKind.SHIFT_CLOSE, {"shift": shift_id, "totals": report.to_dict()},
                                  cashier_id)
    return report
