"""Refunds and voids of operations recorded at this terminal, each approved by a signed-in supervisor.

The original is looked up in this terminal's journal, and what was already refunded or voided is read from the
entries recorded after it; the pure core then decides what may still be given back.
"""

from __future__ import annotations

from cardkit.core import loyalty
from cardkit.core.money import Money
from cardkit.errors import DomainError
from cardkit.journal import EntryKind, JournalEntry
from terminal.offline.cashiers import Cashier, Role, require_role
from terminal.service import receipt_lines
from terminal.service.desk import Desk, member_state, record
from terminal.service.receipt import Receipt

REFUNDABLE = (EntryKind.SALE,)
VOIDABLE = (EntryKind.SALE, EntryKind.TOPUP)


def refund(desk: Desk, orig_uuid: str, amount: Money, *, supervisor: Cashier,
           cashier_id: str | None = None) -> Receipt:
    """Refund part or all of a sale recorded here."""
    supervisor_id = _supervisor_id(supervisor)
    with desk.operation_lock.hold():
        offline = desk.offline
        original = _original(desk, orig_uuid, REFUNDABLE, code="not_refundable")
        refunded, voided = _reversals(desk, original)
        state, _ = member_state(desk, str(original.payload["member"]))
        q = loyalty.quote_refund(state, original.payload, original.uuid, refund_amount=amount,
                                 already_refunded_minor=refunded, supervisor=supervisor_id,
                                 offline=offline, voided=voided)
        lines = receipt_lines.refund_lines(q.payload, remaining=q.remaining_after, after=q.after)
        return record(desk, q, cashier_id, lines, offline)


def void(desk: Desk, orig_uuid: str, *, supervisor: Cashier, cashier_id: str | None = None) -> Receipt:
    """Cancel a whole sale or top-up recorded here."""
    supervisor_id = _supervisor_id(supervisor)
    with desk.operation_lock.hold():
        offline = desk.offline
        original = _original(desk, orig_uuid, VOIDABLE, code="not_voidable")
        refunded, voided = _reversals(desk, original)
        state, _ = member_state(desk, str(original.payload["member"]))
        q = loyalty.quote_void(state, original.kind, original.payload, original.uuid,
                               already_refunded_minor=refunded, voided=voided, supervisor=supervisor_id,
                               offline=offline)
        lines = receipt_lines.void_lines(q.payload, original_kind=original.kind, after=q.after)
        return record(desk, q, cashier_id, lines, offline)


def _supervisor_id(supervisor: Cashier) -> str:
    require_role(supervisor, Role.SUPERVISOR)
    return supervisor.cashier_id


def _original(desk: Desk, orig_uuid: str, kinds: tuple[EntryKind, ...], *, code: str) -> JournalEntry:
    entry = desk.store.journal.get(orig_uuid)
    if entry is None:
        raise DomainError(f"No operation {orig_uuid} on this terminal; refunds and voids are made at the "
                          "terminal that recorded the original", code="unknown_operation",
                          params={"ref": orig_uuid})
    if entry.kind not in kinds:
        raise DomainError(f"Operation {orig_uuid} is a {entry.kind}; only a {' or '.join(kinds)} can be "
                          "reversed this way", code=code, sentence="not_reversible",
                          params={"ref": orig_uuid, "kind": str(entry.kind), "kinds": [str(k) for k in kinds]})
    return entry


def _reversals(desk: Desk, original: JournalEntry) -> tuple[int, bool]:
    """(minor units already refunded, voided?) for an original operation, from this terminal's journal."""
    member = str(original.payload.get("member"))
    refunded, voided = 0, False
    for e in desk.store.journal.entries_for_member(member, limit=None, after_seq=original.seq,
                                                   newest_first=False):
        if e.payload.get("orig") != original.uuid:
            continue
        if e.kind == EntryKind.REFUND:
            refunded += int(e.payload["amount"])
        elif e.kind == EntryKind.VOID:
            voided = True
    return refunded, voided
