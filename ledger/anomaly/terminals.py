"""Terminal integrity: sequence gaps, broken chains, refused batches, clock skew, silence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cardkit.journal import JournalEntry
from ledger.anomaly.context import Context
from ledger.anomaly.model import Finding, Severity, SubjectType, op_id
from ledger.events import Quarantined

# BatchRejected.reason → (rule, severity). Anything else is a refused batch worth a warning.
REJECT_RULES: dict[str, tuple[str, Severity]] = {
    "sequence_gap": ("sequence_gap", Severity.WARNING),
    "broken_chain": ("broken_chain", Severity.CRITICAL),
    "tampered": ("tampered_batch", Severity.CRITICAL),
    "replayed": ("replayed_batch", Severity.INFO),  # also what a retry after a lost ack looks like
    "bad_signature": ("rejected_batch", Severity.CRITICAL),
    "decrypt_failed": ("rejected_batch", Severity.WARNING),
    "malformed": ("rejected_batch", Severity.WARNING),
    "unknown_terminal": ("rejected_batch", Severity.WARNING),
    "disabled_terminal": ("rejected_batch", Severity.WARNING),
}


def seen(ctx: Context, terminal_id: str, store_id: str | None, at_ms: int) -> None:
    """Remember when a terminal was last heard from (for the silence check)."""
    key = f"term:{terminal_id}"
    old = ctx.state.get(key)
    data: dict[str, Any] = dict(old) if old else {"last": 0, "store": store_id, "silent_for": None}
    if at_ms > data["last"]:
        data["last"] = at_ms
    if store_id:
        data["store"] = store_id
    if data != old:
        ctx.state.put(key, data)


def store_of(ctx: Context, terminal_id: str) -> str | None:
    data = ctx.state.get(f"term:{terminal_id}")
    return data.get("store") if data else None


def applied_batch(ctx: Context, terminal_id: str, entries: Sequence[JournalEntry], received_ms: int) -> list[Finding]:
    """Check an applied batch's chain continuity and its clock against the ledger's and against itself."""
    out: list[Finding] = []
    key = f"chain:{terminal_id}"
    chain: dict[str, Any] | None = ctx.state.get(key)
    skew_ms = ctx.thresholds.clock_skew_s * 1000
    future_ms = received_ms + skew_ms
    skewed: list[str] = []
    # the previous entry: from the stored chain for the first entry, then the batch's own (its hash as bytes, so
    # only the stored one is compared in hex)
    has_prev = chain is not None
    prev_seq, prev_wall, prev_mono = (chain["seq"], chain["wall"], chain["mono"]) if chain is not None else (0, 0, 0)
    prev_hash_hex: str | None = chain["hash"] if chain is not None else None
    prev_hash = b""
    for entry in entries:
        if has_prev:
            if entry.seq != prev_seq + 1:
                out.append(Finding(
                    "sequence_gap", Severity.WARNING, SubjectType.TERMINAL, terminal_id, received_ms,
                    (f"{terminal_id}:{prev_seq}", op_id(entry)),
                    f"terminal {terminal_id} skipped from seq {prev_seq} to {entry.seq}",
                    terminal_id=terminal_id))
            elif entry.prev_hash != prev_hash if prev_hash_hex is None else entry.prev_hash.hex() != prev_hash_hex:
                out.append(Finding(
                    "broken_chain", Severity.CRITICAL, SubjectType.TERMINAL, terminal_id, received_ms,
                    (op_id(entry),), f"entry {op_id(entry)} does not link to the previous entry's hash",
                    terminal_id=terminal_id))
            elif skew_ms and entry.mono_ns > prev_mono:
                # same boot (monotonic clock still rising): wall time must advance as much as monotonic time
                wall_step = entry.wall_ms - prev_wall
                mono_step = (entry.mono_ns - prev_mono) // 1_000_000
                if abs(wall_step - mono_step) > skew_ms:
                    skewed.append(op_id(entry))
        elif entry.seq == 1 and entry.prev_hash != bytes(32):
            out.append(Finding("broken_chain", Severity.CRITICAL, SubjectType.TERMINAL, terminal_id, received_ms,
                               (op_id(entry),), f"first entry of terminal {terminal_id} is not a genesis entry",
                               terminal_id=terminal_id))
        if skew_ms and entry.wall_ms > future_ms:
            skewed.append(op_id(entry))
        has_prev, prev_hash_hex = True, None
        prev_seq, prev_hash, prev_wall, prev_mono = entry.seq, entry.hash, entry.wall_ms, entry.mono_ns
    if prev_hash_hex is None and has_prev:
        chain = {"seq": prev_seq, "hash": prev_hash.hex(), "wall": prev_wall, "mono": prev_mono}
    if chain is not None:
        ctx.state.put(key, chain)
    if skewed:
        out.append(Finding("clock_skew", Severity.WARNING, SubjectType.TERMINAL, terminal_id, received_ms,
                           tuple(dict.fromkeys(skewed))[:20],
                           f"terminal {terminal_id} stamped entries off the real time by more than "
                           f"{ctx.thresholds.clock_skew_s} s", count=len(skewed), terminal_id=terminal_id))
    return out


def rejected_batch(ctx: Context, terminal_id: str | None, reason: str, detail: str, seqs: Sequence[int],
                   received_ms: int) -> list[Finding]:
    rule, severity = REJECT_RULES.get(reason, ("rejected_batch", Severity.WARNING))
    subject = terminal_id or "unknown"
    evidence = tuple(f"{subject}:{s}" for s in seqs[:20])
    text = f"batch from terminal {subject} refused: {reason}" + (f" ({detail})" if detail else "")
    return [Finding(rule, severity, SubjectType.TERMINAL, subject, received_ms, evidence, text,
                    terminal_id=terminal_id)]


def quarantined(terminal_id: str, held: Sequence[Quarantined], received_ms: int) -> list[Finding]:
    """Entries a terminal signed that the ledger would not apply (``ledger.semantics``): whoever holds the
    terminal's key is sending what no till makes."""
    codes = sorted({q.code for q in held})
    first = held[0]
    evidence = tuple(f"{terminal_id}:{q.seq}" for q in held[:20])
    text = (f"terminal {terminal_id} sent {len(held)} entr{'y' if len(held) == 1 else 'ies'} the ledger "
            f"quarantined ({', '.join(codes)}); first: seq {first.seq}, {first.reason}")
    return [Finding("quarantined_entry", Severity.CRITICAL, SubjectType.TERMINAL, terminal_id, received_ms, evidence,
                    text, count=len(held), terminal_id=terminal_id)]


