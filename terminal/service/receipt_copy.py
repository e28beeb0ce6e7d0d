"""A copy of an operation's receipt, rebuilt from its journal entry: the reprint from history.

A receipt that did not print (paper out) or that a member asks for again is printed from the journal, which
is the record of what happened; the copy says it is one, and leaves out the figures the entry does not hold
(the balance and points right after, what was still refundable), which have moved since.
"""

from __future__ import annotations

from cardkit.errors import DomainError
from cardkit.journal import EntryKind
from terminal.service.desk import Desk
from terminal.service.receipt import Receipt
from terminal.service.receipt_lines import RECEIPT_KINDS, copy_lines


def receipt_copy(desk: Desk, uuid: str) -> Receipt:
    """The copy of the receipt of operation ``uuid`` recorded at this terminal (raises ``DomainError``
    ``no_receipt`` for an unknown id or an entry that has no receipt, such as a sign-in)."""
    journal = desk.store.journal
    entry = journal.get(uuid)
    if entry is None or entry.kind not in RECEIPT_KINDS:
        raise DomainError(f"No receipt for operation {uuid} on this terminal", code="no_receipt",
                          params={"ref": uuid})
    original_kind = None
    if entry.kind == EntryKind.VOID:
        original = journal.get(str(entry.payload.get("orig")))
        original_kind = original.kind if original is not None else None
    # The whole catalogue, not this store's part: a gift given out here keeps its name on a copy.
    gift = desk.rules.gift(str(entry.payload.get("item")), None) if entry.kind == EntryKind.REDEEM else None
    return Receipt(entry=entry, lines=tuple(copy_lines(entry, original_kind=original_kind, gift=gift)), after=None,
                   offline=False, copy=True)
