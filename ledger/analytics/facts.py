"""What one applied entry adds to a member's day (pure).

- **spend**: net sales in minor units: a sale's ``net``, less a refund's ``amount`` and a void's ``spend`` (the
  voided sale's net). Top-ups, fees and redemptions are not sales.
- **visits**: purchases: +1 per sale, −1 per void of a sale (a void whose stored-value change ``sv`` is not
  negative; a voided top-up gives stored value back negatively). A refund is not a visit taken back.

Entries count where and when they happened: the terminal's store and the entry's own wall time, not when the
ledger applied it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SALES_KINDS = ("sale", "refund", "void")


@dataclass(frozen=True)
class EntryFact:
    spend: int
    visits: int


NOTHING = EntryFact(0, 0)


def _int(payload: Mapping[str, Any], key: str) -> int:
    value = payload.get(key, 0)
    return value if type(value) is int else 0


def entry_fact(kind: str, payload: Mapping[str, Any]) -> EntryFact:
    if kind == "sale":
        return EntryFact(_int(payload, "net"), 1)
    if kind == "refund":
        return EntryFact(-_int(payload, "amount"), 0)
    if kind == "void":
        voided_sale = _int(payload, "sv") >= 0
        return EntryFact(-_int(payload, "spend"), -1 if voided_sale else 0)
    return NOTHING
