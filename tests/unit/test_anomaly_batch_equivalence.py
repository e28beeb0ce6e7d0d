"""The batched detectors against a straightforward reference: the same findings, in the same order, and the same
state as running every detector on one entry after another.

The engine groups a batch's entries per card and per member (``ledger.anomaly.batch``), counts a card's window
hits together (``window.hits``), keeps a member's amount history sorted through a batch, and merges findings back
into entry order; ``record_findings`` merges evidence with a set beside the list. The reference below is the
plain form of the same rules, one entry and one hit at a time, kept here so the fast forms always answer to it.
"""

from __future__ import annotations

import bisect
import json
import random
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit.journal import EntryKind, JournalEntry
from ledger import alert_store
from ledger.anomaly import AnomalyEngine, MemoryState, Thresholds, cashiers, robust, terminals, window
from ledger.anomaly.cards import (
    BLOCKED_REASONS,
    CARD_USE_KINDS,
    DAY_MS,
    FORGED_REASONS,
    HOUR_MS,
    MINUTE_MS,
    SV_KINDS,
    sv_change,
)
from ledger.anomaly.context import Context
from ledger.anomaly.model import Finding, Severity, SubjectType, op_id
from ledger.events import BatchApplied, BatchRejected, LedgerEvent, Quarantined, TerminalSeen
from tests.fixtures.alerts import Chain

T0 = 1_790_000_000_000

# -- the reference: one hit, one entry, one detector at a time ---------------------------------------------------


def ref_hit(state: MemoryState, key: str, at_ms: int, evidence: str, threshold: int, window_ms: int,
            accept: Callable[[list[str]], bool] | None = None) -> window.Burst | None:
    if threshold <= 0:
        return None
    data: dict[str, Any] = state.get(key) or {"t": [], "e": [], "until": None}
    until = data.get("until")
    if until is not None and until - 2 * window_ms <= at_ms <= until:
        data["until"] = max(until, at_ms + window_ms)
        state.put(key, data)
        return window.Burst(1, (evidence,), False, at_ms)
    times: list[int] = data["t"]
    ids: list[str] = data["e"]
    pos = bisect.bisect_right(times, at_ms)
    times.insert(pos, at_ms)
    ids.insert(pos, evidence)
    drop = bisect.bisect_left(times, times[-1] - window_ms - window.LATE_MS)
    del times[:drop]
    del ids[:drop]
    if len(times) > 4 * threshold + 8:
        del times[: len(times) - (4 * threshold + 8)]
        del ids[: len(ids) - len(times)]
    best_lo = best_hi = 0
    for lo in range(bisect.bisect_left(times, at_ms - window_ms + 1), bisect.bisect_right(times, at_ms)):
        hi = bisect.bisect_right(times, times[lo] + window_ms - 1)
        if hi - lo > best_hi - best_lo:
            best_lo, best_hi = lo, hi
    if best_hi - best_lo >= threshold and (accept is None or accept(ids[best_lo:best_hi])):
        chosen = ids[best_lo:best_hi]
        since = times[best_lo]
        del times[best_lo:best_hi]
        del ids[best_lo:best_hi]
        data["until"] = at_ms + window_ms
        state.put(key, data)
        return window.Burst(len(chosen), tuple(chosen[-window.MAX_EVIDENCE:]), True, since)
    state.put(key, data)
    return None


def _spread(evidence: list[str]) -> bool:
    return len({e.rsplit(":", 1)[0] for e in evidence}) >= 2


def ref_forged(ctx: Context, state: MemoryState, e: JournalEntry, store_id: str) -> list[Finding]:
    if e.kind != EntryKind.CARD_REJECT or e.payload.get("reason") not in FORGED_REASONS:
        return []
    out = []
    th = ctx.thresholds
    burst = ref_hit(state, f"forged_t:{e.terminal_id}", e.wall_ms, op_id(e), th.forged_taps_per_terminal_10min,
                    10 * MINUTE_MS)
    if burst:
        out.append(Finding("forged_burst", Severity.CRITICAL, SubjectType.TERMINAL, e.terminal_id, e.wall_ms,
                           burst.evidence, f"forged card taps at terminal {e.terminal_id}", burst.count,
                           terminal_id=e.terminal_id, since_ms=burst.since_ms))
    burst = ref_hit(state, f"forged_s:{store_id}", e.wall_ms, op_id(e), th.forged_taps_per_store_10min,
                    10 * MINUTE_MS, accept=_spread)
    if burst:
        out.append(Finding("forged_burst_store", Severity.CRITICAL, SubjectType.STORE, store_id, e.wall_ms,
                           burst.evidence, f"forged card taps across terminals of store {store_id}", burst.count,
                           terminal_id=e.terminal_id, since_ms=burst.since_ms))
    return out


