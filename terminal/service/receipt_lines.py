"""What each operation's receipt says under its header: (label, value) lines in print order, in no language yet.

Labels are ``Phrase``s of the terminal's catalogue (``terminal/i18n``, ``receipt.label.*``); values are amounts,
ids and numbers printed as they are, or ``Phrase``s where they are words (a tender, a tier). The receipt is said in
the cashier's language when it is shown or printed (``Receipt.printed``). A label of ``"-"`` draws a rule.

Every line comes from the journal entry's payload, plus the facts the payload does not hold (the member's figures
after the operation, the tier that gave the discount, ...). An operation passes all of them; a copy reprinted
from the journal later passes what can still be known, and the lines it cannot know are left out.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from cardkit.core.money import Money
from cardkit.core.rules import Gift
from cardkit.core.state import MemberState
from cardkit.journal import EntryKind, JournalEntry
from terminal.i18n import LANGUAGES, Phrase, Text, phrase

Line = tuple[Text, Text]
RULE: Line = ("-", "")


def label(name: str, **params: Any) -> Phrase:
    return phrase(f"receipt.label.{name}", **params)


def _tender(payload: Mapping[str, Any]) -> Phrase:
    return phrase("receipt.value.tender", tender=str(payload.get("tender", "")))


def _tier(value: object) -> Phrase:
    return phrase("receipt.value.tier", tier=str(value))


def _amount(payload: Mapping[str, Any], key: str) -> str:
    return Money(int(payload[key]), str(payload["cur"])).to_decimal_string()


def short_ref(uuid: object) -> str:
    """The 8 characters that name an operation to people: the random tail of its uuid. Its head is the time
    (version 7 uuids), which operations recorded in the same minutes share."""
    return str(uuid).replace("-", "")[-8:]


_ref = short_ref


def figures_after(after: MemberState | None) -> list[Line]:
    """The member's balance and points once the operation is counted (none on a copy: they have moved since)."""
    if after is None:
        return []
    return [(label("balance_now"), after.balance_money.to_decimal_string()), (label("points_now"), str(after.points))]


def sale_lines(p: Mapping[str, Any], *, tier: str | None = None, after: MemberState | None = None) -> list[Line]:
    """``tier``: the member's tier that gave the discount (a copy does not know it and says "member discount")."""
    lines: list[Line] = [(label("gross"), _amount(p, "gross"))]
    if p["tier_disc"]:
        name = label("tier_discount", tier=tier) if tier else label("member_discount")
        lines.append((name, "-" + _amount(p, "tier_disc")))
    if p["coupon_disc"]:
        lines.append((label("coupons", ids=",".join(map(str, p["coupons"]))), "-" + _amount(p, "coupon_disc")))
    if p["pts_disc"]:
        lines.append((label("points_used", points=p["pts_redeem"]), "-" + _amount(p, "pts_disc")))
    lines += [RULE, (label("total"), f"{_amount(p, 'net')} {p['cur']}"), (label("paid_by"), _tender(p)),
              (label("points_earned"), f"+{p['pts_earn']}")]
    return lines + figures_after(after)


def topup_lines(p: Mapping[str, Any], *, after: MemberState | None = None) -> list[Line]:
    lines: list[Line] = [(label("topup"), _amount(p, "amount")), (label("bonus"), _amount(p, "bonus")),
                         RULE, (label("paid_by"), _tender(p))]
    return lines + figures_after(after)


def refund_lines(p: Mapping[str, Any], *, remaining: Money | None = None,
                 after: MemberState | None = None) -> list[Line]:
    """``remaining``: what can still be refunded on the sale after this refund."""
    lines: list[Line] = [(label("refund_of"), _ref(p["orig"])), (label("amount"), _amount(p, "amount")),
                         (label("refund_to"), _tender(p)), (label("points_back"), f"+{p['pts_back']}"),
                         (label("points_reversed"), f"-{p['pts_rev']}")]
    if remaining is not None:
        lines.append((label("still_refundable"), remaining.to_decimal_string()))
    lines.append((label("supervisor"), str(p["supervisor"])))
    return lines + figures_after(after)


