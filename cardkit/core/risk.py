"""Offline risk limits: how much stored value a card may spend while this terminal cannot reach the ledger.

Like EMV floor limits and offline counters. A stored-value balance seen offline may already have been spent at
another terminal, so offline stored-value spending is bounded three ways (limits from the ledger's rules):
  * the terminal's last successful sync is no older than ``max_since_sync_s``;
  * the card has made fewer than ``max_consecutive_offline_ops`` offline stored-value payments since it was last
    used online (any of its operations journaled with ``offline = false`` resets the count);
  * the card's offline stored-value spend at this terminal in the last 24 hours (rolling, so no time zone is
    involved), plus this payment, stays within ``sv_per_card_per_day``.
A member may hold several cards, so the same limits also count all of the member's cards together (issue 14):
  * fewer than ``max_consecutive_offline_ops`` offline stored-value payments by any of the member's cards since
    one of them was last used online;
  * the member's offline stored-value spend at this terminal in the last 24 hours, plus this payment, stays within
    ``sv_per_member_per_day`` (``sv_per_card_per_day`` when the rules have no member cap).
Offline cash top-ups have ceilings too (a top-up offline is only the cashier's word that cash came in): at most
``cash_topup_per_op`` in one operation and ``cash_topup_per_day`` per member in any rolling 24 hours.
Apart from that, only stored-value spending is ever declined: earning points and cash or bank-card payments always
pass. Online operations are not limited here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from cardkit.core.money import Money
from cardkit.core.rules import OfflineLimits
from cardkit.errors import DomainError
from cardkit.journal import EntryKind

DAY_MS = 86_400_000
CARD_OPS = frozenset({EntryKind.SALE, EntryKind.TOPUP, EntryKind.REFUND, EntryKind.VOID, EntryKind.REDEEM,
                      EntryKind.MEMBERSHIP_FEE})
"""Operations that count as a use of the card (any of them made online resets the consecutive count)."""

STILL_WORKS = "cash and bank card still work and points are still earned"


class OfflineLimitError(DomainError):
    """An offline limit declined stored-value spending; ``limit`` says which one. The words are under
    ``offline_limit.<sentence or limit>`` in the terminal's catalogue."""

    def __init__(self, message: str, *, limit: str, sentence: str | None = None,
                 params: Mapping[str, Any] | None = None) -> None:
        super().__init__(message, code="offline_limit", sentence=f"offline_limit.{sentence or limit}", params=params)
        self.limit = limit


@dataclass(frozen=True, slots=True)
class OfflineUsage:
    """What one card has done offline at this terminal, as the limits see it."""

    sv_spent_24h: int = 0
    """Stored value (minor units) the card spent offline in the 24 hours before now."""
    consecutive_offline_sv_ops: int = 0
    """Offline stored-value payments since the card's last online operation."""
    since_sync_s: int | None = None
    """Seconds since the terminal's last successful sync; None when it never synced."""
    member_sv_spent_24h: int = 0
    """Stored value all of the member's cards spent offline in the 24 hours before now (when counted by member)."""
    member_consecutive_offline_sv_ops: int = 0
    """Offline stored-value payments by any of the member's cards since one of them was last used online."""
    member_cash_topup_24h: int = 0
    """Cash the member topped up offline in the 24 hours before now."""


def sv_debit(kind: str, payload: Mapping[str, Any]) -> int:
    """Stored value an entry takes from a balance (0 for everything that does not spend it)."""
    if kind == EntryKind.SALE:
        return int(payload.get("sv", 0))
    if kind == EntryKind.MEMBERSHIP_FEE and payload.get("tender") == "sv":
        return int(payload.get("amount", 0))
    return 0


