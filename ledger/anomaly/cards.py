"""Card and member detectors: forged taps, revoked/held use, double spend, clones, velocity, unusual amounts.

The detectors whose state is one card's or one member's (``card_uses``, ``unusual_amounts``) take a batch's
entries of that subject together, in entry order, and file findings under each entry's position; the engine
merges them back into entry order with the findings of the detectors that run entry by entry (``card_reject``,
``coupon_reuse``/``coupons_back``, the cashier detectors). A batch of thousands of sales by a few hundred cards
reads and writes each card's state once instead of once per sale.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

from cardkit.journal import EntryKind, JournalEntry
from ledger.anomaly import robust, window
from ledger.anomaly.context import Context
from ledger.anomaly.model import Finding, Severity, SubjectType

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

FORGED_REASONS = frozenset({"bad_signature", "unknown_key"})
BLOCKED_REASONS = frozenset({"revoked", "on_hold"})
CARD_USE_KINDS = frozenset({EntryKind.SALE, EntryKind.TOPUP, EntryKind.REDEEM, EntryKind.MEMBERSHIP_FEE})
SV_KINDS = frozenset({EntryKind.SALE, EntryKind.TOPUP, EntryKind.REFUND, EntryKind.VOID,
                      EntryKind.MEMBERSHIP_FEE})

Use = tuple[int, JournalEntry, str]
"""One entry of a batch as the per-subject detectors take it: (its position in the batch, entry, evidence id)."""
FoundAt = dict[int, list[Finding]]
"""Findings per position in the batch, which the engine merges back into entry order."""
Spends = dict[str, list[tuple[JournalEntry, str]]]
"""A batch's stored-value spends per member, in entry order: (entry, its evidence id)."""


def card_reject(ctx: Context, entry: JournalEntry, store_id: str, ev: str) -> list[Finding]:
    """A refused tap: a forged card, a revoked or held card presented again, or a failed anti-copy challenge."""
    payload = entry.payload
    reason = payload.get("reason")
    if reason in FORGED_REASONS:
        return forged_taps(ctx, entry, store_id, ev)
    card = payload.get("card")
    if not isinstance(card, str):
        return []
    th = ctx.thresholds
    if reason in BLOCKED_REASONS:
        burst = window.hit(ctx.state, f"blocked:{card}", entry.wall_ms, ev, th.revoked_taps_per_card_day, DAY_MS)
        if burst:
            return [Finding("revoked_card_use", Severity.WARNING, SubjectType.CARD, card, entry.wall_ms,
                            burst.evidence, f"revoked or held card {card} presented again", burst.count,
                            terminal_id=entry.terminal_id, since_ms=burst.since_ms)]
    elif reason == "challenge_failed":
        burst = window.hit(ctx.state, f"challenge:{card}", entry.wall_ms, ev, th.challenge_failures_per_card_day,
                           DAY_MS)
        if burst:
            return [Finding("cloned_card", Severity.CRITICAL, SubjectType.CARD, card, entry.wall_ms,
                            burst.evidence, f"card {card} failed its anti-copy challenge", burst.count,
                            terminal_id=entry.terminal_id, since_ms=burst.since_ms)]
    return []


def forged_taps(ctx: Context, entry: JournalEntry, store_id: str, ev: str) -> list[Finding]:
    """A burst of forged-card rejects at one terminal, or spread over a store's terminals."""
    out: list[Finding] = []
    th = ctx.thresholds
    burst = window.hit(ctx.state, f"forged_t:{entry.terminal_id}", entry.wall_ms, ev,
                       th.forged_taps_per_terminal_10min, 10 * MINUTE_MS)
    if burst:
        out.append(Finding(
            "forged_burst", Severity.CRITICAL, SubjectType.TERMINAL, entry.terminal_id, entry.wall_ms,
            burst.evidence, f"forged card taps at terminal {entry.terminal_id}", burst.count,
            terminal_id=entry.terminal_id, since_ms=burst.since_ms))
    # A store-wide burst only counts when it is spread: one terminal's burst is already reported above.
    store_burst = window.hit(ctx.state, f"forged_s:{store_id}", entry.wall_ms, ev, th.forged_taps_per_store_10min,
                             10 * MINUTE_MS, accept=_spread)
    if store_burst:
        out.append(Finding(
            "forged_burst_store", Severity.CRITICAL, SubjectType.STORE, store_id, entry.wall_ms,
            store_burst.evidence, f"forged card taps across terminals of store {store_id}",
            store_burst.count, terminal_id=entry.terminal_id, since_ms=store_burst.since_ms))
    return out


