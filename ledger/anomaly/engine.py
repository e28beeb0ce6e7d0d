"""Routes ledger events to the detectors and collects their findings."""

from __future__ import annotations

from ledger.anomaly import cards, cashiers, terminals
from ledger.anomaly.batch import CARD_REJECT, CASHIER_KINDS, SALE, VOID, BatchPlan, plan_batch
from ledger.anomaly.context import Context, LedgerView, NullLedgerView
from ledger.anomaly.model import Finding, op_id
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
            return self.on_batch(plan_batch(event))
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
        database-backed store can fetch them in one query (for a batch: ``BatchPlan.state_keys``)."""
        if isinstance(event, TerminalSeen):
            return {f"term:{event.terminal_id}"}
        if isinstance(event, BatchRejected):
            return {f"term:{event.terminal_id}"} if event.terminal_id else set()
        if isinstance(event, BatchApplied):
            return plan_batch(event).state_keys()
        return set()

    def on_batch(self, plan: BatchPlan) -> list[Finding]:
        """Findings of one applied batch (``plan_batch(event)``), in the order the detectors always gave them:
        the chain and quarantine first, then per entry in batch order (forged taps, blocked card, challenge, or
        blocked use, clone, velocity; unusual amount; coupons; cashier), double spends last."""
        ctx = self.ctx
        event = plan.event
        store_id = event.store_id
        terminals.seen(ctx, event.terminal_id, store_id, event.received_ms)
        out = terminals.applied_batch(ctx, event.terminal_id, event.entries, event.received_ms)  # the whole chain
        if event.quarantined:
            out += terminals.quarantined(event.terminal_id, event.quarantined, event.received_ms)
        # per card and per member at once, filed under each entry's position; every detector family keeps its
        # own state keys, so only the order of the findings needs restoring
        found: cards.FoundAt = {}
        for card, uses in plan.uses.items():
            cards.card_uses(ctx, card, uses, store_id, found)
        for member, sales in plan.sales.items():
            cards.unusual_amounts(ctx, member, sales, found)
        in_turn = set(plan.in_turn)
        for pos in sorted(found.keys() | in_turn) if in_turn else sorted(found):
            if pos not in in_turn:
                out += found[pos]
                continue
            entry = plan.entries[pos]
            kind = entry.kind
            if kind == CARD_REJECT:
                out += cards.card_reject(ctx, entry, store_id, op_id(entry))
            else:
                if pos in found:
                    out += found[pos]
                if kind == SALE:
                    coupons = entry.payload.get("coupons")
                    if coupons:
                        out += cards.coupon_reuse(ctx, entry, coupons, op_id(entry))
                elif kind == VOID:
                    cards.coupons_back(ctx, entry)
            if kind in CASHIER_KINDS or entry.payload.get("manual") is True:
                out += cashiers.cashier_abuse(ctx, entry)
        out += cards.double_spend(ctx, plan.spends)
        return out

    def check_silent_terminals(self, now_ms: int) -> list[Finding]:
        return terminals.silent_terminals(self.ctx, now_ms)
