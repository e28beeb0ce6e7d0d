"""How the screens read the counter's values (member view, history lines) as plain strings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from cardkit.cards.verdict import CardClaims
from cardkit.core.members import Coupon

if TYPE_CHECKING:
    from terminal.i18n import Words
    from terminal.service.views import MemberView, OperationView


@dataclass(frozen=True)
class Tapped:
    """An accepted card: the verified claims (what operations act on) and the member as the counter sees them."""

    claims: CardClaims
    view: MemberView

    @property
    def card_id(self) -> str:
        return self.claims.card_id

    @property
    def name(self) -> str:
        return self.view.name or self.view.member_id

    @property
    def tier(self) -> str:
        return self.view.tier.value


def coupon_text(coupon: Coupon) -> str:
    if coupon.amount_off is not None:
        off = f"-{coupon.amount_off.to_decimal_string()}"
    elif coupon.percent_off_bp is not None:
        whole, frac = divmod(coupon.percent_off_bp, 100)
        off = f"-{whole}%" if not frac else f"-{whole}.{frac:02d}%"
    else:
        off = ""
    spend = f" ≥{coupon.min_spend.to_decimal_string()}" if coupon.min_spend else ""
    return f"{coupon.coupon_id} {off}{spend}".strip()


@dataclass(frozen=True)
class HistoryLine:
    uuid: str
    seq: int
    when: str
    kind: str
    summary: str
    """In the screen's language."""
    synced: bool


def history_line(op: OperationView, tz: tzinfo | None, words: Words) -> HistoryLine:
    when = datetime.fromtimestamp(op.wall_ms / 1000, tz=tz).strftime("%m-%d %H:%M") if op.wall_ms else ""
    summary = words.say(op.phrase) if op.phrase is not None else op.summary
    return HistoryLine(uuid=op.uuid, seq=op.seq, when=when, kind=op.kind, summary=summary, synced=op.synced)
