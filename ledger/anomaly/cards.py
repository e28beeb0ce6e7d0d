"""Card and member detectors: forged taps, revoked/held use, double spend, clones, velocity, unusual amounts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cardkit.journal import EntryKind, JournalEntry
from ledger.anomaly import robust, window
from ledger.anomaly.context import Context
from ledger.anomaly.model import Finding, Severity, SubjectType, op_id

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

FORGED_REASONS = frozenset({"bad_signature", "unknown_key"})
BLOCKED_REASONS = frozenset({"revoked", "on_hold"})
CARD_USE_KINDS = frozenset({EntryKind.SALE, EntryKind.TOPUP, EntryKind.REDEEM, EntryKind.MEMBERSHIP_FEE})
SV_KINDS = frozenset({EntryKind.SALE, EntryKind.TOPUP, EntryKind.REFUND, EntryKind.VOID,
                      EntryKind.MEMBERSHIP_FEE})


def forged_taps(ctx: Context, entry: JournalEntry, store_id: str) -> list[Finding]:
    """A burst of forged-card rejects at one terminal, or spread over a store's terminals."""
    if entry.kind != EntryKind.CARD_REJECT or entry.payload.get("reason") not in FORGED_REASONS:
        return []
    out: list[Finding] = []
    th = ctx.thresholds
    ev = op_id(entry)
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


def blocked_card_use(ctx: Context, entry: JournalEntry) -> list[Finding]:
    """Taps of a revoked or held card (rejected), or a card operation accepted after the ledger blocked it."""
    card = entry.payload.get("card")
    if not isinstance(card, str):
        return []
    if entry.kind == EntryKind.CARD_REJECT and entry.payload.get("reason") in BLOCKED_REASONS:
        burst = window.hit(ctx.state, f"blocked:{card}", entry.wall_ms, op_id(entry),
                           ctx.thresholds.revoked_taps_per_card_day, DAY_MS)
        if burst:
            return [Finding("revoked_card_use", Severity.WARNING, SubjectType.CARD, card, entry.wall_ms,
                            burst.evidence, f"revoked or held card {card} presented again", burst.count,
                            terminal_id=entry.terminal_id, since_ms=burst.since_ms)]
        return []
    if entry.kind in CARD_USE_KINDS:
        since = ctx.view.card_blocked_since(card)
        if since is not None and entry.wall_ms > since:
            return [Finding("revoked_card_use", Severity.CRITICAL, SubjectType.CARD, card, entry.wall_ms,
                            (op_id(entry),), f"card {card} was used after it was revoked or put on hold",
                            terminal_id=entry.terminal_id)]
    return []


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


def double_spend(ctx: Context, entries: Sequence[JournalEntry]) -> list[Finding]:
    """After a batch is merged: a member whose stored value is below zero had the same value spent twice."""
    spends: dict[str, list[JournalEntry]] = {}
    for entry in entries:
        member = entry.payload.get("member")
        if entry.kind in SV_KINDS and isinstance(member, str) and sv_change(entry) < 0:
            spends.setdefault(member, []).append(entry)
    out: list[Finding] = []
    for member, spent in spends.items():
        # remember the recent spends of the member so the evidence names both sides of the double spend
        key = f"spends:{member}"
        data: dict[str, Any] = ctx.state.get(key) or {"e": []}
        data["e"] = (data["e"] + [op_id(e) for e in spent])[-window.MAX_EVIDENCE:]
        ctx.state.put(key, data)
        balance = ctx.view.balance_minor(member)
        if balance is None or balance >= 0:
            continue
        last = spent[-1]
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


def coupon_reuse(ctx: Context, entry: JournalEntry) -> list[Finding]:
    """A single-use coupon applied by a second sale (both decided offline: online, the ledger refuses the second
    at once). A void that gives the coupon back frees it again."""
    if entry.kind == EntryKind.VOID:
        for coupon in _texts(entry.payload.get("coupons_back")):
            ctx.state.delete(f"coupon:{coupon}")
        return []
    if entry.kind != EntryKind.SALE:
        return []
    out: list[Finding] = []
    for coupon in _texts(entry.payload.get("coupons")):
        key = f"coupon:{coupon}"
        first = ctx.state.get(key)
        if first is None:
            ctx.state.put(key, {"op": op_id(entry)})
            continue
        card = entry.payload.get("card")
        out.append(Finding(
            "coupon_reuse", Severity.CRITICAL, SubjectType.CARD, card if isinstance(card, str) else coupon,
            entry.wall_ms, (str(first.get("op")), op_id(entry)),
            f"single-use coupon {coupon} was applied again by {op_id(entry)} (first by {first.get('op')})",
            terminal_id=entry.terminal_id))
    return out


