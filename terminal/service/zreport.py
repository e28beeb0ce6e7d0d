"""The Z-report of a shift: counts and totals per operation and tender, points issued and redeemed, and what is
still waiting for the ledger. Built from journal entries alone, so it can be reprinted at any time; said in the
cashier's language and laid out in printer columns when shown or printed (``printed``)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cardkit.core.money import Money
from cardkit.journal import EntryKind, JournalEntry
from terminal.i18n import EN, Words
from terminal.printer.text import Line, layout

WIDTH = 40
"""Columns of the report as shown and saved (a printer lays it out in its own columns)."""


@dataclass
class ZReport:
    terminal_id: str
    currency: str
    since_ms: int
    until_ms: int
    first_seq: int = 0
    last_seq: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    """Entries per kind in the period."""
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    """Minor units per operation and tender, e.g. ``totals[EntryKind.SALE]["sv"]``; voids count the value given
    back."""
    bonus_issued: int = 0
    points_issued: int = 0
    points_redeemed: int = 0
    points_restored: int = 0
    points_reversed: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    offline_ops: int = 0
    unsynced_in_period: int = 0
    unsynced_total: int = 0

    def money(self, minor: int) -> str:
        return Money(minor, self.currency).to_decimal_string()

    def to_dict(self) -> dict[str, Any]:
        return {
            "terminal": self.terminal_id, "currency": self.currency, "since_ms": self.since_ms,
            "until_ms": self.until_ms, "first_seq": self.first_seq, "last_seq": self.last_seq,
            "counts": dict(sorted(self.counts.items())),
            "totals": {k: dict(sorted(v.items())) for k, v in sorted(self.totals.items())},
            "bonus_issued": self.bonus_issued, "points_issued": self.points_issued,
            "points_redeemed": self.points_redeemed, "points_restored": self.points_restored,
            "points_reversed": self.points_reversed, "rejects": dict(sorted(self.rejects.items())),
            "offline_ops": self.offline_ops, "unsynced_in_period": self.unsynced_in_period,
            "unsynced_total": self.unsynced_total,
        }

    def printed(self, words: Words = EN, width: int = WIDTH) -> list[str]:
        """The report in ``words``' language, laid out in ``width`` printer columns: one string per line."""
        def stamp(ms: int) -> str:
            return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")

        lines: list[Line] = [
            words("zreport.title", terminal=self.terminal_id), f"{stamp(self.since_ms)} - {stamp(self.until_ms)} UTC",
            words("zreport.entries", first=self.first_seq, last=self.last_seq) if self.last_seq
            else words("zreport.no_entries"), "",
        ]
        for kind in sorted(self.counts):
            lines.append((words("zreport.kind", kind=kind), str(self.counts[kind])))
            for tender, minor in sorted(self.totals.get(kind, {}).items()):
                lines.append((words("zreport.tender", tender=tender), f"{self.money(minor)} {self.currency}"))
        lines += [
            "",
            (words("zreport.bonus"), f"{self.money(self.bonus_issued)} {self.currency}"),
            (words("zreport.points_issued"), str(self.points_issued)),
            (words("zreport.points_redeemed"), str(self.points_redeemed)),
            (words("zreport.points_restored"), str(self.points_restored)),
            (words("zreport.points_reversed"), str(self.points_reversed)),
        ]
        for reason, n in sorted(self.rejects.items()):
            lines.append((words("zreport.rejects", reason=reason), str(n)))
        lines += [(words("zreport.offline"), str(self.offline_ops)),
                  (words("zreport.unsynced"),
                   words("zreport.unsynced_value", count=self.unsynced_in_period, total=self.unsynced_total))]
        return layout(lines, width)

    def to_text(self, words: Words = EN, width: int = WIDTH) -> str:
        return "\n".join(self.printed(words, width)) + "\n"


def build_z_report(
    entries: Iterable[JournalEntry],
    *,
    terminal_id: str,
    currency: str,
    since_ms: int,
    until_ms: int,
    synced_seq: int,
    unsynced_total: int,
    original: Callable[[str], JournalEntry | None],
) -> ZReport:
    """Summarise the entries stamped in ``[since_ms, until_ms]``; ``original`` finds a void's target."""
    report = ZReport(terminal_id=terminal_id, currency=currency, since_ms=since_ms, until_ms=until_ms,
                     unsynced_total=unsynced_total)
    counts: Tally[str] = Tally()
    rejects: Tally[str] = Tally()

    def add(kind: EntryKind, tender: str, minor: int) -> None:
        per = report.totals.setdefault(str(kind), {})  # plain text keys, as the journal reads them back
        per[tender] = per.get(tender, 0) + minor

    for e in entries:
        if not since_ms <= e.wall_ms <= until_ms:
            continue
        p = e.payload
        report.first_seq = report.first_seq or e.seq
        report.last_seq = e.seq
        counts[e.kind] += 1
        if e.seq > synced_seq:
            report.unsynced_in_period += 1
        if p.get("offline") is True:
            report.offline_ops += 1
        if e.kind == EntryKind.SALE:
            add(EntryKind.SALE, str(p["tender"]), int(p["net"]))
            report.points_issued += int(p["pts_earn"])
            report.points_redeemed += int(p["pts_redeem"])
        elif e.kind == EntryKind.TOPUP:
            add(EntryKind.TOPUP, str(p["tender"]), int(p["amount"]))
            report.bonus_issued += int(p["bonus"])
        elif e.kind == EntryKind.REFUND:
            add(EntryKind.REFUND, str(p["tender"]), int(p["amount"]))
            report.points_restored += int(p["pts_back"])
            report.points_reversed += int(p["pts_rev"])
        elif e.kind == EntryKind.VOID:
            target = original(str(p["orig"]))
            if target is not None and target.kind == EntryKind.SALE:
                add(EntryKind.VOID, str(target.payload["tender"]), int(target.payload["net"]))
            elif target is not None and target.kind == EntryKind.TOPUP:
                add(EntryKind.VOID, f"topup_{target.payload['tender']}", int(target.payload["amount"]))
                report.bonus_issued -= int(target.payload["bonus"])
            report.points_restored += int(p["pts_back"])
            report.points_reversed += int(p["pts_rev"])
        elif e.kind == EntryKind.REDEEM:
            report.points_redeemed += int(p["pts"])
        elif e.kind == EntryKind.MEMBERSHIP_FEE:
            add(EntryKind.MEMBERSHIP_FEE, str(p["tender"]), int(p["amount"]))
        elif e.kind == EntryKind.CARD_REJECT:
            rejects[str(p.get("reason"))] += 1
    report.counts = dict(counts)
    report.rejects = dict(rejects)
    return report
