"""An applied batch's entries sorted out for the detectors, in one pass: per card, per member, and in turn.

The card and member detectors keep state per card or per member, so they take each subject's entries together
(a busy batch names a few hundred cards thousands of times); the others (forged taps per terminal and store,
coupons, cashier shifts) share state across subjects and take their entries one by one, in batch order. The
same pass knows which state keys and ledger figures the detectors will read, so a database-backed store can
fetch them up front.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cardkit.journal import EntryKind, JournalEntry
from ledger.anomaly import cards, cashiers
from ledger.anomaly.cards import Spends, Use
from ledger.anomaly.model import op_id
from ledger.events import BatchApplied

# plain strings: an entry's kind is a plain string, and comparing two of them is cheaper than a string to an enum
SALE = EntryKind.SALE.value
VOID = EntryKind.VOID.value
CARD_REJECT = EntryKind.CARD_REJECT.value
CARD_USE_KINDS = frozenset(k.value for k in cards.CARD_USE_KINDS)
SV_KINDS = frozenset(k.value for k in cards.SV_KINDS)
CASHIER_KINDS = frozenset(k.value for k in cashiers.CASHIER_KINDS)
NORM_KINDS = frozenset({EntryKind.REFUND.value, EntryKind.VOID.value, EntryKind.SHIFT_CLOSE.value})
"""Entries whose cashier check reads the fleet's refund norm."""


@dataclass(slots=True)
class BatchPlan:
    """What each detector gets from one ``BatchApplied`` (positions index ``entries``)."""

    event: BatchApplied
    entries: list[JournalEntry]
    """The applied entries: a quarantined entry had no effect, and the card detectors never see it."""
    uses: dict[str, list[Use]] = field(default_factory=dict)
    """Card → its sales, top-ups, redeems and fees, in entry order."""
    sales: dict[str, list[Use]] = field(default_factory=dict)
    """Member → their sales, in entry order."""
    spends: Spends = field(default_factory=dict)
    """Member → the entries that took stored value (``cards.sv_change`` below zero)."""
    in_turn: list[int] = field(default_factory=list)
    """Entries for the detectors that go one entry at a time: card rejects, sales with coupons, voids, shift,
    refund and manual-entry entries for the cashier detectors."""

    def state_keys(self) -> set[str]:
        """The state keys the detectors will read (those known before running them). Keys that depend on state
        (a cashier's shift) are left out and read when needed."""
        event = self.event
        tid = event.terminal_id
        keys = {f"term:{tid}", f"chain:{tid}", f"shift:{tid}"}
        for card in self.uses:
            keys.update((f"seen:{card}", f"vel_hour:{card}", f"vel_day:{card}"))
        keys.update([f"amounts:{member}" for member in self.sales])
        keys.update([f"spends:{member}" for member in self.spends])
        for pos in self.in_turn:
            entry = self.entries[pos]
            kind = entry.kind
            payload = entry.payload
            if kind == CARD_REJECT:
                reason = payload.get("reason")
                rejected = payload.get("card")
                if reason in cards.FORGED_REASONS:
                    keys.add(f"forged_t:{tid}")
                    keys.add(f"forged_s:{event.store_id}")
                elif isinstance(rejected, str) and reason in cards.BLOCKED_REASONS:
                    keys.add(f"blocked:{rejected}")
                elif isinstance(rejected, str) and reason == "challenge_failed":
                    keys.add(f"challenge:{rejected}")
            elif kind == SALE:
                keys.update([f"coupon:{coupon}" for coupon in cards.texts(payload.get("coupons"))])
            elif kind in NORM_KINDS:
                keys.add(cashiers.NORM_KEY)
        return keys


def plan_batch(event: BatchApplied) -> BatchPlan:
    """Sort ``event``'s applied entries out for the detectors (pure; one pass)."""
    entries = event.applied_entries
    plan = BatchPlan(event, entries)
    uses, sales, spends, in_turn = plan.uses, plan.sales, plan.spends, plan.in_turn
    for pos, entry in enumerate(entries):
        kind = entry.kind
        payload = entry.payload
        if kind == SALE:  # most of a busy batch: the general path below, unrolled for a sale
            ev = op_id(entry)
            card = payload.get("card")
            if isinstance(card, str):
                uses.setdefault(card, []).append((pos, entry, ev))
            member = payload.get("member")
            if isinstance(member, str):
                sales.setdefault(member, []).append((pos, entry, ev))
                sv = payload.get("sv")
                if type(sv) is int and sv > 0:  # cards.sv_change(entry) < 0
                    spends.setdefault(member, []).append((entry, ev))
            if payload.get("coupons") or payload.get("manual") is True:
                in_turn.append(pos)
            continue
        if kind in CARD_USE_KINDS:
            card = payload.get("card")
            if isinstance(card, str):
                uses.setdefault(card, []).append((pos, entry, op_id(entry)))
        if kind == CARD_REJECT or kind in CASHIER_KINDS or payload.get("manual") is True:  # voids: cashier kinds
            in_turn.append(pos)
        if kind in SV_KINDS:
            member = payload.get("member")
            if isinstance(member, str) and cards.sv_change(entry) < 0:
                spends.setdefault(member, []).append((entry, op_id(entry)))
    return plan

