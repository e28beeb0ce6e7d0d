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
from terminal.i18n import EN, Phrase, phrase
from terminal.service.receipt_lines import short_ref


@dataclass(frozen=True, slots=True)
class OperationView:
    """One line of a member's recent history."""

    uuid: str
    seq: int
    kind: str
    wall_ms: int
    summary: str
    """In English, for scripts (``phrase`` says it in any language)."""
    synced: bool
    cashier_id: str | None = None
    phrase: Phrase | None = None
    """The summary in no language yet (``terminal.i18n.Words.say``)."""

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
    pending: bool = False
    """True when the figures include operations the ledger has not confirmed yet (or it never sent the member);
    False: they are the ledger's as of the last sync, whether or not the terminal is online now."""
    phone: str = ""
    email: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    lookup_problem: str = ""
    """Why the ledger could not be asked about a member this terminal was not sent ("" when it was not needed)."""

    @property
    def balance_known(self) -> bool:
        """False on the unknown-balance path: show no balance, points or coupons (never a silent 0.00)."""
        return self.known

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
            "currency": self.state.currency,
            "balance": self.balance.to_decimal_string() if self.known else None,
            "balance_minor": self.state.balance if self.known else None,
            "points": self.points if self.known else None, "balance_known": self.known,
            "yearly_spend": self.yearly_spend.to_decimal_string(),
            "coupons": [coupon_to_dict(c) for c in self.coupons], "prefs": dict(self.prefs), "notes": self.notes,
            "recent": [op.to_dict() for op in self.recent], "offline_estimate": self.offline_estimate,
            "pending": self.pending, "known": self.known,
            "upgrade_due": self.upgrade_due.value if self.upgrade_due else None,
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
    """A short English line for one journal entry (``cardpos terminal op history``, JSON)."""
    return EN.say(summary_phrase(kind, payload))


def summary_phrase(kind: str, payload: Mapping[str, Any]) -> Phrase:
    """A short line for one journal entry (history screens), in no language yet."""
    cur = str(payload.get("cur", "CNY"))

    def money(key: str) -> str:
        value = payload.get(key)
        return str(Money(int(value), cur)) if isinstance(value, int) else "?"

    def get(key: str, default: object = "") -> object:
        return payload.get(key, default)

    ref = short_ref(payload.get("orig", ""))
    if kind == EntryKind.SALE:
        used = phrase("summary.sale_used", points=payload["pts_redeem"]) if payload.get("pts_redeem") else ""
        coupons = (phrase("summary.sale_coupons", ids=", ".join(map(str, payload["coupons"])))
                   if payload.get("coupons") else "")
        return phrase("summary.sale", net=money("net"), tender=get("tender"), used=used, earn=get("pts_earn", 0),
                      coupons=coupons)
    if kind == EntryKind.TOPUP:
        return phrase("summary.topup", amount=money("amount"), bonus=money("bonus"), tender=get("tender"))
    if kind == EntryKind.REFUND:
        return phrase("summary.refund", amount=money("amount"), ref=ref, back=get("pts_back", 0),
                      reversed=get("pts_rev", 0))
    if kind == EntryKind.VOID:
        return phrase("summary.void", ref=ref, sv=money("sv"))
    if kind == EntryKind.REDEEM:
        return phrase("summary.redeem", points=get("pts"), item=get("item"))
    if kind == EntryKind.TIER_UPGRADE:
        return phrase("summary.tier_upgrade", old=get("from"), new=get("to"))
    if kind == EntryKind.MEMBERSHIP_FEE:
        return phrase("summary.membership_fee", amount=money("amount"), tier=get("tier"), tender=get("tender"))
    if kind == EntryKind.MEMBER_UPDATE:
        return phrase("summary.member_update")
    if kind == EntryKind.MEMBER_SIGNUP:
        return phrase("summary.member_signup", member=get("member"))
    if kind == EntryKind.CARD_REJECT:
        return phrase("summary.card_reject", reason=get("reason"))
    return phrase("summary.other", kind=kind)
