"""Where a promotion's members come from: anything with ``members(segment, as_of_ms)``.

``default_source`` knows ``all`` and every named segment of the analytics (``ledger.analytics.segments``: new,
active, champions, at risk, lapsed). Tests may pass their own source.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from ledger import store
from ledger.analytics.segments import segment_members

PAGE = 5_000


class SegmentSource(Protocol):
    def members(self, segment: str, as_of_ms: int) -> Iterable[str]: ...


def all_members() -> Iterator[str]:
    """Every member id, in pages (bounded memory on a million members)."""
    last = ""
    table = store.Member._meta.table_name
    sql = (f'SELECT "member_id" FROM "{table}" WHERE "member_id" > {store.db.param} ORDER BY "member_id" '
           f"LIMIT {PAGE}")
    while True:
        rows: list[tuple[Any, ...]] = list(store.db.execute_sql(sql, (last,)).fetchall())
        if not rows:
            return
        for (member_id,) in rows:
            yield str(member_id)
        last = str(rows[-1][0])


class DefaultSegments:
    """``all``, and every named segment of ``ledger.analytics.segments``."""

    def members(self, segment: str, as_of_ms: int) -> Iterable[str]:
        if segment == "all":
            return all_members()
        return segment_members(store.db, segment, as_of_ms)


def default_source() -> SegmentSource:
    return DefaultSegments()