def _spread(evidence: list[str]) -> bool:
    """At least two terminals among ``terminal:seq`` evidence ids."""
    return len({e.rsplit(":", 1)[0] for e in evidence}) >= 2


def card_uses(ctx: Context, card: str, uses: Sequence[Use], store_id: str, found: FoundAt) -> None:
    """A batch's accepted operations of one card (sales, top-ups, redeems, fees), in entry order: use after the
    ledger blocked the card, the same card at two stores too close in time (a clone), too many operations
    (velocity). Each use's findings go to ``found`` under its position, in that order."""
    since = ctx.view.card_blocked_since(card)
    if since is not None:
        for pos, entry, ev in uses:
            if entry.wall_ms > since:
                found.setdefault(pos, []).append(Finding(
                    "revoked_card_use", Severity.CRITICAL, SubjectType.CARD, card, entry.wall_ms, (ev,),
                    f"card {card} was used after it was revoked or put on hold", terminal_id=entry.terminal_id))
    th = ctx.thresholds
    if th.clone_min_interval_s > 0:
        _cloned_card(ctx, card, uses, store_id, th.clone_min_interval_s * 1000, found)
    _velocity(ctx, card, uses, found)


def _cloned_card(ctx: Context, card: str, uses: Sequence[Use], store_id: str, limit_ms: int,
                 found: FoundAt) -> None:
    """One card used at two stores closer in time than anyone can travel."""
    key = f"seen:{card}"
    seen: dict[str, list[Any]] = ctx.state.get(key) or {}
    for pos, entry, ev in uses:
        at = entry.wall_ms
        for other_store, (other_ms, other_op) in seen.items():
            if other_store != store_id and abs(at - other_ms) < limit_ms:
                found.setdefault(pos, []).append(Finding(
                    "cloned_card", Severity.CRITICAL, SubjectType.CARD, card, at, (other_op, ev),
                    f"card {card} used at stores {other_store} and {store_id} {abs(at - other_ms) // 1000} s apart",
                    terminal_id=entry.terminal_id))
                break
        previous = seen.get(store_id)
        if previous is None or at >= previous[0]:
            seen[store_id] = [at, ev]
        if len(seen) > 6:  # keep the most recent stores only
            oldest = min(seen, key=lambda s: seen[s][0])
            del seen[oldest]
    ctx.state.put(key, seen)


def _velocity(ctx: Context, card: str, uses: Sequence[Use], found: FoundAt) -> None:
    """Too many operations of one card within an hour or within a day."""
    th = ctx.thresholds
    hour_key = f"vel_hour:{card}"
    hour_firing = _firing(ctx, hour_key)  # once an hour burst fired, its state stays firing
    times = [(entry.wall_ms, ev) for _, entry, ev in uses]
    hours = window.hits(ctx.state, hour_key, times, th.ops_per_card_hour, HOUR_MS)
    days = window.hits(ctx.state, f"vel_day:{card}", times, th.ops_per_card_day, DAY_MS)
    per_hour = f"card {card} used {th.ops_per_card_hour} or more times within one hour"
    per_day = f"card {card} used {th.ops_per_card_day} or more times within one day"
    # one velocity finding per operation: the hour's when it fires, else the day's
    for (pos, entry, _), hour, day in zip(uses, hours, days, strict=True):
        if hour is not None:
            summary, burst, count = per_hour, hour, hour.count
            hour_firing = True
        elif day is not None:
            # an hour burst is also a day burst: count each operation once in the card's one velocity alert
            summary, burst = per_day, day
            count = 1 if hour_firing else day.count
        else:
            continue
        # positional (terminal_id, window, hold_card, since_ms): keywords cost a third more, once per operation
        found.setdefault(pos, []).append(Finding(
            "velocity", Severity.WARNING, SubjectType.CARD, card, entry.wall_ms, burst.evidence, summary, count,
            entry.terminal_id, None, None, burst.since_ms))


def _firing(ctx: Context, key: str) -> bool:
    data = ctx.state.get(key)
    return bool(data and data.get("until") is not None)


def sv_change(entry: JournalEntry) -> int:
    """Signed change of stored value an entry makes (minor units), per the payload contract."""
    p = entry.payload
    if entry.kind == EntryKind.SALE:
        return -_int(p.get("sv"))
    if entry.kind == EntryKind.TOPUP:
        return _int(p.get("amount")) + _int(p.get("bonus"))
    if entry.kind in (EntryKind.REFUND, EntryKind.VOID):
        return _int(p.get("sv"))
    if entry.kind == EntryKind.MEMBERSHIP_FEE and p.get("tender") == "sv":
        return -_int(p.get("amount"))
    return 0