def ref_blocked(ctx: Context, state: MemoryState, e: JournalEntry) -> list[Finding]:
    card = e.payload.get("card")
    if not isinstance(card, str):
        return []
    if e.kind == EntryKind.CARD_REJECT and e.payload.get("reason") in BLOCKED_REASONS:
        burst = ref_hit(state, f"blocked:{card}", e.wall_ms, op_id(e), ctx.thresholds.revoked_taps_per_card_day,
                        DAY_MS)
        return [Finding("revoked_card_use", Severity.WARNING, SubjectType.CARD, card, e.wall_ms, burst.evidence,
                        f"revoked or held card {card} presented again", burst.count, terminal_id=e.terminal_id,
                        since_ms=burst.since_ms)] if burst else []
    if e.kind in CARD_USE_KINDS:
        since = ctx.view.card_blocked_since(card)
        if since is not None and e.wall_ms > since:
            return [Finding("revoked_card_use", Severity.CRITICAL, SubjectType.CARD, card, e.wall_ms, (op_id(e),),
                            f"card {card} was used after it was revoked or put on hold", terminal_id=e.terminal_id)]
    return []


def ref_cloned(ctx: Context, state: MemoryState, e: JournalEntry, store_id: str) -> list[Finding]:
    card = e.payload.get("card")
    if not isinstance(card, str):
        return []
    th = ctx.thresholds
    if e.kind == EntryKind.CARD_REJECT and e.payload.get("reason") == "challenge_failed":
        burst = ref_hit(state, f"challenge:{card}", e.wall_ms, op_id(e), th.challenge_failures_per_card_day, DAY_MS)
        return [Finding("cloned_card", Severity.CRITICAL, SubjectType.CARD, card, e.wall_ms, burst.evidence,
                        f"card {card} failed its anti-copy challenge", burst.count, terminal_id=e.terminal_id,
                        since_ms=burst.since_ms)] if burst else []
    if e.kind not in CARD_USE_KINDS or th.clone_min_interval_s <= 0:
        return []
    seen: dict[str, list[Any]] = state.get(f"seen:{card}") or {}
    out = []
    for other_store, (other_ms, other_op) in seen.items():
        if other_store != store_id and abs(e.wall_ms - other_ms) < th.clone_min_interval_s * 1000:
            out.append(Finding("cloned_card", Severity.CRITICAL, SubjectType.CARD, card, e.wall_ms,
                               (other_op, op_id(e)), f"card {card} used at stores {other_store} and {store_id} "
                               f"{abs(e.wall_ms - other_ms) // 1000} s apart", terminal_id=e.terminal_id))
            break
    if store_id not in seen or e.wall_ms >= seen[store_id][0]:
        seen[store_id] = [e.wall_ms, op_id(e)]
    if len(seen) > 6:
        del seen[min(seen, key=lambda s: seen[s][0])]
    state.put(f"seen:{card}", seen)
    return out


def ref_velocity(ctx: Context, state: MemoryState, e: JournalEntry) -> list[Finding]:
    card = e.payload.get("card")
    if e.kind not in CARD_USE_KINDS or not isinstance(card, str):
        return []
    th = ctx.thresholds
    hour = ref_hit(state, f"vel_hour:{card}", e.wall_ms, op_id(e), th.ops_per_card_hour, HOUR_MS)
    day = ref_hit(state, f"vel_day:{card}", e.wall_ms, op_id(e), th.ops_per_card_day, DAY_MS)
    if hour is not None:
        label, limit, burst, count = "hour", th.ops_per_card_hour, hour, hour.count
    elif day is not None:
        firing = (state.get(f"vel_hour:{card}") or {}).get("until") is not None
        label, limit, burst, count = "day", th.ops_per_card_day, day, 1 if firing else day.count
    else:
        return []
    return [Finding("velocity", Severity.WARNING, SubjectType.CARD, card, e.wall_ms, burst.evidence,
                    f"card {card} used {limit} or more times within one {label}", count, terminal_id=e.terminal_id,
                    since_ms=burst.since_ms)]


