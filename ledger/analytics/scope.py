"""What a report covers: the whole program, one store, or one merchant's stores; and over which days.

A merchant's stores come from ``ledger.merchants`` (the only place that maps a merchant to stores).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from ledger import store
from ledger.analytics import calendar
from ledger.errors import LedgerError
from ledger.merchants import admin as merchants_admin


def merchant_stores(merchant: str) -> tuple[str, ...]:
    """The stores of ``merchant``."""
    stores = tuple(merchants_admin.merchant_store_ids(merchant))
    if not stores:
        raise LedgerError(f"there is no merchant {merchant!r} (or it has no stores)")
    return stores


@dataclass(frozen=True)
class Scope:
    """``stores`` None: the whole program."""

    stores: tuple[str, ...] | None = None
    label: str = "program"

    @classmethod
    def of(cls, *, store_id: str | None = None, merchant: str | None = None) -> Scope:
        if store_id and merchant:
            raise LedgerError("give a store or a merchant, not both")
        if merchant:
            return cls(merchant_stores(merchant), f"merchant {merchant}")
        if store_id:
            return cls((store_id,), f"store {store_id}")
        return cls()

    def sql(self, column: str) -> tuple[str, list[str]]:
        """A `` AND column IN (...)`` clause and its arguments (empty for the whole program)."""
        if self.stores is None:
            return "", []
        return f" AND {self.condition(column)}", list(self.stores)

    def condition(self, column: str) -> str:
        """``column IN (...)``, for a scope of stores."""
        assert self.stores is not None
        return f"{column} IN ({', '.join(store.db.param for _ in self.stores)})"


@dataclass(frozen=True)
class Period:
    """Whole UTC days, both ends included."""

    first_day: int
    last_day: int

    def __post_init__(self) -> None:
        if self.first_day > self.last_day:
            raise LedgerError(f"the period starts ({calendar.day_label(self.first_day)}) after it ends "
                              f"({calendar.day_label(self.last_day)})")

    @property
    def days(self) -> int:
        return self.last_day - self.first_day + 1

    @property
    def end_ms(self) -> int:
        """The first millisecond after the period."""
        return (self.last_day + 1) * calendar.DAY_MS

    def label(self) -> str:
        return f"{calendar.day_label(self.first_day)} .. {calendar.day_label(self.last_day)}"

    @classmethod
    def ending(cls, last_day: int, days: int) -> Period:
        return cls(last_day - days + 1, last_day)


def parse_day(text: str, flag: str) -> int:
    """A day given as YYYY-MM-DD (UTC)."""
    try:
        return calendar.day_of_date(datetime.date.fromisoformat(text.strip()))
    except ValueError:
        raise LedgerError(f"{flag} takes a date as YYYY-MM-DD, not {text!r}") from None


def period_from(first: str | None, last: str | None, *, today: int, default_days: int) -> Period:
    last_day = parse_day(last, "--to") if last else today
    first_day = parse_day(first, "--from") if first else last_day - default_days + 1
    return Period(first_day, last_day)
