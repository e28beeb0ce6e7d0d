"""What the counter hands to the cashier's screen and to scripts: tap results, member views, history lines.

Plain frozen values built from the member cache and the journal; no database handle escapes through them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cardkit.cards.verdict import CardClaims, Verdict
from cardkit.core.members import Coupon, Tier
from cardkit.core.money import Money
from cardkit.core.state import MemberState
from cardkit.journal import EntryKind, JournalEntry


@dataclass(frozen=True, slots=True)
class OperationView:
    """One line of a member's recent history."""

    uuid: str
    seq: int
    kind: str
    wall_ms: int
    summary: str
    synced: bool
    cashier_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "seq": self.seq, "kind": self.kind, "wall_ms": self.wall_ms,
                "summary": self.summary, "synced": self.synced, "cashier": self.cashier_id}

    @property
    def when(self) -> str:
        return datetime.fromtimestamp(self.wall_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True, slots=True)
class MemberView:
    """The best current picture of a member: the ledger's last snapshot plus this terminal's unsynced entries."""

    member_id: str
    card_id: str
    name: str
    state: MemberState
    coupons: tuple[Coupon, ...]
    """Coupons usable now: held, unused and inside their validity window."""
    prefs: Mapping[str, Any]
    notes: str
    recent: tuple[OperationView, ...]
    offline_estimate: bool
    """True when the figures include operations the ledger has not confirmed, or no snapshot was ever received."""
    known: bool
    """False when the ledger has not sent this member to this terminal yet (figures start from zero)."""
    upgrade_due: Tier | None = None
    phone: str = ""
    email: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tier(self) -> Tier:
        return self.state.tier

    @property
    def balance(self) -> Money:
        return Money(self.state.balance, self.state.currency)

    @property
    def points(self) -> int:
        return self.state.points

    @property
    def yearly_spend(self) -> Money:
        return Money(self.state.yearly_spend, self.state.currency)

    def to_dict(self) -> dict[str, Any]:
        return {
            "member": self.member_id, "card": self.card_id, "name": self.name, "tier": self.tier.value,
            "currency": self.state.currency, "balance": self.balance.to_decimal_string(),
            "balance_minor": self.state.balance, "points": self.points,
            "yearly_spend": self.yearly_spend.to_decimal_string(),
            "coupons": [coupon_to_dict(c) for c in self.coupons], "prefs": dict(self.prefs), "notes": self.notes,
            "recent": [op.to_dict() for op in self.recent], "offline_estimate": self.offline_estimate,
            "known": self.known, "upgrade_due": self.upgrade_due.value if self.upgrade_due else None,
        }


@dataclass(frozen=True, slots=True)
class TapResult:
    """A card tap's outcome. ``member`` is set only for an accepted card; a reject was journaled already."""

    verdict: Verdict
    member: MemberView | None
    reject_entry: JournalEntry | None = None

    @property
    def accepted(self) -> bool:
        return self.verdict.accepted

    @property
    def claims(self) -> CardClaims:
        """The verified claims of an accepted card (raises for a reject: never act on a rejected card)."""
        if not self.verdict.accepted or self.verdict.claims is None:
            raise ValueError("a rejected card has no verified claims")
        return self.verdict.claims


def coupon_to_dict(coupon: Coupon) -> dict[str, Any]:
    """A coupon as screens and scripts show it: amounts as decimal strings (``cardkit.pulldocs`` has the wire form)."""
    return {
        "coupon_id": coupon.coupon_id,
        "amount_off": coupon.amount_off.to_decimal_string() if coupon.amount_off else None,
        "percent_off_bp": coupon.percent_off_bp,
        "min_spend": coupon.min_spend.to_decimal_string() if coupon.min_spend else None,
        "valid_from": coupon.valid_from, "valid_until": coupon.valid_until, "stackable": coupon.stackable,
    }


def summarize(kind: str, payload: Mapping[str, Any]) -> str:
    """A short human line for one journal entry (history screens, ``cardpos terminal op history``)."""
    cur = str(payload.get("cur", "CNY"))

    def money(key: str) -> str:
        value = payload.get(key)
        return str(Money(int(value), cur)) if isinstance(value, int) else "?"

    if kind == EntryKind.SALE:
        parts = [f"sale {money('net')} by {payload.get('tender')}"]
        if payload.get("pts_redeem"):
            parts.append(f"{payload['pts_redeem']} pts used")
        parts.append(f"+{payload.get('pts_earn', 0)} pts")
        if payload.get("coupons"):
            parts.append("coupons " + ",".join(map(str, payload["coupons"])))
        return ", ".join(parts)
    if kind == EntryKind.TOPUP:
        return f"top-up {money('amount')} + bonus {money('bonus')} by {payload.get('tender')}"
    if kind == EntryKind.REFUND:
        return (f"refund {money('amount')} of {str(payload.get('orig', ''))[:8]}, "
                f"+{payload.get('pts_back', 0)}/-{payload.get('pts_rev', 0)} pts")
    if kind == EntryKind.VOID:
        return f"void of {str(payload.get('orig', ''))[:8]}, stored value {money('sv')}"
    if kind == EntryKind.REDEEM:
        return f"redeemed {payload.get('pts')} pts for {payload.get('item')}"
    if kind == EntryKind.TIER_UPGRADE:
        return f"tier {payload.get('from')} -> {payload.get('to')}"
    if kind == EntryKind.MEMBERSHIP_FEE:
        return f"membership fee {money('amount')} for {payload.get('tier')} by {payload.get('tender')}"
    if kind == EntryKind.MEMBER_UPDATE:
        return "member details updated"
    if kind == EntryKind.CARD_REJECT:
        return f"card rejected: {payload.get('reason')}"
    return kind.replace("_", " ")