def ref_unusual(ctx: Context, state: MemoryState, e: JournalEntry) -> list[Finding]:
    member = e.payload.get("member")
    if e.kind != EntryKind.SALE or not isinstance(member, str):
        return []
    net = e.payload.get("net")
    amount = net if type(net) is int else 0
    th = ctx.thresholds
    data: dict[str, Any] = state.get(f"amounts:{member}") or {"a": []}
    history: list[int] = data["a"]
    if len(history) >= max(th.amount_min_history, 1) and robust.is_unusual_high(
            amount, history, th.amount_robust_z_x100, th.amount_min_ratio_x100):
        return [Finding("unusual_amount", Severity.WARNING, SubjectType.MEMBER, member, e.wall_ms, (op_id(e),),
                        f"sale of {amount} minor units by member {member} against a usual "
                        f"{robust.median2(history) // 2}", terminal_id=e.terminal_id)]
    history.append(amount)
    del history[: max(0, len(history) - th.amount_history_size)]
    state.put(f"amounts:{member}", data)
    return []


def _texts(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def ref_coupons(state: MemoryState, e: JournalEntry) -> list[Finding]:
    if e.kind == EntryKind.VOID:
        for coupon in _texts(e.payload.get("coupons_back")):
            state.delete(f"coupon:{coupon}")
        return []
    if e.kind != EntryKind.SALE:
        return []
    out = []
    for coupon in _texts(e.payload.get("coupons")):
        first = state.get(f"coupon:{coupon}")
        if first is None:
            state.put(f"coupon:{coupon}", {"op": op_id(e)})
            continue
        card = e.payload.get("card")
        out.append(Finding("coupon_reuse", Severity.CRITICAL, SubjectType.CARD,
                           card if isinstance(card, str) else coupon, e.wall_ms, (str(first.get("op")), op_id(e)),
                           f"single-use coupon {coupon} was applied again by {op_id(e)} (first by "
                           f"{first.get('op')})", terminal_id=e.terminal_id))
    return out


def ref_double_spend(ctx: Context, state: MemoryState, entries: Sequence[JournalEntry]) -> list[Finding]:
    spends: dict[str, list[JournalEntry]] = {}
    for e in entries:
        member = e.payload.get("member")
        if e.kind in SV_KINDS and isinstance(member, str) and sv_change(e) < 0:
            spends.setdefault(member, []).append(e)
    out = []
    for member, spent in spends.items():
        data: dict[str, Any] = state.get(f"spends:{member}") or {"e": []}
        data["e"] = (data["e"] + [op_id(e) for e in spent])[-window.MAX_EVIDENCE:]
        state.put(f"spends:{member}", data)
        balance = ctx.view.balance_minor(member)
        if balance is None or balance >= 0:
            continue
        last = spent[-1]
        card = last.payload.get("card")
        card_id = card if isinstance(card, str) else member
        out.append(Finding(
            "double_spend", Severity.CRITICAL, SubjectType.CARD, card_id, last.wall_ms, tuple(data["e"]),
            f"stored value of card {card_id} is {balance} minor units below zero after merging terminals "
            f"{', '.join(sorted({e.rsplit(':', 1)[0] for e in data['e']}))}", terminal_id=last.terminal_id,
            hold_card=card_id if ctx.thresholds.double_spend_hold and isinstance(card, str) else None))
    return out


def ref_chain(ctx: Context, state: MemoryState, tid: str, entries: Sequence[JournalEntry],
              received_ms: int) -> list[Finding]:
    out = []
    chain: dict[str, Any] | None = state.get(f"chain:{tid}")
    skew_ms = ctx.thresholds.clock_skew_s * 1000
    skewed: list[str] = []
    for e in entries:
        if chain is not None:
            if e.seq != chain["seq"] + 1:
                out.append(Finding("sequence_gap", Severity.WARNING, SubjectType.TERMINAL, tid, received_ms,
                                   (f"{tid}:{chain['seq']}", op_id(e)),
                                   f"terminal {tid} skipped from seq {chain['seq']} to {e.seq}", terminal_id=tid))
            elif e.prev_hash.hex() != chain["hash"]:
                out.append(Finding("broken_chain", Severity.CRITICAL, SubjectType.TERMINAL, tid, received_ms,
                                   (op_id(e),), f"entry {op_id(e)} does not link to the previous entry's hash",
                                   terminal_id=tid))
            elif skew_ms and e.mono_ns > chain["mono"] and \
                    abs((e.wall_ms - chain["wall"]) - (e.mono_ns - chain["mono"]) // 1_000_000) > skew_ms:
                skewed.append(op_id(e))
        elif e.seq == 1 and e.prev_hash != bytes(32):
            out.append(Finding("broken_chain", Severity.CRITICAL, SubjectType.TERMINAL, tid, received_ms,
                               (op_id(e),), f"first entry of terminal {tid} is not a genesis entry", terminal_id=tid))
        if skew_ms and e.wall_ms > received_ms + skew_ms:
            skewed.append(op_id(e))
        chain = {"seq": e.seq, "hash": e.hash.hex(), "wall": e.wall_ms, "mono": e.mono_ns}
    if chain is not None:
        state.put(f"chain:{tid}", chain)
    if skewed:
        out.append(Finding("clock_skew", Severity.WARNING, SubjectType.TERMINAL, tid, received_ms,
                           tuple(dict.fromkeys(skewed))[:20], f"terminal {tid} stamped entries off the real time by "
                           f"more than {ctx.thresholds.clock_skew_s} s", count=len(skewed), terminal_id=tid))
    return out


def reference(ctx: Context, state: MemoryState, event: LedgerEvent) -> list[Finding]:
    """The engine as one detector call after another (only applied batches differ from ``on_event``)."""
    if not isinstance(event, BatchApplied):
        return AnomalyEngine(ctx.thresholds, state, ctx.view).on_event(event)
    terminals.seen(ctx, event.terminal_id, event.store_id, event.received_ms)
    out = ref_chain(ctx, state, event.terminal_id, event.entries, event.received_ms)
    if event.quarantined:
        out += terminals.quarantined(event.terminal_id, event.quarantined, event.received_ms)
    for e in event.applied_entries:
        out += ref_forged(ctx, state, e, event.store_id)
        out += ref_blocked(ctx, state, e)
        out += ref_cloned(ctx, state, e, event.store_id)
        out += ref_velocity(ctx, state, e)
        out += ref_unusual(ctx, state, e)
        out += ref_coupons(state, e)
        if e.kind in cashiers.CASHIER_KINDS or e.payload.get("manual") is True:
            out += cashiers.cashier_abuse(ctx, e)
    return out + ref_double_spend(ctx, state, event.applied_entries)


# -- a seeded stream of batches ----------------------------------------------------------------------------------

class View:
    def balance_minor(self, member_id: str) -> int | None:
        return -3 if member_id.endswith(("1", "4")) else None if member_id.endswith("9") else 10

    def card_blocked_since(self, card_id: str) -> int | None:
        return T0 + 5 * HOUR_MS if card_id.endswith(("2", "7")) else None

    def terminals(self) -> dict[str, tuple[str, str, int | None]]:
        return {"T0": ("active", "S0", T0), "T5": ("disabled", "S2", None)}


def _payload(rng: random.Random, card: str, member: str) -> tuple[str, dict[str, Any]]:
    roll = rng.random()
    manual = {"manual": True} if rng.random() < 0.05 else {}
    coupons = [f"cp{i}" for i in rng.sample(range(12), rng.choice([0, 0, 0, 1, 2]))]
    if roll < 0.5:
        net = rng.choice([rng.randint(100, 900), rng.randint(800, 1200), rng.randint(1, 200_000), "odd"])
        sv = net if isinstance(net, int) and rng.random() < 0.4 else 0
        return "sale", {"card": card if rng.random() < 0.98 else None, "member": member, "net": net, "sv": sv,
                        "tender": "sv" if sv else "cash", "coupons": coupons, **manual}
    if roll < 0.57:
        return "topup", {"card": card, "member": member, "amount": rng.randint(1, 500) * 100, "bonus": 0}
    if roll < 0.62:
        return "refund", {"card": card, "member": member, "amount": 100, "sv": rng.choice([0, 50, -20])}
    if roll < 0.66:
        return "void", {"card": card, "member": member, "sv": rng.choice([0, 70]), "coupons_back": coupons}
    if roll < 0.69:
        return "membership_fee", {"card": card, "member": member, "amount": 5000,
                                  "tender": rng.choice(["sv", "cash"])}
    if roll < 0.71:
        return "redeem", {"card": card, "member": member, "points": 10}
    if roll < 0.88:
        reason = rng.choice(["bad_signature", "unknown_key", "revoked", "on_hold", "challenge_failed", "expired"])
        return "card_reject", {"reason": reason, "card": rng.choice([card, card, None]), **manual}
    if roll < 0.94:
        return rng.choice(["shift_open", "shift_close"]), {"shift": f"s{rng.randint(0, 4)}"}
    return "cashier_event", {"event": "sign_in", **manual}


def stream(seed: int, batches: int) -> list[LedgerEvent]:
    """Several terminals in three stores, a few dozen cards, batches from 1 to 120 entries whose times jump back
    and forth (late batches, stragglers days old), quarantined entries, refused batches, clock reports."""
    rng = random.Random(seed)
    chains = [Chain(f"T{i}", f"S{i % 3}", cashier=f"c{i}") for i in range(6)]
    now = T0
    out: list[LedgerEvent] = []
    for number in range(batches):
        chain = rng.choice(chains)
        base = now - rng.randint(0, 2 * HOUR_MS) if rng.random() < 0.2 else now
        entries = []
        for _ in range(rng.choice([1, 2, 6, 25, 60, 120])):
            i = rng.randrange(24)
            at = base + rng.randint(0, 2 * MINUTE_MS) - (rng.randint(0, 3 * DAY_MS) if rng.random() < 0.02 else 0)
            kind, payload = _payload(rng, f"card-{i}", f"m-{i}")
            entries.append(chain.add(kind, payload, at, cashier=rng.choice(["", "", None, "c9"])))
        if rng.random() < 0.03:
            chain.seq += 1  # the next batch starts after a gap
        held: tuple[Quarantined, ...] = ()
        if rng.random() < 0.1 and len(entries) > 2:
            held = tuple(Quarantined(e.seq, "too_big", "amount") for e in sorted(rng.sample(entries, 2),
                                                                                  key=lambda e: e.seq))
        received = max(e.wall_ms for e in entries) + rng.randint(0, 1_000_000)
        if rng.random() < 0.1:
            out.append(TerminalSeen(chain.terminal_id, chain.store_id, received + rng.randint(0, 900_000), received))
        if rng.random() < 0.03:
            out.append(BatchRejected(chain.terminal_id, rng.choice(["replayed", "tampered", "odd"]), "", received,
                                     [1, 2]))
        out.append(BatchApplied(chain.terminal_id, chain.store_id, f"b{number}", entries, received, held))
        now += rng.randint(10_000, 900_000)
    return out


THRESHOLDS = [
    Thresholds(),
    Thresholds(ops_per_card_hour=4, ops_per_card_day=9, amount_min_history=3, amount_history_size=7,
               refunds_norm_min_shifts=2, revoked_taps_per_card_day=1, forged_taps_per_store_10min=3,
               forged_taps_per_terminal_10min=2, manual_entries_per_cashier_shift=2,
               refunds_voids_per_cashier_shift=2, clone_min_interval_s=100_000),
    Thresholds(ops_per_card_hour=0, clone_min_interval_s=0, double_spend_hold=0, clock_skew_s=0,
               refunds_norm_mad_k_x100=0, amount_min_history=0, amount_history_size=0),
]


def _reload(state: MemoryState) -> None:
    """What a database-backed store hands out after its cache is dropped: the same values, new objects."""
    state.data = json.loads(json.dumps(state.data))


def test_the_batched_engine_finds_and_remembers_exactly_what_the_reference_does() -> None:
    events = stream(seed=13, batches=220)
    rules: set[str] = set()
    for thresholds in THRESHOLDS:
        fast_state, ref_state = MemoryState(), MemoryState()
        engine = AnomalyEngine(thresholds, fast_state, View())
        ref_ctx = Context(thresholds=thresholds, state=ref_state, view=View())
        for number, event in enumerate(events):
            found = engine.on_event(event)
            assert found == reference(ref_ctx, ref_state, event), f"event {number}"
            assert fast_state.data == ref_state.data, f"state after event {number}"
            rules.update(f.rule for f in found)
            if number % 3 == 0:
                _reload(fast_state)
                _reload(ref_state)
    # the stream reaches every card, member and terminal rule the batch path changes
    assert {"velocity", "unusual_amount", "cloned_card", "revoked_card_use", "coupon_reuse", "double_spend",
            "forged_burst", "forged_burst_store", "cashier_refunds", "cashier_manual_entries", "sequence_gap",
            "clock_skew", "quarantined_entry"} <= rules


def test_state_keys_name_every_key_the_detectors_read_for_a_batch() -> None:
    class Recording(MemoryState):
        def __init__(self) -> None:
            super().__init__()
            self.read: set[str] = set()

        def get(self, key: str) -> dict[str, Any] | None:
            self.read.add(key)
            return super().get(key)

    for event in stream(seed=5, batches=60):
        state = Recording()
        AnomalyEngine(THRESHOLDS[0], state, View()).on_event(event)
        # a cashier's shift keys depend on state and are read when needed; everything else is known up front
        known = {k for k in state.read if "@" not in k}
        assert known <= AnomalyEngine.state_keys(event)


# -- window hits together and one at a time ----------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3 * DAY_MS), st.integers(0, 4)), min_size=1, max_size=90),
       st.integers(0, 12), st.sampled_from([10 * MINUTE_MS, HOUR_MS, DAY_MS]), st.booleans(),
       st.lists(st.integers(1, 30), min_size=1, max_size=6))
def test_hits_together_equal_hits_one_by_one(events: list[tuple[int, int]], threshold: int, window_ms: int,
                                             spread: bool, chunks: list[int]) -> None:
    hits = [(T0 + at, f"T{terminal}:{i}") for i, (at, terminal) in enumerate(events)]
    accept = _spread if spread else None
    ref_state, fast_state = MemoryState(), MemoryState()
    expected = [ref_hit(ref_state, "k", at, ev, threshold, window_ms, accept) for at, ev in hits]
    got: list[window.Burst | None] = []
    start = 0
    for size in chunks * (len(hits) // sum(chunks) + 1):  # uneven batches, carried over in the state
        got += window.hits(fast_state, "k", hits[start:start + size], threshold, window_ms, accept)
        start += size
        if start >= len(hits):
            break
    assert got == expected
    assert fast_state.data == ref_state.data


# -- grouping findings before they become alerts -----------------------------------------------------------------

def _ref_group(findings: Sequence[Finding]) -> list[tuple[Any, ...]]:
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for f in findings:
        key = (f.rule, f.subject_type.value, f.subject_id, f.window)
        if key not in groups:
            groups[key] = [f, f.count, f.first_ms, f.at_ms, list(f.evidence), f.severity]
            continue
        g = groups[key]
        g[1] += f.count
        g[2] = min(g[2], f.first_ms)
        g[3] = max(g[3], f.at_ms)
        g[4] = alert_store._cap(g[4] + list(f.evidence))
        if f.severity.rank > g[5].rank:
            g[5] = f.severity
    return [tuple(g) for g in groups.values()]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["velocity", "forged_burst"]), st.sampled_from(["c1", "c2"]),
                          st.lists(st.integers(0, 70), min_size=0, max_size=3), st.integers(0, 10_000),
                          st.none() | st.integers(0, 10_000), st.sampled_from(list(Severity))),
                max_size=300))
def test_grouping_merges_evidence_as_capping_the_whole_list_would(
        raw: list[tuple[str, str, list[int], int, int | None, Severity]]) -> None:
    findings = [Finding(rule, severity, SubjectType.CARD, subject, at, tuple(f"T:{i}" for i in ids), "s",
                        since_ms=since) for rule, subject, ids, at, since, severity in raw]
    got = [(g.finding, g.count, g.first_ms, g.last_ms, g.evidence, g.severity) for g in alert_store._group(findings)]
    assert got == _ref_group(findings)


def test_an_evidence_id_dropped_from_the_middle_comes_back_when_seen_again() -> None:
    rng = random.Random(7)
    # one busy subject: one id per finding from a pool wider than the evidence kept, so ids leave and come back
    findings = [Finding("velocity", Severity.WARNING, SubjectType.CARD, "c1", i, (f"T:{rng.randrange(90)}",), "s")
                for i in range(600)]
    got = [(g.finding, g.count, g.first_ms, g.last_ms, g.evidence, g.severity) for g in alert_store._group(findings)]
    assert got == _ref_group(findings)
