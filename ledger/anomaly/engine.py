"""Routes ledger events to the detectors and collects their findings."""

from __future__ import annotations

from cardkit.journal import EntryKind
from ledger.anomaly import cards, cashiers, terminals
from ledger.anomaly.context import Context, LedgerView, NullLedgerView
from ledger.anomaly.model import Finding
from ledger.anomaly.state import StateStore
from ledger.anomaly.thresholds import Thresholds
from ledger.events import BatchApplied, BatchRejected, LedgerEvent, TerminalSeen, UnauthenticatedRefused

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
        if isinstance(event, UnauthenticatedRefused):  # nothing about any terminal: the claim proves nothing
            return [terminals.unauthenticated(event.source, event.what, event.reason, event.claimed,
                                              event.received_ms)]
        return []

    @staticmethod
    def state_keys(event: LedgerEvent) -> set[str]:
        """The state keys the detectors will read for ``event`` (those known before running them), so a
        database-backed store can fetch them in one query. Keys that depend on state (a cashier's shift) are
        left out and read when needed."""
        if isinstance(event, TerminalSeen):
            return {f"term:{event.terminal_id}"}
        if isinstance(event, BatchRejected):
            return {f"term:{event.terminal_id}"} if event.terminal_id else set()
        if not isinstance(event, BatchApplied):
            return set()
        tid = event.terminal_id
        keys = {f"term:{tid}", f"chain:{tid}", f"shift:{tid}"}
        for entry in event.entries:
            kind = entry.kind
            payload = entry.payload
            card = payload.get("card")
            member = payload.get("member")
            if kind == EntryKind.CARD_REJECT:
                reason = payload.get("reason")
                if reason in cards.FORGED_REASONS:
                    keys.add(f"forged_t:{tid}")
                    keys.add(f"forged_s:{event.store_id}")
                elif isinstance(card, str) and reason in cards.BLOCKED_REASONS:
                    keys.add(f"blocked:{card}")
                elif isinstance(card, str) and reason == "challenge_failed":
                    keys.add(f"challenge:{card}")
            elif kind in cards.CARD_USE_KINDS and isinstance(card, str):
                keys.update((f"seen:{card}", f"vel_hour:{card}", f"vel_day:{card}"))
            if isinstance(member, str):
                if kind == EntryKind.SALE:
                    keys.add(f"amounts:{member}")
                if kind in cards.SV_KINDS:
                    keys.add(f"spends:{member}")
            if kind in (EntryKind.REFUND, EntryKind.VOID):
                keys.add(cashiers.NORM_KEY)
        return keys

    def on_batch(self, event: BatchApplied) -> list[Finding]:
        ctx = self.ctx
        terminals.seen(ctx, event.terminal_id, event.store_id, event.received_ms)
        out = terminals.applied_batch(ctx, event.terminal_id, event.entries, event.received_ms)  # the whole chain
        if event.quarantined:
            out += terminals.quarantined(event.terminal_id, event.quarantined, event.received_ms)
        applied = event.applied_entries  # a quarantined entry had no effect: the card detectors never see it
        for entry in applied:
            out += cards.forged_taps(ctx, entry, event.store_id)
            out += cards.blocked_card_use(ctx, entry)
            out += cards.cloned_card(ctx, entry, event.store_id)
            out += cards.velocity(ctx, entry)
            out += cards.unusual_amount(ctx, entry)
            out += cards.coupon_reuse(ctx, entry)
            if entry.kind in cashiers.CASHIER_KINDS or entry.payload.get("manual") is True:
                out += cashiers.cashier_abuse(ctx, entry)
        out += cards.double_spend(ctx, applied)
        return out

    def check_silent_terminals(self, now_ms: int) -> list[Finding]:
        return terminals.silent_terminals(self.ctx, now_ms)
