"""Refunds and voids anywhere in the program, each approved by a signed-in supervisor (issue 14).

The original is found in this terminal's journal or, online, fetched from the ledger (``terminal.sync.lookup``:
a signed answer with the original's amounts and what was refunded or voided against it at any terminal). What is
left to give back is then decided by the pure core:
- online, the ledger's figures plus this terminal's reversals the ledger has not received yet;
- offline, only originals recorded here, with what this terminal's journal says; an original recorded elsewhere
  is refused with the reason (``original_unavailable``).
The member's figures come from the cache, or from an online look-up for a member this terminal was not sent.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cardkit.core import loyalty
from cardkit.core.money import Money
from cardkit.errors import CardposError, DomainError
from cardkit.journal import EntryKind
from terminal.offline.cashiers import Cashier, Role, require_role
from terminal.service import receipt_lines
from terminal.service.authorization import AuthorizationPath, ask
from terminal.service.desk import Desk, member_state, record
from terminal.service.receipt import Receipt
from terminal.service.taps import look_up_member

log = logging.getLogger("cardpos.counter.reversals")

REFUNDABLE = (EntryKind.SALE,)
VOIDABLE = (EntryKind.SALE, EntryKind.TOPUP)


@dataclass(frozen=True)
class Original:
    """The operation to reverse, wherever it was recorded, and what was already given back against it."""

    uuid: str
    kind: str
    payload: Mapping[str, Any]
    refunded: int
    """Minor units already refunded (anywhere known)."""
    voided: bool
    recorded_here: bool


def refund(desk: Desk, orig_uuid: str, amount: Money, *, supervisor: Cashier,
           cashier_id: str | None = None) -> Receipt:
    """Refund part or all of a sale recorded anywhere in the program (offline: recorded here)."""
    supervisor_id = _supervisor_id(supervisor)
    fetched = _fetch(desk, orig_uuid)  # the network call happens before the operation lock is taken
    with desk.operation_lock.hold():
        offline = desk.offline
        original = _original(desk, orig_uuid, REFUNDABLE, fetched, code="not_refundable")
        state, _ = member_state(desk, str(original.payload["member"]))
        q = loyalty.quote_refund(state, original.payload, original.uuid, refund_amount=amount,
                                 already_refunded_minor=original.refunded, supervisor=supervisor_id,
                                 offline=offline, voided=original.voided)
        path, entry_uuid = authorize_reversal(desk, q)
        lines = receipt_lines.refund_lines(q.payload, remaining=q.remaining_after, after=q.after)
        return record(desk, q, cashier_id, lines, offline, path=path, entry_uuid=entry_uuid)


def void(desk: Desk, orig_uuid: str, *, supervisor: Cashier, cashier_id: str | None = None) -> Receipt:
    """Cancel a whole sale or top-up recorded anywhere in the program (offline: recorded here)."""
    supervisor_id = _supervisor_id(supervisor)
    fetched = _fetch(desk, orig_uuid)
    with desk.operation_lock.hold():
        offline = desk.offline
        original = _original(desk, orig_uuid, VOIDABLE, fetched, code="not_voidable")
        state, _ = member_state(desk, str(original.payload["member"]))
        q = loyalty.quote_void(state, original.kind, original.payload, original.uuid,
                               already_refunded_minor=original.refunded, voided=original.voided,
                               supervisor=supervisor_id, offline=offline)
        path, entry_uuid = authorize_reversal(desk, q)
        lines = receipt_lines.void_lines(q.payload, original_kind=original.kind, after=q.after)
        return record(desk, q, cashier_id, lines, offline, path=path, entry_uuid=entry_uuid)


def authorize_reversal(desk: Desk, quote: loyalty.Quote) -> tuple[AuthorizationPath | None, str | None]:
    """Ask the ledger to authorize a refund or void like a payment (``/v1/authorize``), under the operation lock
    before the entry is journaled: what it gives back is a credit (a negative hold, never spendable before the
    entry is applied), what it takes back (the points a sale earned, a voided top-up) is checked against the live
    figures. Returns the path and the uuid the entry must carry; no authorizer: (None, None), decided here."""
    p = quote.payload
    card = p.get("card")
    if desk.authorizer is None or not isinstance(card, str):
        return None, None
    entry_uuid = str(uuid.UUID(bytes=desk.randbytes(16), version=4))
    path = ask(desk.authorizer, entry_uuid=entry_uuid, member_id=str(p["member"]), card_id=card,
               currency=str(p["cur"]), sv=-int(p.get("sv", 0)),
               points=int(p.get("pts_rev", 0)) - int(p.get("pts_back", 0)), coupons=())
    return path, entry_uuid


@dataclass(frozen=True)
class _Fetched:
    """What the ledger said about an original (``remote``), or why it could not be asked (``problem``)."""

    remote: Any = None
    problem: str = ""
    unknown_to_ledger: bool = False
    synced_before: int = 0


def _fetch(desk: Desk, orig_uuid: str) -> _Fetched:
    """Ask the ledger for the original (online only); never raises."""
    lookups = desk.lookups
    if lookups is None:
        return _Fetched()  # a counter that does not ask the ledger: this terminal's originals only
    if desk.offline:
        return _Fetched(problem="this terminal is offline")
    # Read before asking: this terminal's refunds after this seq may be unknown to the ledger's answer; counting
    # one twice only refuses more, never gives back too much.
    synced_before = desk.store.journal.synced_seq
    try:
        remote = lookups.original(orig_uuid)
    except CardposError as exc:
        code = getattr(exc, "code", "")
        if code == "unknown_operation":
            return _Fetched(unknown_to_ledger=True, synced_before=synced_before)
        log.warning("original operation not fetched", extra={"fields": {"ref": orig_uuid, "reason": str(exc)}})
        return _Fetched(problem=str(exc), synced_before=synced_before)
    if remote.card_id:
        look_up_member(desk, remote.member_id, remote.card_id)  # a member this terminal was not sent
    return _Fetched(remote=remote, synced_before=synced_before)


def _supervisor_id(supervisor: Cashier) -> str:
    require_role(supervisor, Role.SUPERVISOR)
    return supervisor.cashier_id


def _original(desk: Desk, orig_uuid: str, kinds: tuple[EntryKind, ...], fetched: _Fetched, *,
              code: str) -> Original:
    entry = desk.store.journal.get(orig_uuid)
    remote = fetched.remote
    if entry is None and remote is None:
        if fetched.unknown_to_ledger:
            raise DomainError(f"No operation {orig_uuid} on this terminal or at the ledger", code="unknown_operation",
                              sentence="unknown_operation_anywhere", params={"ref": orig_uuid})
        if not fetched.problem:
            raise DomainError(f"No operation {orig_uuid} on this terminal", code="unknown_operation",
                              params={"ref": orig_uuid})
        raise DomainError(f"Operation {orig_uuid} was not recorded at this terminal and the ledger cannot be "
                          f"reached to fetch it ({fetched.problem}); offline, only this terminal's operations can "
                          "be refunded or voided", code="original_unavailable", params={"ref": orig_uuid})
    kind = str(entry.kind) if entry is not None else str(remote.kind)
    if kind not in kinds:
        raise DomainError(f"Operation {orig_uuid} is a {kind}; only a {' or '.join(kinds)} can be "
                          "reversed this way", code=code, sentence="not_reversible",
                          params={"ref": orig_uuid, "kind": kind, "kinds": [str(k) for k in kinds]})
    if remote is not None:
        # The ledger's count covers every terminal's reversals it received; add ours it has not received yet.
        refunded, voided = _local_reversals(desk, orig_uuid, str(remote.member_id), after_seq=fetched.synced_before)
        return Original(uuid=orig_uuid, kind=kind, payload=remote.payload, refunded=remote.refunded + refunded,
                        voided=remote.voided or voided, recorded_here=entry is not None)
    assert entry is not None
    refunded, voided = _local_reversals(desk, orig_uuid, str(entry.payload.get("member")), after_seq=entry.seq)
    return Original(uuid=orig_uuid, kind=kind, payload=entry.payload, refunded=refunded, voided=voided,
                    recorded_here=True)


def _local_reversals(desk: Desk, orig_uuid: str, member_id: str, *, after_seq: int) -> tuple[int, bool]:
    """(minor units refunded, voided?) against an original in this terminal's journal after ``after_seq``."""
    refunded, voided = 0, False
    for e in desk.store.journal.entries_for_member(member_id, limit=None, after_seq=after_seq,
                                                   newest_first=False):
        if e.payload.get("orig") != orig_uuid:
            continue
        if e.kind == EntryKind.REFUND:
            refunded += int(e.payload["amount"])
        elif e.kind == EntryKind.VOID:
            voided = True
    return refunded, voided