def offline_usage(
    entries: Iterable[tuple[int, str, Mapping[str, Any]]],
    card_id: str,
    *,
    now_ms: int,
    last_sync_ms: int | None,
) -> OfflineUsage:
    """Summarise this terminal's ``(wall_ms, kind, payload)`` entries, oldest first, for one card."""
    spent = 0
    consecutive = 0
    for wall_ms, kind, payload in entries:
        if kind not in CARD_OPS or payload.get("card") != card_id:
            continue
        if not payload.get("offline", False):
            consecutive = 0
            continue
        debit = sv_debit(kind, payload)
        if debit > 0:
            consecutive += 1
            # Entries stamped after now (the clock went back) still count: the limit errs on the safe side.
            if wall_ms > now_ms - DAY_MS:
                spent += debit
    since = None if last_sync_ms is None else max(0, (now_ms - last_sync_ms) // 1000)
    return OfflineUsage(sv_spent_24h=spent, consecutive_offline_sv_ops=consecutive, since_sync_s=since)


def member_offline_usage(
    entries: Iterable[tuple[int, str, Mapping[str, Any]]],
    member_id: str,
    card_id: str,
    *,
    now_ms: int,
    last_sync_ms: int | None,
) -> OfflineUsage:
    """Like :func:`offline_usage` for ``card_id``, plus the same counts over all of ``member_id``'s cards and the
    member's offline cash top-ups. ``entries`` are this terminal's entries for the member, oldest first."""
    mine = [(wall_ms, kind, payload) for wall_ms, kind, payload in entries if payload.get("member") == member_id]
    usage = offline_usage(mine, card_id, now_ms=now_ms, last_sync_ms=last_sync_ms)
    spent = consecutive = topped_up = 0
    for wall_ms, kind, payload in mine:
        if kind not in CARD_OPS:
            continue
        if not payload.get("offline", False):
            consecutive = 0
            continue
        recent = wall_ms > now_ms - DAY_MS
        if kind == EntryKind.TOPUP and payload.get("tender") == "cash" and recent:
            topped_up += int(payload.get("amount", 0))
        debit = sv_debit(kind, payload)
        if debit > 0:
            consecutive += 1
            if recent:
                spent += debit
    return replace(usage, member_sv_spent_24h=spent, member_consecutive_offline_sv_ops=consecutive,
                   member_cash_topup_24h=topped_up)


def _hours(seconds: int) -> str:
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _duration(name: str, seconds: int) -> dict[str, int]:
    """A duration as the params of a sentence: ``<name>_h`` hours and ``<name>_min`` minutes."""
    return {f"{name}_h": seconds // 3600, f"{name}_min": seconds % 3600 // 60}


def check_offline_spend(limits: OfflineLimits, usage: OfflineUsage, *, sv_amount: Money) -> None:
    """Raise OfflineLimitError if an offline stored-value payment of ``sv_amount`` is past a limit."""
    if sv_amount.minor <= 0:
        return
    if usage.since_sync_s is None:
        raise OfflineLimitError(
            "Stored value cannot be used offline: this terminal has not synced with the ledger yet; "
            f"{STILL_WORKS}", limit="since_sync", sentence="never_synced")
    if usage.since_sync_s > limits.max_since_sync_s:
        raise OfflineLimitError(
            f"Stored value cannot be used offline: the last sync was {_hours(usage.since_sync_s)} ago "
            f"(limit {_hours(limits.max_since_sync_s)}); {STILL_WORKS}", limit="since_sync",
            params={**_duration("ago", usage.since_sync_s), **_duration("limit", limits.max_since_sync_s)})
    if usage.consecutive_offline_sv_ops >= limits.max_consecutive_offline_ops:
        raise OfflineLimitError(
            f"Stored value cannot be used offline: this card has made {usage.consecutive_offline_sv_ops} offline "
            f"stored-value payments in a row (limit {limits.max_consecutive_offline_ops}); {STILL_WORKS}",
            limit="consecutive",
            params={"count": usage.consecutive_offline_sv_ops, "most": limits.max_consecutive_offline_ops})
    if usage.member_consecutive_offline_sv_ops >= limits.max_consecutive_offline_ops:
        raise OfflineLimitError(
            f"Stored value cannot be used offline: this member's cards have made "
            f"{usage.member_consecutive_offline_sv_ops} offline stored-value payments in a row (limit "
            f"{limits.max_consecutive_offline_ops}); {STILL_WORKS}", limit="consecutive",
            sentence="member_consecutive",
            params={"count": usage.member_consecutive_offline_sv_ops, "most": limits.max_consecutive_offline_ops})
    cap = limits.sv_per_card_per_day
    if usage.sv_spent_24h + sv_amount.minor > cap.minor:
        left = Money(max(0, cap.minor - usage.sv_spent_24h), cap.currency)
        raise OfflineLimitError(
            f"Stored value cannot be used offline for {sv_amount}: this card may spend {cap} offline per 24 hours "
            f"and has {left} left; {STILL_WORKS}", limit="daily_amount",
            params={"amount": sv_amount, "cap": cap, "left": left})
    member_cap = limits.member_daily
    if usage.member_sv_spent_24h + sv_amount.minor > member_cap.minor:
        left = Money(max(0, member_cap.minor - usage.member_sv_spent_24h), member_cap.currency)
        raise OfflineLimitError(
            f"Stored value cannot be used offline for {sv_amount}: this member's cards together may spend "
            f"{member_cap} offline per 24 hours and have {left} left; {STILL_WORKS}", limit="member_daily",
            params={"amount": sv_amount, "cap": member_cap, "left": left})


def check_offline_topup(limits: OfflineLimits, usage: OfflineUsage, *, amount: Money, tender: str) -> None:
    """Raise OfflineLimitError if an offline cash top-up of ``amount`` is past a ceiling (bank cards pass)."""
    if tender != "cash":
        return
    per_op = limits.cash_topup_per_op
    if per_op is not None and amount.minor > per_op.minor:
        raise OfflineLimitError(
            f"A cash top-up offline is at most {per_op} (asked {amount}); top up by bank card, or again once the "
            "ledger is reachable", limit="topup_per_op", params={"amount": amount, "cap": per_op})
    per_day = limits.cash_topup_per_day
    if per_day is not None and usage.member_cash_topup_24h + amount.minor > per_day.minor:
        left = Money(max(0, per_day.minor - usage.member_cash_topup_24h), per_day.currency)
        raise OfflineLimitError(
            f"A cash top-up of {amount} offline is past this member's ceiling of {per_day} per 24 hours ({left} "
            "left); top up by bank card, or again once the ledger is reachable", limit="topup_per_day",
            params={"amount": amount, "cap": per_day, "left": left})
