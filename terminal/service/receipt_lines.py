"""What each operation's receipt says under its header: (label, value) lines in print order.

The receipt's words live here and in ``receipt.py`` (titles and layout), so the operations only choose which lines
a receipt gets. Amounts are printed as decimal strings in the store's currency; a label of ``"-"`` draws a rule.
"""

from __future__ import annotations

import time

from cardkit.core import loyalty
from cardkit.core.money import Money
from cardkit.core.state import MemberState
from cardkit.journal import JournalEntry

Line = tuple[str, str]
RULE: Line = ("-", "")
TENDER_WORDS = {"sv": "stored value", "cash": "cash", "bank_card": "bank card"}
MEMBER_UPDATE_LINES: tuple[Line, ...] = (("Details", "updated"),)


def _amount(minor: int, currency: str) -> str:
    return Money(minor, currency).to_decimal_string()


def figures_after(after: MemberState, currency: str) -> list[Line]:
    """The member's balance and points once the operation is counted."""
    return [("Balance now", _amount(after.balance, currency)), ("Points now", str(after.points))]


def sale_lines(q: loyalty.SaleQuote, currency: str) -> list[Line]:
    lines = [("Gross", q.gross.to_decimal_string())]
    if q.tier_disc.minor:
        lines.append((f"{q.after.tier.value.title()} discount", "-" + q.tier_disc.to_decimal_string()))
    if q.coupon_disc.minor:
        lines.append((f"Coupons {','.join(q.coupons)}", "-" + q.coupon_disc.to_decimal_string()))
    if q.pts_disc.minor:
        lines.append((f"Points ({q.pts_redeem})", "-" + q.pts_disc.to_decimal_string()))
    lines += [RULE, ("TOTAL", f"{q.net.to_decimal_string()} {q.net.currency}"),
              ("Paid by", TENDER_WORDS[q.tender]), ("Points earned", f"+{q.pts_earn}")]
    return lines + figures_after(q.after, currency)


def topup_lines(q: loyalty.TopupQuote, currency: str) -> list[Line]:
    lines = [("Top-up", q.amount.to_decimal_string()), ("Bonus", q.bonus.to_decimal_string()),
             RULE, ("Paid by", TENDER_WORDS[q.tender])]
    return lines + figures_after(q.after, currency)


def refund_lines(q: loyalty.RefundQuote, original: JournalEntry, supervisor_id: str, currency: str) -> list[Line]:
    lines = [("Refund of", original.uuid[:8]), ("Amount", q.amount.to_decimal_string()),
             ("To", TENDER_WORDS.get(q.tender, q.tender)), ("Points back", f"+{q.pts_back}"),
             ("Points reversed", f"-{q.pts_rev}"), ("Still refundable", q.remaining_after.to_decimal_string()),
             ("Supervisor", supervisor_id)]
    return lines + figures_after(q.after, currency)


def void_lines(q: loyalty.VoidQuote, original: JournalEntry, supervisor_id: str, currency: str) -> list[Line]:
    lines = [("Void of", f"{original.kind} {original.uuid[:8]}"),
             ("Stored value", q.sv.to_decimal_string()), ("Points back", f"+{q.pts_back}"),
             ("Points reversed", f"-{q.pts_rev}"), ("Supervisor", supervisor_id)]
    if q.coupons_back:
        lines.append(("Coupons back", ",".join(q.coupons_back)))
    return lines + figures_after(q.after, currency)


def redeem_lines(q: loyalty.RedeemQuote) -> list[Line]:
    return [("Gift", q.item), ("Points used", str(q.points)), ("Points now", str(q.after.points))]


def tier_upgrade_lines(before: MemberState, q: loyalty.Quote, currency: str) -> list[Line]:
    return [("From", before.tier.value), ("To", q.after.tier.value),
            ("Yearly spend", _amount(before.yearly_spend, currency)), ("New card", "requested from the ledger")]


def membership_fee_lines(q: loyalty.FeeQuote, currency: str) -> list[Line]:
    until = time.strftime("%Y-%m-%d", time.gmtime(q.until))
    lines = [("Tier", q.tier.value), ("Fee", q.amount.to_decimal_string()),
             ("Paid by", TENDER_WORDS[q.tender]), ("Valid until", until)]
    return lines + figures_after(q.after, currency)