def _texts(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def cloned_card(ctx: Context, entry: JournalEntry, store_id: str) -> list[Finding]:
    """One card used at two stores closer in time than anyone can travel, or failing its challenge."""
    card = entry.payload.get("card")
    if not isinstance(card, str):
        return []
    th = ctx.thresholds
    if entry.kind == EntryKind.CARD_REJECT and entry.payload.get("reason") == "challenge_failed":
        burst = window.hit(ctx.state, f"challenge:{card}", entry.wall_ms, op_id(entry),
                           th.challenge_failures_per_card_day, DAY_MS)
        if burst:
            return [Finding("cloned_card", Severity.CRITICAL, SubjectType.CARD, card, entry.wall_ms,
                            burst.evidence, f"card {card} failed its anti-copy challenge", burst.count,
                            terminal_id=entry.terminal_id, since_ms=burst.since_ms)]
        return []
    if entry.kind not in CARD_USE_KINDS or th.clone_min_interval_s <= 0:
        return []
    key = f"seen:{card}"
    seen: dict[str, list[Any]] = ctx.state.get(key) or {}
    out: list[Finding] = []
    limit = th.clone_min_interval_s * 1000
    for other_store, (other_ms, other_op) in seen.items():
        if other_store != store_id and abs(entry.wall_ms - other_ms) < limit:
            out.append(Finding(
                "cloned_card", Severity.CRITICAL, SubjectType.CARD, card, entry.wall_ms, (other_op, op_id(entry)),
                f"card {card} used at stores {other_store} and {store_id} "
                f"{abs(entry.wall_ms - other_ms) // 1000} s apart", terminal_id=entry.terminal_id))
            break
    previous = seen.get(store_id)
    if previous is None or entry.wall_ms >= previous[0]:
        seen[store_id] = [entry.wall_ms, op_id(entry)]
    if len(seen) > 6:  # keep the most recent stores only
        oldest = min(seen, key=lambda s: seen[s][0])
        del seen[oldest]
    ctx.state.put(key, seen)
    return out


def velocity(ctx: Context, entry: JournalEntry) -> list[Finding]:
    """Too many operations of one card within an hour or within a day."""
    card = entry.payload.get("card")
    if entry.kind not in CARD_USE_KINDS or not isinstance(card, str):
        return []
    th = ctx.thresholds
    ev = op_id(entry)
    at = entry.wall_ms
    hour = window.hit(ctx.state, f"vel_hour:{card}", at, ev, th.ops_per_card_hour, HOUR_MS)
    day = window.hit(ctx.state, f"vel_day:{card}", at, ev, th.ops_per_card_day, DAY_MS)
    # one velocity finding per operation: the hour's when it fires, else the day's
    if hour is not None:
        label, limit, burst, count = "hour", th.ops_per_card_hour, hour, hour.count
    elif day is not None:
        # an hour burst is also a day burst: count each operation once in the card's one velocity alert
        label, limit, burst = "day", th.ops_per_card_day, day
        count = 1 if _firing(ctx, f"vel_hour:{card}") else day.count
    else:
        return []
    return [Finding("velocity", Severity.WARNING, SubjectType.CARD, card, at, burst.evidence,
                    f"card {card} used {limit} or more times within one {label}", count,
                    terminal_id=entry.terminal_id, since_ms=burst.since_ms)]


def _firing(ctx: Context, key: str) -> bool:
    data = ctx.state.get(key)
    return bool(data and data.get("until") is not None)


def unusual_amount(ctx: Context, entry: JournalEntry) -> list[Finding]:
    """A sale far above what this member usually spends (median + MAD of the member's own history)."""
    member = entry.payload.get("member")
    if entry.kind != EntryKind.SALE or not isinstance(member, str):
        return []
    amount = _int(entry.payload.get("net"))
    th = ctx.thresholds
    key = f"amounts:{member}"
    data: dict[str, Any] = ctx.state.get(key) or {"a": []}
    history: list[int] = data["a"]
    out: list[Finding] = []
    if len(history) >= max(th.amount_min_history, 1) and robust.is_unusual_high(
            amount, history, th.amount_robust_z_x100, th.amount_min_ratio_x100):
        median = robust.median2(history) // 2
        out.append(Finding(
            "unusual_amount", Severity.WARNING, SubjectType.MEMBER, member, entry.wall_ms, (op_id(entry),),
            f"sale of {amount} minor units by member {member} against a usual {median}",
            terminal_id=entry.terminal_id))
    else:  # an outlier stays out of the history, so a fraudster cannot make big sales look usual
        history.append(amount)
        del history[: max(0, len(history) - th.amount_history_size)]
        ctx.state.put(key, data)
    return out


def _int(value: object) -> int:
    return value if type(value) is int else 0
