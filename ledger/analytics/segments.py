"""The members of a named segment, for campaigns (``rfm`` defines the segments and their thresholds)."""

from __future__ import annotations

from collections.abc import Iterator

import peewee

from ledger import store
from ledger.analytics import calendar, models, reports, rfm
from ledger.analytics.scope import Period, Scope
from ledger.errors import LedgerError


def segment_members(db: peewee.Database | peewee.DatabaseProxy, segment: str, as_of_ms: int,
                    merchant: str | None = None) -> Iterator[str]:
    """Member ids in ``segment`` (new, active, champions, at_risk, lapsed) as of ``as_of_ms``, over the RFM window
    of the 365 days up to that day, for the whole programme or one merchant's stores. ``db`` is the open ledger
    database (``ledger.store.db`` must be bound to it)."""
    name = rfm.parse_segment(segment)  # checked now, not at the first member
    if store.db.obj is not db and store.db is not db:
        raise LedgerError("segment_members needs the ledger database that ledger.store is bound to")
    scope = Scope.of(merchant=merchant)
    models.create_tables()
    period = Period.ending(calendar.day_of_ms(as_of_ms), rfm.WINDOW_DAYS)
    return reports.members_in_segment(name, period, scope)
