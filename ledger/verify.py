"""``cardpos ledger verify``: recompute everything derived and check every invariant.

Checks:
- every terminal's chain (including the ledger's own): sequences 1..n without gaps, each ``prev_hash`` the
  previous entry's hash, each hash recomputed from the stored fields, the terminal's head matching the last
  entry; a quarantined entry (journaled, not applied: ``ledger.semantics``) is a link of its chain like any
  other, checked from the body it was stored with;
- every applied entry passes the semantic checks the ingest makes before applying (``ledger.semantics``: the
  card is the member's, the member is served at the terminal's store, a refund or void names an original and
  returns no more than is left of it, amounts and times within bounds), judged in the order the ledger applied
  them and against the ledger's clock when each was applied;
- every member: the fold of its entries (``cardkit.core.state.apply_entry``) equals the stored projection;
  the balance equals opening + top-ups (with bonus) − stored value spent + stored value refunded ± voids −
  fees paid from stored value; points likewise (earned − redeemed + given back − taken back − gifts);
- no entry the fold refused, no money entry for a member the ledger does not know;
- no single-use coupon applied by two sales (unless the first was voided with the coupon given back);
- no negative balance unless one of the member's entries was flagged ``offline`` (offline spending at two
  terminals can overdraw; that is reported by the anomaly engine, not a ledger fault).
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterator
from typing import Any

import cbor2

from cardkit.core.state import MONEY_KINDS, MemberState
from cardkit.journal import GENESIS_HASH, EntryKind, JournalEntry, chain_hash, entry_body
from ledger import pii, projection, quarantine, store
from ledger import semantics as _semantics
from ledger.apply import LEDGER_TERMINAL_ID
from ledger.errors import LedgerError
from ledger.merchants import rules as merchant_rules

_Link = tuple[str, int, int, Any]  # terminal, seq, 0 applied / 1 quarantined, the row


def _links() -> Iterator[_Link]:
    """Every journaled entry (applied and quarantined), by terminal and seq."""
    applied = store.AppliedEntry.select().order_by(store.AppliedEntry.terminal_id, store.AppliedEntry.seq)
    held = store.QuarantinedEntry.select().order_by(store.QuarantinedEntry.terminal_id, store.QuarantinedEntry.seq)
    return heapq.merge(((str(r.terminal_id), int(r.seq), 0, r) for r in applied.iterator()),
                       ((str(r.terminal_id), int(r.seq), 1, r) for r in held.iterator()),
                       key=lambda link: (link[0], link[1], link[2]))


def _recomputed(terminal_id: str, seq: int, source: int, row: Any, prev: bytes) -> bytes:
    if source == 1:  # quarantined: the stored body is the canonical CBOR the hash covered
        return hashlib.sha256(prev + bytes(row.body)).digest()
    payload = pii.entry_payload(terminal_id, seq, row.payload, row.pii)  # the hash covers it all
    body = entry_body(terminal_id, seq, str(row.uuid), int(row.wall_ms), int(row.mono_ns), row.cashier_id,
                      str(row.kind), payload)
    return chain_hash(prev, body)


def verify_chains() -> list[str]:
    problems: list[str] = []
    heads = {t.terminal_id: t for t in store.Terminal.select()}
    terminal_id = ""
    expect_seq, prev = 1, GENESIS_HASH
    broken: set[str] = set()
    seen: dict[str, tuple[int, bytes]] = {}
    for tid, seq, source, row in _links():
        if tid != terminal_id:
            terminal_id, expect_seq, prev = tid, 1, GENESIS_HASH
        if terminal_id in broken:
            continue
        stored_hash = bytes(row.hash)
        if seq == expect_seq - 1 and source == 1:
            problems.append(f"terminal {terminal_id}: entry {seq} is both applied and quarantined")
            broken.add(terminal_id)
            continue
        if seq != expect_seq:
            problems.append(f"terminal {terminal_id}: entry {expect_seq} is missing (next stored is {seq})")
            broken.add(terminal_id)
            continue
        if bytes(row.prev_hash) != prev:
            problems.append(f"terminal {terminal_id}: entry {seq} does not link to entry {seq - 1}")
            broken.add(terminal_id)
            continue
        try:
            recomputed = _recomputed(terminal_id, seq, source, row, prev)
        except LedgerError as exc:
            problems.append(f"terminal {terminal_id}: entry {seq} cannot be read ({exc})")
            broken.add(terminal_id)
            continue
        if recomputed != stored_hash:
            problems.append(f"terminal {terminal_id}: entry {seq} was altered (its hash does not match)")
            broken.add(terminal_id)
            continue
        prev, expect_seq = stored_hash, seq + 1
        seen[terminal_id] = (seq, stored_hash)
    for tid, head in heads.items():
        last_seq, last_hash = seen.get(tid, (0, GENESIS_HASH))
        if tid in broken:
            continue
        if int(head.last_seq) != last_seq or bytes(head.last_hash) != last_hash:
            problems.append(f"terminal {tid}: the recorded head (entry {int(head.last_seq)}) does not match the "
                            f"stored entries (last {last_seq})")
    for tid in seen:
        if tid not in heads:
            problems.append(f"entries from terminal {tid}, which the ledger does not know")
    return problems


class _Sums:
    """Independent running totals, the way an accountant would add them up."""

    def __init__(self, balance: int, points: int) -> None:
        self.balance = balance
        self.points = points
        self.offline = False

    def add(self, kind: str, p: dict[str, Any]) -> None:
        if p.get("offline") is True:
            self.offline = True
        get = _int_getter(p)
        if kind == EntryKind.TOPUP:
            self.balance += get("amount") + get("bonus")
        elif kind == EntryKind.SALE:
            self.balance -= get("sv")
            self.points += get("pts_earn") - get("pts_redeem")
        elif kind in (EntryKind.REFUND, EntryKind.VOID):
            self.balance += get("sv")
            self.points += get("pts_back") - get("pts_rev")
        elif kind == EntryKind.REDEEM:
            self.points -= get("pts")
        elif kind == EntryKind.MEMBERSHIP_FEE and p.get("tender") == "sv":
            self.balance -= get("amount")


def _int_getter(p: dict[str, Any]) -> Any:
    def get(key: str) -> int:
        value = p.get(key, 0)
        return value if type(value) is int else 0

    return get


class _CouponUses:
    """Single-use coupons: each applied by at most one sale that was not voided with the coupon given back."""

    def __init__(self) -> None:
        self.holder: dict[str, str] = {}
        self.problems: list[str] = []

    def add(self, where: str, kind: str, p: dict[str, Any]) -> None:
        if kind == EntryKind.VOID:
            for coupon in _texts(p.get("coupons_back")):
                self.holder.pop(coupon, None)
        elif kind == EntryKind.SALE:
            for coupon in _texts(p.get("coupons")):
                if coupon in self.holder:
                    self.problems.append(f"coupon {coupon}: applied twice ({self.holder[coupon]} and {where})")
                else:
                    self.holder[coupon] = where


def _texts(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _referenced_originals() -> frozenset[str]:
    """The uuids refunds and voids name: the only sales and top-ups the semantic re-check must remember."""
    rows = (store.AppliedEntry.select(store.AppliedEntry.payload)
            .where(store.AppliedEntry.kind.in_([EntryKind.REFUND.value, EntryKind.VOID.value])).tuples())
    out: set[str] = set()
    for (payload,) in rows.iterator():
        orig = cbor2.loads(bytes(payload)).get("orig")
        if isinstance(orig, str):
            out.add(orig)
    return frozenset(out)


def verify_members(*, semantics: bool = True, folded: dict[str, MemberState] | None = None) -> list[str]:
    """The fold and the running totals of every member, and (unless ``semantics`` is off: benchmarks) the
    semantic checks of every applied entry, in one pass over the entries in the order the ledger applied them.
    ``folded``, when given, receives every member's state as the entries give it (settlement checks use it)."""
    problems: list[str] = []
    coupons = _CouponUses()
    members = {m.member_id: m for m in store.Member.select()}
    projections = {p.member_id: p for p in store.MemberProjection.select()}
    folds: dict[str, projection.FoldResult] = {
        mid: projection.FoldResult(projection.opening_state(m)) for mid, m in members.items()}
    sums = {mid: _Sums(int(m.opening_balance), int(m.opening_points)) for mid, m in members.items()}
    terminals = {str(t.terminal_id): quarantine.terminal_facts(t) for t in store.Terminal.select()}
    checker = (_semantics.Checker(limits=quarantine.current_limits(), members=quarantine.load_members(),
                                  cards=quarantine.load_cards(), track=_referenced_originals(),
                                  funders=merchant_rules.merchant_funders(None))
               if semantics else None)
    e = store.AppliedEntry
    query = (e.select(e.terminal_id, e.seq, e.uuid, e.wall_ms, e.mono_ns, e.cashier_id, e.kind, e.payload,
                      e.member_id, e.applied_ms)
             .order_by(e.id))
    for row in query.iterator():
        kind = str(row.kind)
        payload = cbor2.loads(bytes(row.payload))
        tid = str(row.terminal_id)
        terminal = terminals.get(tid)
        if checker is not None and terminal is not None and tid != LEDGER_TERMINAL_ID:
            entry = JournalEntry(terminal_id=tid, seq=int(row.seq), uuid=str(row.uuid), prev_hash=b"",
                                 wall_ms=int(row.wall_ms), mono_ns=int(row.mono_ns), cashier_id=row.cashier_id,
                                 kind=kind, payload=payload, hash=b"")
            verdict = checker.check(entry, terminal, int(row.applied_ms))
            if verdict is not None:
                problems.append(f"entry {tid}/{row.seq} ({kind}) was applied but the ledger would quarantine it "
                                f"now: {verdict.reason} ({verdict.code})")
            checker.applied(entry)
        if row.member_id is None:
            continue
        mid = str(row.member_id)
        if mid not in members:
            if kind in MONEY_KINDS:
                problems.append(f"entry {row.terminal_id}/{row.seq} ({kind}) is for member {mid}, "
                                "whom the ledger does not know")
            continue
        coupons.add(f"{row.terminal_id}/{row.seq}", kind, payload)
        fold = folds[mid]
        refused_before = len(fold.refused)
        projection.fold_entries(fold.state, [(tid, int(row.seq), kind, payload)], fold)
        if len(fold.refused) == refused_before:  # a refused entry is reported once, not again as a wrong total
            sums[mid].add(kind, payload)
    for mid in sorted(members):
        fold = folds[mid]
        state = fold.state
        for refused in fold.refused:
            problems.append(f"member {mid}: entry {refused}")
        total = sums[mid]
        if total.balance != state.balance:
            problems.append(f"member {mid}: balance {state.balance} does not equal top-ups minus spends plus "
                            f"refunds ({total.balance})")
        if total.points != state.points:
            problems.append(f"member {mid}: points {state.points} do not equal earned minus redeemed plus "
                            f"returned ({total.points})")
        if state.balance < 0 and not total.offline:
            problems.append(f"member {mid}: stored value is negative ({state.balance}) with no offline entry")
        row = projections.get(mid)
        if row is None:
            if fold.entries:
                problems.append(f"member {mid}: has entries but no projection")
            continue
        problems.extend(_compare(mid, state, row))
    if folded is not None:
        folded.update({mid: fold.state for mid, fold in folds.items()})
    return problems + coupons.problems


def _compare(mid: str, state: MemberState, row: store.MemberProjection) -> list[str]:
    problems = []
    columns = (int(row.balance), int(row.points), str(row.tier))
    if columns != (state.balance, state.points, state.tier.value):
        problems.append(f"member {mid}: projection says balance {columns[0]}, points {columns[1]}, tier "
                        f"{columns[2]} but the entries give {state.balance}, {state.points}, {state.tier.value}")
    try:
        cached = projection.state_from_row(row)
    except Exception as exc:  # a damaged JSON state is exactly what verify is for
        return [*problems, f"member {mid}: the projection's stored state is damaged ({exc})"]
    if cached != state:
        diffs = [name for name in ("balance", "points", "tier", "yearly_spend", "used_coupons", "fee_paid_until")
                 if getattr(cached, name) != getattr(state, name)]
        problems.append(f"member {mid}: projection state differs from the entries in {', '.join(diffs)}")
    return problems


def verify_all() -> list[str]:
    from ledger.settlement.checks import verify_settlement

    folded: dict[str, MemberState] = {}
    return verify_chains() + verify_members(folded=folded) + verify_settlement(folded)