def void_lines(p: Mapping[str, Any], *, original_kind: str | None = None,
               after: MemberState | None = None) -> list[Line]:
    what: Text = (phrase("receipt.value.void_of", kind=original_kind, ref=_ref(p["orig"])) if original_kind
                  else _ref(p["orig"]))
    lines: list[Line] = [(label("void_of"), what), (label("stored_value"), _amount(p, "sv")),
                         (label("points_back"), f"+{p['pts_back']}"), (label("points_reversed"), f"-{p['pts_rev']}"),
                         (label("supervisor"), str(p["supervisor"]))]
    if p.get("coupons_back"):
        lines.append((label("coupons_back"), ",".join(map(str, p["coupons_back"]))))
    return lines + figures_after(after)


def gift_name(gift: Gift) -> Phrase:
    """The gift's catalogue name, said in the receipt's language (its English name where it has no other)."""
    return phrase("receipt.value.gift", **{lang: gift.name(lang) for lang in LANGUAGES})


def redeem_lines(p: Mapping[str, Any], *, gift: Gift | None = None, after: MemberState | None = None) -> list[Line]:
    """``gift``: the catalogue's item the points went to, named on the receipt (without it, the item as the
    journal holds it: an item typed freely, or one no longer in the catalogue)."""
    item: Text = gift_name(gift) if gift is not None else str(p["item"])
    lines: list[Line] = [(label("gift"), item), (label("points_spent"), str(p["pts"]))]
    if after is not None:
        lines.append((label("points_now"), str(after.points)))
    return lines


def tier_upgrade_lines(p: Mapping[str, Any], *, yearly_spend: Money | None = None) -> list[Line]:
    lines: list[Line] = [(label("tier_from"), _tier(p["from"])), (label("tier_to"), _tier(p["to"]))]
    if yearly_spend is not None:
        lines.append((label("yearly_spend"), yearly_spend.to_decimal_string()))
    return [*lines, (label("new_card"), phrase("receipt.value.new_card"))]


def membership_fee_lines(p: Mapping[str, Any], *, after: MemberState | None = None) -> list[Line]:
    until = time.strftime("%Y-%m-%d", time.gmtime(int(p["until"])))
    lines: list[Line] = [(label("tier"), _tier(p["tier"])), (label("fee"), _amount(p, "amount")),
                         (label("paid_by"), _tender(p)), (label("valid_until"), until)]
    return lines + figures_after(after)


def member_update_lines() -> list[Line]:
    return [(label("details"), phrase("receipt.value.updated"))]


RECEIPT_KINDS = frozenset({EntryKind.SALE, EntryKind.TOPUP, EntryKind.REFUND, EntryKind.VOID, EntryKind.REDEEM,
                           EntryKind.TIER_UPGRADE, EntryKind.MEMBERSHIP_FEE, EntryKind.MEMBER_UPDATE})
"""The entry kinds that have a receipt."""


def copy_lines(entry: JournalEntry, *, original_kind: str | None = None, gift: Gift | None = None) -> list[Line]:
    """The lines of a receipt reprinted from its journal entry (``original_kind``: a void's original; ``gift``:
    the catalogue's item a redemption was for)."""
    p = entry.payload
    if entry.kind == EntryKind.SALE:
        return sale_lines(p)
    if entry.kind == EntryKind.TOPUP:
        return topup_lines(p)
    if entry.kind == EntryKind.REFUND:
        return refund_lines(p)
    if entry.kind == EntryKind.VOID:
        return void_lines(p, original_kind=original_kind)
    if entry.kind == EntryKind.REDEEM:
        return redeem_lines(p, gift=gift)
    if entry.kind == EntryKind.TIER_UPGRADE:
        return tier_upgrade_lines(p)
    if entry.kind == EntryKind.MEMBERSHIP_FEE:
        return membership_fee_lines(p)
    return member_update_lines()
