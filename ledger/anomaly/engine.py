"""Routes ledger events to the detectors and collects their findings."""

from __future__ import annotations

from cardkit.journal import EntryKind
from ledger.anomaly import cards, cashiers, terminals
from ledger.anomaly.context import Context, LedgerView, NullLedgerView
from ledger.anomaly.model import Finding, op_id
from ledger.anomaly.state import StateStore
from ledger.anomaly.thresholds import Thresholds
from ledger.events import BatchApplied, BatchRejected, LedgerEvent, TerminalSeen, UnauthenticatedRefused

__all__ = ["AnomalyEngine", "LedgerView", "NullLedgerView"]

# plain strings: an entry's kind is a plain string, and comparing two of them is cheaper than a string to an enum
_SALE = EntryKind.SALE.value
_VOID = EntryKind.VOID.value
_CARD_REJECT = EntryKind.CARD_REJECT.value
_CARD_USE_KINDS = frozenset(k.value for k in cards.CARD_USE_KINDS)
_SV_KINDS = frozenset(k.value for k in cards.SV_KINDS)
_CASHIER_KINDS = frozenset(k.value for k in cashiers.CASHIER_KINDS)


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
        # subjects first, keys after: a batch names each of its few hundred cards and members many times over
        used_cards: set[str] = set()
        sale_members: set[str] = set()
        sv_members: set[str] = set()
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
                used_cards.add(card)
            if isinstance(member, str):
                if kind == EntryKind.SALE:
                    sale_members.add(member)
                if kind in cards.SV_KINDS:
                    sv_members.add(member)
            if kind in (EntryKind.REFUND, EntryKind.VOID):
                keys.add(cashiers.NORM_KEY)
        for card in used_cards:
            keys.update((f"seen:{card}", f"vel_hour:{card}", f"vel_day:{card}"))
        keys.update([f"amounts:{member}" for member in sale_members])
        keys.update([f"spends:{member}" for member in sv_members])
        return keys

    def on_batch(self, event: BatchApplied) -> list[Finding]:
        ctx = self.ctx
        store_id = event.store_id
        terminals.seen(ctx, event.terminal_id, store_id, event.received_ms)
        out = terminals.applied_batch(ctx, event.terminal_id, event.entries, event.received_ms)  # the whole chain
        if event.quarantined:
            out += terminals.quarantined(event.terminal_id, event.quarantined, event.received_ms)
        applied = event.applied_entries  # a quarantined entry had no effect: the card detectors never see it
        # Per-card and per-member detectors run over each subject's entries at once; the rest go entry by entry
        # (``in_turn``: their state is shared across subjects, e.g. a terminal's forged taps or a shift). Every
        # detector family keeps its own state keys, so only the order of findings needs restoring: per entry,
        # in the order the detectors always ran (forged/blocked/challenge or blocked use, clone, velocity,
        # unusual amount, coupons, cashier), entries in batch order.
        uses: dict[str, list[cards.Use]] = {}
        sales: dict[str, list[cards.Use]] = {}
        spends: cards.Spends = {}
        in_turn: list[int] = []
        for pos, entry in enumerate(applied):
            kind = entry.kind
            payload = entry.payload
            ev = op_id(entry)
            if kind == _CARD_REJECT:
                in_turn.append(pos)
            elif kind in _CARD_USE_KINDS:
                card = payload.get("card")
                if isinstance(card, str):
                    uses.setdefault(card, []).append((pos, entry, ev))
                if kind == _SALE:
                    member = payload.get("member")
                    if isinstance(member, str):
                        sales.setdefault(member, []).append((pos, entry, ev))
                    if payload.get("coupons"):
                        in_turn.append(pos)
            elif kind == _VOID:
                in_turn.append(pos)
            if kind in _CASHIER_KINDS or payload.get("manual") is True:
                in_turn.append(pos)
            if kind in _SV_KINDS:
                member = payload.get("member")
                if isinstance(member, str) and cards.sv_change(entry) < 0:
                    spends.setdefault(member, []).append((entry, ev))
        found: cards.FoundAt = {}
        for card, card_uses in uses.items():
            cards.card_uses(ctx, card, card_uses, store_id, found)
        for member, member_sales in sales.items():
            cards.unusual_amounts(ctx, member, member_sales, found)
        for pos in sorted(found.keys() | in_turn):
            entry = applied[pos]
            kind = entry.kind
            if kind == _CARD_REJECT:
                out += cards.card_reject(ctx, entry, store_id, op_id(entry))
            else:
                if pos in found:
                    out += found[pos]
                if kind == _SALE:
                    coupons = entry.payload.get("coupons")
                    if coupons:
                        out += cards.coupon_reuse(ctx, entry, coupons, op_id(entry))
                elif kind == _VOID:
                    cards.coupons_back(ctx, entry)
            if kind in _CASHIER_KINDS or entry.payload.get("manual") is True:
                out += cashiers.cashier_abuse(ctx, entry)
        out += cards.double_spend(ctx, spends)
        return out

    def check_silent_terminals(self, now_ms: int) -> list[Finding]:
        return terminals.silent_terminals(self.ctx, now_ms)
