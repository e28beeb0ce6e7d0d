"""Cashier detectors: refunds and voids per shift, manually entered cards per shift.

A shift is what a terminal's ``shift_open`` ... ``shift_close`` entries delimit; entries outside any shift
count towards the cashier's day at that terminal.
"""

from __future__ import annotations

from cardkit.journal import EntryKind, JournalEntry
from ledger.anomaly import robust, window
from ledger.anomaly.cards import DAY_MS
from ledger.anomaly.context import Context
from ledger.anomaly.model import Finding, Severity, SubjectType, op_id

SHIFT_SPAN_MS = 7 * DAY_MS  # no shift lasts longer; the count is per shift, not per time window
CASHIER_KINDS = frozenset({EntryKind.SHIFT_OPEN, EntryKind.SHIFT_CLOSE, EntryKind.REFUND, EntryKind.VOID})
"""Kinds ``cashier_abuse`` acts on; any other entry matters only when it is a manual card entry."""


def shift_of(ctx: Context, entry: JournalEntry) -> str:
    """Track the terminal's open shift and return the shift this entry belongs to."""
    key = f"shift:{entry.terminal_id}"
    if entry.kind == EntryKind.SHIFT_OPEN:
        ctx.state.put(key, {"shift": str(entry.payload.get("shift", entry.uuid))})
    current = ctx.state.get(key)
    shift = f"{entry.terminal_id}/{current['shift']}" if current else \
        f"{entry.terminal_id}/day{entry.wall_ms // DAY_MS}"
    if entry.kind == EntryKind.SHIFT_CLOSE:
        ctx.state.delete(key)
        for kind in ("refunds", "manual"):
            for cashier_key, _ in list(ctx.state.scan(f"{kind}@{shift}:")):
                ctx.state.delete(cashier_key)
    return shift


NORM_KEY = "refund_norm"
NORM_HISTORY = 500  # closed shifts remembered for the norm


def refund_threshold(ctx: Context) -> int:
    """Refunds + voids per shift that count as abuse: the configured floor, or the first count above the fleet's
    norm (median + k·1.4826·MAD of recent closed shifts) when that is higher. Integers only."""
    th = ctx.thresholds
    norm = ctx.state.get(NORM_KEY)
    history: list[int] = norm["h"] if norm else []
    if th.refunds_norm_mad_k_x100 <= 0 or len(history) < max(th.refunds_norm_min_shifts, 1):
        return th.refunds_voids_per_cashier_shift
    med2 = robust.median2(history)
    mad_2 = robust.mad2(history, med2)
    numerator = med2 * 1_000_000 + th.refunds_norm_mad_k_x100 * 14_826 * mad_2
    return max(th.refunds_voids_per_cashier_shift, numerator // 2_000_000 + 1)


def _close_shift_norm(ctx: Context, shift: str) -> None:
    total = ctx.state.get(f"rtotal@{shift}")
    norm = ctx.state.get(NORM_KEY) or {"h": []}
    history = [*norm["h"], int(total["n"]) if total else 0][-NORM_HISTORY:]
    ctx.state.put(NORM_KEY, {"h": history})
    ctx.state.delete(f"rtotal@{shift}")


def cashier_abuse(ctx: Context, entry: JournalEntry) -> list[Finding]:
    shift = shift_of(ctx, entry)
    if entry.kind == EntryKind.SHIFT_CLOSE:
        _close_shift_norm(ctx, shift)
    cashier = entry.cashier_id
    if cashier is None:
        return []
    th = ctx.thresholds
    out: list[Finding] = []
    if entry.kind in (EntryKind.REFUND, EntryKind.VOID):
        total = ctx.state.get(f"rtotal@{shift}") or {"n": 0}
        ctx.state.put(f"rtotal@{shift}", {"n": int(total["n"]) + 1})
        limit = refund_threshold(ctx)
        burst = window.hit(ctx.state, f"refunds@{shift}:{cashier}", entry.wall_ms, op_id(entry), limit,
                           SHIFT_SPAN_MS)
        if burst:
            out.append(Finding(
                "cashier_refunds", Severity.WARNING, SubjectType.CASHIER, cashier, entry.wall_ms, burst.evidence,
                f"cashier {cashier} made {limit} or more refunds/voids in shift {shift}",
                burst.count, terminal_id=entry.terminal_id, since_ms=burst.since_ms, window=shift))
    if entry.payload.get("manual") is True:
        burst = window.hit(ctx.state, f"manual@{shift}:{cashier}", entry.wall_ms, op_id(entry),
                           th.manual_entries_per_cashier_shift, SHIFT_SPAN_MS)
        if burst:
            out.append(Finding(
                "cashier_manual_entries", Severity.WARNING, SubjectType.CASHIER, cashier, entry.wall_ms,
                burst.evidence,
                f"cashier {cashier} entered {th.manual_entries_per_cashier_shift} or more cards by hand in shift "
                f"{shift}", burst.count, terminal_id=entry.terminal_id, since_ms=burst.since_ms, window=shift))
    return out