def unauthenticated(source: str, what: str, reason: str, claimed: str | None, received_ms: int) -> Finding:
    """Requests no enrolled terminal signed, from one network source (``ledger.noise`` reports the first of
    each window only; the alert store merges them per source)."""
    claim = f", claiming terminal {claimed}" if claimed else ""
    return Finding("unauthenticated_refusals", Severity.WARNING, SubjectType.SOURCE, source, received_ms, (),
                   f"{source} sent {what} requests no enrolled terminal signed ({reason}{claim}); the audit log "
                   "counts them per window")


def clock_report(ctx: Context, terminal_id: str, terminal_clock_ms: int | None, received_ms: int) -> list[Finding]:
    """A terminal's clock reading ahead of the ledger's.

    Only the forward direction is judged: ingest reports the newest entry's wall time as the terminal's clock,
    and after a spell offline that is legitimately far in the past. A clock set back shows up instead as a
    wall-time jump against the monotonic clock (``applied_batch``).
    """
    skew_ms = ctx.thresholds.clock_skew_s * 1000
    if terminal_clock_ms is None or not skew_ms or terminal_clock_ms - received_ms <= skew_ms:
        return []
    off_s = (terminal_clock_ms - received_ms) // 1000
    return [Finding("clock_skew", Severity.WARNING, SubjectType.TERMINAL, terminal_id, received_ms, (),
                    f"terminal {terminal_id} clock is {off_s:+d} s off the ledger's", terminal_id=terminal_id)]


def silent_terminals(ctx: Context, now_ms: int) -> list[Finding]:
    """Active terminals not heard from for ``terminal_silent_s``; each silence is reported once.

    Enrolled terminals come from the ledger too (an enrolled terminal never heard from since is silent as well);
    a disabled or revoked terminal is expected to be quiet and is not reported.
    """
    limit = ctx.thresholds.terminal_silent_s * 1000
    if limit <= 0:
        return []
    enrolled = ctx.view.terminals()
    for terminal_id, (status, store_id, last_seen) in enrolled.items():
        if status == "active" and last_seen is not None:
            seen(ctx, terminal_id, store_id, last_seen)
    out: list[Finding] = []
    for key, data in ctx.state.scan("term:"):
        terminal_id = key.split(":", 1)[1]
        if terminal_id in enrolled and enrolled[terminal_id][0] != "active":
            continue
        last = int(data["last"])
        if now_ms - last >= limit and data.get("silent_for") != last:
            out.append(Finding(
                "terminal_silent", Severity.WARNING, SubjectType.TERMINAL, terminal_id, now_ms, (),
                f"terminal {terminal_id} silent for {(now_ms - last) // 1000} s", terminal_id=terminal_id,
                window=f"since{last}"))
            ctx.state.put(key, {**data, "silent_for": last})
    return out
