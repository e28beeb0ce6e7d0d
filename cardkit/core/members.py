"""Tiers, card statuses and coupons as plain values."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cardkit.core.money import Money


class Tier(enum.StrEnum):
    """Membership tiers, lowest first. Tier names travel inside card tokens and rules files."""

    STANDARD = "standard"
    PREFERRED = "preferred"
    GOLD = "gold"
    PLATINUM = "platinum"

    @property
    def rank(self) -> int:
        return list(Tier).index(self)

    @classmethod
    def parse(cls, text: str) -> Tier:
        from cardkit.errors import DomainError

        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(t.value for t in cls)
            raise DomainError(f"unknown tier {text!r} (one of: {names})", code="bad_tier",
                              params={"text": text, "tiers": [t.value for t in cls]}) from None


class CardStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    ON_HOLD = "on_hold"
    REPLACED = "replaced"


@dataclass(frozen=True, slots=True)
class Coupon:
    """An e-coupon held by a member. Exactly one of ``amount_off`` / ``percent_off_bp`` is set."""

    coupon_id: str
    amount_off: Money | None = None
    percent_off_bp: int | None = None
    min_spend: Money | None = None
    valid_from: int = 0  # epoch seconds
    valid_until: int = 2**62
    stackable: bool = False
    funder: str | None = None
    """The merchant that issued and funds it (None: the program); a merchant's rules may refuse others' coupons."""
