"""How the screens read the counter's values (member view, history items, quotes, receipts).

Kept in one module so the screens show plain strings and the shape of the counter's dataclasses is known in
one place only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from terminal.core.members import Coupon
from terminal.core.money import Money


@dataclass(frozen=True)
class MemberFacts:
    member_id: str
    card_id: str
    name: str
    tier: str
    balance: Money
    points: int
    coupons: tuple[Coupon, ...]
    notes: str
    prefs: dict[str, str]
    offline: bool
    upgrade_to: str | None


def member_facts(view: Any) -> MemberFacts:
    member = getattr(view, "member", view)
    balance = getattr(view, "balance", None) or getattr(member, "balance", None)
    if not isinstance(balance, Money):
        balance = Money(int(balance or 0), str(getattr(view, "currency", "CNY")))
    tier = getattr(view, "tier", None) or getattr(member, "tier", "")
    upgrade = getattr(view, "upgrade_to", None) or getattr(view, "upgrade_due", None)
    return MemberFacts(
        member_id=str(getattr(view, "member_id", "") or getattr(member, "member_id", "")),
        card_id=str(getattr(view, "card_id", "")),
        name=str(getattr(view, "name", "") or getattr(member, "name", "")),
        tier=str(getattr(tier, "value", tier)),
        balance=balance,
        points=int(getattr(view, "points", None) or getattr(member, "points", 0) or 0),
        coupons=tuple(getattr(view, "coupons", None) or getattr(member, "coupons", ()) or ()),
        notes=str(getattr(view, "notes", None) or getattr(member, "notes", "") or ""),
        prefs=dict(getattr(view, "prefs", None) or getattr(member, "preferences", None) or {}),
        offline=bool(getattr(view, "offline", False) or getattr(view, "estimate", False)),
        upgrade_to=str(getattr(upgrade, "value", upgrade)) if upgrade else None,
    )


def coupon_text(coupon: Coupon) -> str:
    if coupon.amount_off is not None:
        off = f"-{coupon.amount_off.to_decimal_string()}"
    elif coupon.percent_off_bp is not None:
        pct = coupon.percent_off_bp / 100  # display only: never used in arithmetic
        off = f"-{pct:g}%"
    else:
        off = ""
    spend = f" ≥{coupon.min_spend.to_decimal_string()}" if coupon.min_spend else ""
    return f"{coupon.coupon_id} {off}{spend}".strip()


@dataclass(frozen=True)
class HistoryLine:
    uuid: str
    when: str
    kind: str
    amount: str
    points: str
    tender: str


def history_line(item: Any, tz: tzinfo | None) -> HistoryLine:
    payload: dict[str, Any] = dict(getattr(item, "payload", None) or {})
    kind = str(getattr(item, "kind", payload.get("kind", "")))
    wall_ms = int(getattr(item, "wall_ms", 0) or 0)
    when = datetime.fromtimestamp(wall_ms / 1000, tz=tz).strftime("%m-%d %H:%M") if wall_ms else ""
    cur = str(payload.get("cur", "CNY"))
    minor = None
    for key in ("net", "amount", "sv"):
        if isinstance(payload.get(key), int):
            minor = payload[key]
            break
    amount = Money(minor, cur).to_decimal_string() if minor is not None else ""
    pts = int(payload.get("pts_earn", 0) or 0) - int(payload.get("pts_redeem", 0) or 0) - int(
        payload.get("pts", 0) or 0)
    return HistoryLine(
        uuid=str(getattr(item, "uuid", "")), when=when, kind=kind, amount=amount,
        points=f"{pts:+d}" if pts else "", tender=str(payload.get("tender", "")),
    )