def double_spend(ctx: Context, spends: Spends) -> list[Finding]:
    """After a batch is merged: a member whose stored value is below zero had the same value spent twice.
    ``spends``: the batch's entries that took stored value (``sv_change`` below zero) per member."""
    out: list[Finding] = []
    for member, spent in spends.items():
        # remember the recent spends of the member so the evidence names both sides of the double spend
        key = f"spends:{member}"
        data: dict[str, Any] = ctx.state.get(key) or {"e": []}
        data["e"] = (data["e"] + [ev for _, ev in spent])[-window.MAX_EVIDENCE:]
        ctx.state.put(key, data)
        balance = ctx.view.balance_minor(member)
        if balance is None or balance >= 0:
            continue
        last = spent[-1][0]
        card = last.payload.get("card")
        card_id = card if isinstance(card, str) else member
        terminals = sorted({e.rsplit(":", 1)[0] for e in data["e"]})
        out.append(Finding(
            "double_spend", Severity.CRITICAL, SubjectType.CARD, card_id, last.wall_ms, tuple(data["e"]),
            f"stored value of card {card_id} is {balance} minor units below zero after merging terminals "
            f"{', '.join(terminals)}",
            terminal_id=last.terminal_id,
            hold_card=card_id if ctx.thresholds.double_spend_hold and isinstance(card, str) else None))
    return out


def coupon_reuse(ctx: Context, entry: JournalEntry, coupons: object, ev: str) -> list[Finding]:
    """A single-use coupon applied by a second sale (both decided offline: online, the ledger refuses the second
    at once). ``coupons``: the sale's ``coupons`` field."""
    out: list[Finding] = []
    for coupon in texts(coupons):
        key = f"coupon:{coupon}"
        first = ctx.state.get(key)
        if first is None:
            ctx.state.put(key, {"op": ev})
            continue
        card = entry.payload.get("card")
        out.append(Finding(
            "coupon_reuse", Severity.CRITICAL, SubjectType.CARD, card if isinstance(card, str) else coupon,
            entry.wall_ms, (str(first.get("op")), ev),
            f"single-use coupon {coupon} was applied again by {ev} (first by {first.get('op')})",
            terminal_id=entry.terminal_id))
    return out


def coupons_back(ctx: Context, entry: JournalEntry) -> None:
    """A void that gives its coupons back frees them again."""
    for coupon in texts(entry.payload.get("coupons_back")):
        ctx.state.delete(f"coupon:{coupon}")


def texts(value: object) -> list[str]:
    """The strings of a list field (coupon ids); anything else is no strings."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def unusual_amounts(ctx: Context, member: str, sales: Sequence[Use], found: FoundAt) -> None:
    """Sales far above what this member usually spends (median + MAD of the member's own history): a batch's
    sales of one member, in entry order; findings go to ``found`` under each sale's position. The history is
    sorted once per batch and kept sorted as sales join it, rather than sorted again for every sale."""
    th = ctx.thresholds
    key = f"amounts:{member}"
    data: dict[str, Any] = ctx.state.get(key) or {"a": []}
    history: list[int] = data["a"]
    ascending = sorted(history)
    min_history = max(th.amount_min_history, 1)
    changed = False
    for pos, entry, ev in sales:
        net = entry.payload.get("net")
        amount = net if type(net) is int else 0  # _int(net)
        if len(history) >= min_history and robust.is_unusual_high_sorted(
                amount, ascending, th.amount_robust_z_x100, th.amount_min_ratio_x100):
            median = robust.median2_sorted(ascending) // 2
            found.setdefault(pos, []).append(Finding(
                "unusual_amount", Severity.WARNING, SubjectType.MEMBER, member, entry.wall_ms, (ev,),
                f"sale of {amount} minor units by member {member} against a usual {median}",
                terminal_id=entry.terminal_id))
            continue
        # an outlier stays out of the history, so a fraudster cannot make big sales look usual
        history.append(amount)
        bisect.insort(ascending, amount)
        excess = len(history) - th.amount_history_size
        if excess > 0:
            for old in history[:excess]:
                del ascending[bisect.bisect_left(ascending, old)]
            del history[:excess]
        changed = True
    if changed:
        ctx.state.put(key, data)


def _int(value: object) -> int:
    return value if type(value) is int else 0
