"""A campaign's results: what happened to its messages, the coupons redeemed, and the sales of its members in the
``days`` after it against the holdout group.

- **sent**: messages the gateway or the mail relay took (delivered ones included); **delivered**: the gateway's
  receipt said so; **failed**: refused for good or out of attempts, or a failed receipt; **opted out**: not sent
  for want of consent at send time; **unsubscribed**: recipients who withdrew consent after the campaign.
- **coupons redeemed**: coupons of this campaign used in a sale (the member's folded state lists used coupons).
- **uplift**: sales (``net`` of sale entries, minor units) per member of the target group (everyone planned and
  not held out, whether or not a message reached them: intention to treat, so opting out does not flatter the
  result) minus the same per member of the holdout; shown per currency.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ledger import member_facts, pii, store
from ledger.campaigns.model import DAY_MS, MessageStatus
from ledger.campaigns.plan import get_campaign
from ledger.campaigns.tables import CampaignMessage

CHUNK = 400


@dataclass(slots=True)
class GroupSales:
    members: int = 0
    buyers: int = 0
    sales: dict[str, int] = field(default_factory=dict)  # currency -> minor units

    def per_member(self, currency: str) -> int:
        """Sales per member in minor units, rounded down (integer arithmetic)."""
        return self.sales.get(currency, 0) // self.members if self.members else 0


@dataclass(slots=True)
class Results:
    campaign_id: str
    status_counts: dict[str, int]
    sent: int
    delivered: int
    failed: int
    opted_out: int
    unsubscribed: int
    coupons_issued: int
    coupons_redeemed: int
    target: GroupSales
    holdout: GroupSales
    days: int
    window_start_ms: int

    def uplift(self) -> dict[str, int]:
        """Per currency: sales per target member minus sales per holdout member (minor units)."""
        currencies = sorted(set(self.target.sales) | set(self.holdout.sales))
        return {c: self.target.per_member(c) - self.holdout.per_member(c) for c in currencies}

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id, "messages": self.status_counts, "sent": self.sent,
            "delivered": self.delivered, "failed": self.failed, "opted_out": self.opted_out,
            "unsubscribed": self.unsubscribed, "coupons_issued": self.coupons_issued,
            "coupons_redeemed": self.coupons_redeemed, "days": self.days, "window_start_ms": self.window_start_ms,
            "target": {"members": self.target.members, "buyers": self.target.buyers, "sales": self.target.sales,
                       "per_member": {c: self.target.per_member(c) for c in self.target.sales}},
            "holdout": {"members": self.holdout.members, "buyers": self.holdout.buyers, "sales": self.holdout.sales,
                        "per_member": {c: self.holdout.per_member(c) for c in self.holdout.sales}},
            "uplift_per_member": self.uplift(),
        }


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def _sales(member_ids: list[str], start_ms: int, end_ms: int) -> GroupSales:
    group = GroupSales(members=len(member_ids))
    A = store.AppliedEntry
    buyers: set[str] = set()
    for chunk in _chunks(member_ids):
        query: Any = (A.select(A.terminal_id, A.seq, A.payload, A.pii, A.member_id)
                      .where(A.member_id.in_(chunk) & (A.kind == "sale") & (A.wall_ms >= start_ms)
                             & (A.wall_ms < end_ms)))
        for terminal_id, seq, payload, private, member_id in query.tuples():
            document = pii.entry_payload(str(terminal_id), int(seq), bytes(payload),
                                         bytes(private) if private is not None else None)
            net, currency = document.get("net"), document.get("cur")
            if type(net) is int and isinstance(currency, str):
                group.sales[currency] = group.sales.get(currency, 0) + net
                buyers.add(str(member_id))
    group.buyers = len(buyers)
    return group


def _redeemed(pairs: Iterable[tuple[str, str]]) -> int:
    by_member: dict[str, set[str]] = {}
    for member_id, coupon_id in pairs:
        by_member.setdefault(member_id, set()).add(coupon_id)
    used = 0
    for chunk in _chunks(sorted(by_member)):
        for projection in store.MemberProjection.select().where(store.MemberProjection.member_id.in_(chunk)):
            state = projection.state if isinstance(projection.state, dict) else {}
            used += len(by_member[str(projection.member_id)] & set(state.get("used_coupons") or []))
    return used


def results(campaign_id: str, *, days: int) -> Results:
    campaign = get_campaign(campaign_id)
    M = CampaignMessage
    rows: Any = (M.select(M.member_id, M.status, M.sent_ms, M.coupon_id, M.created_ms, M.channel)
                 .where(M.campaign_id == campaign_id).tuples())
    counts: Counter[str] = Counter()
    target: list[str] = []
    holdout: list[str] = []
    coupons: list[tuple[str, str]] = []
    sent_at: dict[str, int] = {}
    start_ms = int(campaign.planned_ms or campaign.created_ms)
    channel = str(campaign.channel)
    for member_id, status, sent_ms, coupon_id, created_ms, _ in rows:
        counts[str(status)] += 1
        start_ms = min(start_ms, int(created_ms))
        (holdout if status == MessageStatus.HOLDOUT.value else target).append(str(member_id))
        if coupon_id:
            coupons.append((str(member_id), str(coupon_id)))
        if sent_ms is not None:
            sent_at[str(member_id)] = int(sent_ms)
    unsubscribed = 0
    C = member_facts.ConsentEvent
    for chunk in _chunks(sorted(sent_at)):
        withdrawals: Any = (C.select(C.member_id, C.at_ms).where(
            C.member_id.in_(chunk) & (C.channel == channel) & (C.granted == False)).tuples())  # noqa: E712
        unsubscribed += len({str(m) for m, at in withdrawals if int(at) >= sent_at[str(m)]})
    sent_states = (MessageStatus.SENT.value, MessageStatus.DELIVERED.value)
    return Results(
        campaign_id=campaign_id, status_counts=dict(sorted(counts.items())),
        sent=sum(counts[s] for s in sent_states), delivered=counts[MessageStatus.DELIVERED.value],
        failed=counts[MessageStatus.FAILED.value], opted_out=counts[MessageStatus.OPTED_OUT.value],
        unsubscribed=unsubscribed, coupons_issued=len(coupons), coupons_redeemed=_redeemed(coupons),
        target=_sales(sorted(target), start_ms, start_ms + days * DAY_MS),
        holdout=_sales(sorted(holdout), start_ms, start_ms + days * DAY_MS), days=days, window_start_ms=start_ms)
