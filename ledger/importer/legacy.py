"""Members' card numbers from the program's previous system, kept by ``cardpos ledger import`` (``LegacyCard``):
staff find the member by the old number and give them a cardpos card by it (``cardpos ledger member find
--legacy-card``, ``cardpos ledger card issue --legacy-card``). An old number is only a look-up, never a card the
counter takes: it is not signed, so anyone who read it off a card could use it (docs/merchants.md, "Old card
numbers at the counter")."""

from __future__ import annotations

from typing import Any

from ledger import pii, store
from ledger.errors import LedgerError
from ledger.importer.rows import CARD_NUMBER
from ledger.importer.staging import LegacyCard


def member_of_legacy_card(number: str) -> str:
    """The member an imported old card number belongs to; LedgerError when no imported member has it."""
    number = number.strip()
    if not CARD_NUMBER.fullmatch(number):
        raise LedgerError(f"an old card number is 4 to 40 letters, digits or -, not {number!r}")
    row = LegacyCard.get_or_none(LegacyCard.card_number == number)
    if row is None:
        raise LedgerError(f"no imported member has the old card number {number} (see: cardpos ledger import)")
    return str(row.member_id)


def legacy_card_member(number: str) -> dict[str, Any]:
    """The member an old card number belongs to, as ``cardpos ledger member find`` lists members."""
    member = store.Member.get_by_id(member_of_legacy_card(number))
    details = pii.details_of(member)
    return {"member_id": member.member_id, "name": details.name, "phone": details.phone, "email": details.email,
            "store_id": member.store_id, "legacy_card": number.strip()}
