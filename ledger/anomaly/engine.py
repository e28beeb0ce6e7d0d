"""Routes ledger events to the detectors and collects their findings."""

from __future__ import annotations

from ledger.anomaly import cards, cashiers, terminals
from ledger.anomaly.context import Context, LedgerView, NullLedgerView
from ledger.anomaly.model import Finding
from ledger.anomaly.state import StateStore
from ledger.anomaly.thresholds import Thresholds
from ledger.events import BatchApplied, BatchRejected, LedgerEvent, TerminalSeen

__all__ = ["AnomalyEngine", "LedgerView", "NullLedgerView"]


class AnomalyEngine:
    """Pure detection: events in, findings out; all memory lives in ``state``."""

    def __init__(self, thresholds: Thresholds, state: StateStore, view: LedgerView | None = None) -> None:
        self.ctx = Context(thresholds=thresholds, state=state, view=view or NullLedgerView())

    @property
    def thresholds(self) -> Thresholds:
        return self.ctx.thresholds

    @thresholds.setter
    def thresholds(self, value: Thresholds) -> None:
        self.ctx.thresholds = value

    def on_event(self, event: LedgerEvent) -> list[Finding]:
        if isinstance(event, BatchApplied):
            return self.on_batch(event)
        if isinstance(event, BatchRejected):
            if event.terminal_id:
                terminals.seen(self.ctx, event.terminal_id, None, event.received_ms)
            return terminals.rejected_batch(self.ctx, event.terminal_id, event.reason, event.detail, event.seqs,
                                            event.received_ms)
        if isinstance(event, TerminalSeen):
            terminals.seen(self.ctx, event.terminal_id, event.store_id, event.received_ms)
            return terminals.clock_report(self.ctx, event.terminal_id, event.terminal_clock_ms, event.received_ms)
        return []

    def on_batch(self, event: BatchApplied) -> list[Finding]:
        ctx = self.ctx
        terminals.seen(ctx, event.terminal_id, event.store_id, event.received_ms)
        out = terminals.applied_batch(ctx, event.terminal_id, event.entries, event.received_ms)
        for entry in event.entries:
            out += cards.forged_taps(ctx, entry, event.store_id)
            out += cards.blocked_card_use(ctx, entry)
            out += cards.cloned_card(ctx, entry, event.store_id)
            out += cards.velocity(ctx, entry)
            out += cards.unusual_amount(ctx, entry)
            out += cashiers.cashier_abuse(ctx, entry)
        out += cards.double_spend(ctx, event.entries)
        return out

    def check_silent_terminals(self, now_ms: int) -> list[Finding]:
        return terminals.silent_terminals(self.ctx, now_ms)
