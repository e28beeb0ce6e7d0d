"""``cardpos ledger verify``: recompute everything derived and check every invariant.

Checks:
- every terminal's chain (including the ledger's own): sequences 1..n without gaps, each ``prev_hash`` the
  previous entry's hash, each hash recomputed from the stored fields, the terminal's head matching the last
  entry;
- every member: the fold of its entries (``cardkit.core.state.apply_entry``) equals the stored projection;
  the balance equals opening + top-ups (with bonus) − stored value spent + stored value refunded ± voids −
  fees paid from stored value; points likewise (earned − redeemed + given back − taken back − gifts);
- no entry the fold refused, no money entry for a member the ledger does not know;
- no single-use coupon applied by two sales (unless the first was voided with the coupon given back);
- no negative balance unless one of the member's entries was flagged ``offline`` (offline spending at two
  terminals can overdraw; that is reported by the anomaly engine, not a ledger fault).
"""

from __future__ import annotations

from typing import Any

import cbor2

from cardkit.core.state import MONEY_KINDS, MemberState
from cardkit.journal import GENESIS_HASH, EntryKind, chain_hash, entry_body
from ledger import pii, projection, store
from ledger.errors import LedgerError


def verify_chains() -> list[str]:
    problems: list[str] = []
    heads = {t.terminal_id: t for t in store.Terminal.select()}
    query = store.AppliedEntry.select().order_by(store.AppliedEntry.terminal_id, store.AppliedEntry.seq)
    terminal_id = ""
    expect_seq, prev = 1, GENESIS_HASH
    broken: set[str] = set()
    seen: dict[str, tuple[int, bytes]] = {}
    for row in query.iterator():
        if row.terminal_id != terminal_id:
            terminal_id, expect_seq, prev = str(row.terminal_id), 1, GENESIS_HASH
        if terminal_id in broken:
            continue
        seq = int(row.seq)
        stored_hash = bytes(row.hash)
        if seq != expect_seq:
            problems.append(f"terminal {terminal_id}: entry {expect_seq} is missing (next stored is {seq})")
            broken.add(terminal_id)
            continue
        if bytes(row.prev_hash) != prev:
            problems.append(f"terminal {terminal_id}: entry {seq} does not link to entry {seq - 1}")
            broken.add(terminal_id)
            continue
        try:
            payload = pii.entry_payload(terminal_id, seq, row.payload, row.pii)  # the hash covers it all
        except LedgerError as exc:
            problems.append(f"terminal {terminal_id}: entry {seq} cannot be read ({exc})")
            broken.add(terminal_id)
            continue
        body = entry_body(terminal_id, seq, str(row.uuid), int(row.wall_ms), int(row.mono_ns), row.cashier_id,
                          str(row.kind), payload)
        if chain_hash(prev, body) != stored_hash:
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


def verify_members() -> list[str]:
    problems: list[str] = []
    coupons = _CouponUses()
    members = {m.member_id: m for m in store.Member.select()}
    projections = {p.member_id: p for p in store.MemberProjection.select()}
    folds: dict[str, projection.FoldResult] = {
        mid: projection.FoldResult(projection.opening_state(m)) for mid, m in members.items()}
    sums = {mid: _Sums(int(m.opening_balance), int(m.opening_points)) for mid, m in members.items()}
    query = (store.AppliedEntry.select(store.AppliedEntry.terminal_id, store.AppliedEntry.seq,
                                       store.AppliedEntry.kind, store.AppliedEntry.payload,
                                       store.AppliedEntry.member_id)
             .where(store.AppliedEntry.member_id.is_null(False)).order_by(store.AppliedEntry.id))
    for row in query.iterator():
        mid = str(row.member_id)
        kind = str(row.kind)
        if mid not in members:
            if kind in MONEY_KINDS:
                problems.append(f"entry {row.terminal_id}/{row.seq} ({kind}) is for member {mid}, "
                                "whom the ledger does not know")
            continue
        payload = cbor2.loads(bytes(row.payload))
        coupons.add(f"{row.terminal_id}/{row.seq}", kind, payload)
        fold = folds[mid]
        refused_before = len(fold.refused)
        projection.fold_entries(fold.state, [(str(row.terminal_id), int(row.seq), kind, payload)], fold)
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
    return verify_chains() + verify_members()
