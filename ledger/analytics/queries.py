"""The SQL aggregates the reports are built on (SQLite and PostgreSQL): one pass over ``analytics_member_day``
grouped by member, and small grouped counts for sales, tiers and cohorts. Everything past the aggregates is
pure (``rfm``, ``ltv``, ``concentration``, ``cohorts``).

The per-member aggregates write ``+"day"`` (SQLite and PostgreSQL read it as ``day``): it keeps SQLite off the
``day`` index, so it reads the table in its key order (member first) and groups without sorting; through the
index it sorted every row of the period and took five times as long."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass

from ledger import store
from ledger.analytics import calendar
from ledger.analytics.models import NO_MEMBER, MemberDay
from ledger.analytics.scope import Period, Scope

FETCH = 10_000
YEAR_DAYS = 365


@dataclass(frozen=True, slots=True)
class Calibration:
    """One member as of one horizon before the period's end (``day``): the RFM inputs over the 365 days up to
    ``day``, and the net visits after it (to the period's end), for the projected lifetime value's retention."""

    day: int
    visits: int
    spend: int
    last_day: int | None
    visits_after: int


@dataclass(frozen=True, slots=True)
class MemberFigures:
    """One member's aggregates: ``period_*`` over the report's period, ``life_*`` from joining to its end,
    ``year_*`` over the 365 days to its end, ``prior_visits`` over the 365 days before those; ``calibration``
    when asked for (``member_figures(..., calibration_day=...)``)."""

    member_id: str
    currency: str
    join_day: int
    tier: str
    period_visits: int
    period_spend: int
    last_day: int | None  # last day with a visit in the period
    life_spend: int
    year_spend: int
    year_visits: int
    prior_visits: int
    home_store: str = ""
    life_visits: int = 0
    year_last: int | None = None  # last day with a visit in the 365 days to the period's end
    calibration: Calibration | None = None


VISITED = 'd."visits" > 0'


class _Columns:
    """The aggregate expressions of one member pass, each written once: a figure asked for twice over the same
    days (the period is the last year; a 12-month horizon's calibration window is the year before it) is summed
    once and read twice. Every row is already limited to the period's end by the join."""

    def __init__(self, param: str) -> None:
        self.param = param
        self.expressions: list[str] = []
        self.args: list[int] = []
        self._index: dict[tuple[str, int | None, int | None], int] = {}

    def _add(self, what: str, low: int | None, high: int | None) -> int:
        key = (what, low, high)
        if key in self._index:
            return self._index[key]
        p, conditions, args = self.param, [], []
        if low is not None:
            conditions.append(f'd."day" >= {p}')
            args.append(low)
        if high is not None:
            conditions.append(f'd."day" <= {p}')
            args.append(high)
        if what == "last":
            expression = f'MAX(CASE WHEN {" AND ".join([*conditions, VISITED])} THEN d."day" END)'
        elif conditions:
            expression = f'SUM(CASE WHEN {" AND ".join(conditions)} THEN d."{what}" ELSE 0 END)'
        else:
            expression = f'SUM(d."{what}")'
        self._index[key] = len(self.expressions)
        self.expressions.append(expression)
        self.args += args
        return self._index[key]

    def sum(self, column: str, low: int | None = None, high: int | None = None) -> int:
        return self._add(column, low, high)

    def null(self) -> int:
        if "NULL" not in self.expressions:
            self.expressions.append("NULL")
        return self.expressions.index("NULL")

    def last(self, low: int | None = None, high: int | None = None) -> int:
        """The last day with a visit."""
        return self._add("last", low, high)


def member_figures(period: Period, scope: Scope, calibration_day: int | None = None, *,
                   life_visits: bool = False) -> Iterator[MemberFigures]:
    """Every member who had joined by the end of ``period`` (in a store scope: whose home store is in it, or who
    bought there), with their aggregates. Streamed: a million members never sit in one list.

    One pass over the members in key order, each joined to its own rows of ``analytics_member_day`` by the
    table's key (a third faster than grouping the table first and joining the groups to the members). With
    ``calibration_day`` the same pass also sums each member as of that day (``Calibration``) and the last visit
    in the year; ``life_visits`` adds the visits to date (shown per member; each figure costs a column)."""
    p = store.db.param
    days, member, proj = (MemberDay._meta.table_name, store.Member._meta.table_name,
                          store.MemberProjection._meta.table_name)
    in_stores, store_args = scope.sql('d."store_id"')
    seen, home_args = "", []
    if scope.stores is not None:  # a store's members: its own, and whoever bought there
        seen, home_args = f' HAVING COUNT(d."member_id") > 0 OR {scope.condition("m.store_id")}', list(scope.stores)
    year_from = period.last_day - YEAR_DAYS + 1
    prior_from = year_from - YEAR_DAYS
    c = _Columns(p)
    wanted = [c.sum("visits", period.first_day), c.sum("spend", period.first_day), c.last(period.first_day),
              c.sum("spend"), c.sum("spend", year_from), c.sum("visits", year_from),
              c.sum("visits", prior_from, year_from - 1)]
    wanted += [c.sum("visits") if life_visits else -1, c.last(year_from) if calibration_day is not None else -1]
    if calibration_day is not None:
        calibration_from = calibration_day - YEAR_DAYS + 1
        wanted += [c.sum("visits", calibration_from, calibration_day), c.sum("spend", calibration_from,
                                                                             calibration_day),
                   c.last(calibration_from, calibration_day), c.sum("visits", calibration_day + 1)]
    if -1 in wanted:  # a figure not asked for: read as NULL
        wanted = [c.null() if i == -1 else i for i in wanted]
    pick = operator.itemgetter(*(5 + i for i in wanted))
    columns, args = c.expressions, list[object](c.args)
    sql = (
        f'SELECT m."member_id", m."currency", m."created_ms", COALESCE(pr."tier", m."opening_tier"), m."store_id", '
        f'{", ".join(columns)} '
        f'FROM "{member}" m LEFT JOIN "{proj}" pr ON pr."member_id" = m."member_id" '
        f'LEFT JOIN "{days}" d ON d."member_id" = m."member_id" AND +d."day" <= {p}{in_stores} '
        f'WHERE m."created_ms" < {p} '
        f'GROUP BY m."member_id", m."currency", m."created_ms", pr."tier", m."opening_tier", m."store_id"{seen}')
    args += [period.last_day, *store_args, period.end_ms, *home_args]
    cursor = store.db.execute_sql(sql, args)
    day_ms = calendar.DAY_MS
    while True:
        rows = cursor.fetchmany(FETCH)
        if not rows:
            return
        for row in rows:
            member_id, currency, created_ms, tier, home = row[:5]
            pv, ps, pl, ls, ys, yv, qv, lv, yl, *then = pick(row)
            calibration = None
            if calibration_day is not None:
                cv, cs, cl, av = then
                calibration = Calibration(calibration_day, int(cv or 0), int(cs or 0),
                                          None if cl is None else int(cl), int(av or 0))
            yield MemberFigures(str(member_id), str(currency), int(created_ms) // day_ms, str(tier),
                                int(pv or 0), int(ps or 0), None if pl is None else int(pl), int(ls or 0),
                                int(ys or 0), int(yv or 0), int(qv or 0), str(home), int(lv or 0),
                                None if yl is None else int(yl), calibration)


def bare_member_aggregate(period: Period) -> int:
    """The baseline the members report is measured against: net spend and visits per member over the period,
    nothing else. Returns the number of member rows read."""
    p = store.db.param
    cursor = store.db.execute_sql(
        f'SELECT "member_id", SUM("spend"), SUM("visits") FROM "{MemberDay._meta.table_name}" '
        f'WHERE +"day" >= {p} AND +"day" <= {p} GROUP BY "member_id"', (period.first_day, period.last_day))
    count = 0
    while rows := cursor.fetchmany(FETCH):
        count += len(rows)
    return count


@dataclass(frozen=True, slots=True)
class SalesRow:
    day: int
    store_id: str
    currency: str
    spend: int
    visits: int
    member_spend: int
    member_visits: int
    members: int


def sales_by_day(period: Period, scope: Scope) -> list[SalesRow]:
    """Net sales per day, store and currency; the part made by members, and how many members bought."""
    p = store.db.param
    in_stores, store_args = scope.sql('"store_id"')
    rows = store.db.execute_sql(
        f'SELECT "day", "store_id", "currency", SUM("spend"), SUM("visits"), '
        f'SUM(CASE WHEN "member_id" <> {p} THEN "spend" ELSE 0 END), '
        f'SUM(CASE WHEN "member_id" <> {p} THEN "visits" ELSE 0 END), '
        f'COUNT(DISTINCT CASE WHEN "member_id" <> {p} AND "visits" > 0 THEN "member_id" END) '
        f'FROM "{MemberDay._meta.table_name}" WHERE "day" >= {p} AND "day" <= {p}{in_stores} '
        f'GROUP BY "day", "store_id", "currency" ORDER BY "day", "store_id", "currency"',
        (NO_MEMBER, NO_MEMBER, NO_MEMBER, period.first_day, period.last_day, *store_args)).fetchall()
    return [SalesRow(int(d), str(s), str(c), int(sp or 0), int(v or 0), int(ms or 0), int(mv or 0), int(n or 0))
            for d, s, c, sp, v, ms, mv, n in rows]


def cohort_sizes(period: Period, scope: Scope) -> dict[int, int]:
    """Members who joined in the period, by join month (in a store scope: members of those home stores)."""
    p = store.db.param
    home, home_args = scope.sql('"store_id"')
    day_ms = calendar.DAY_MS
    rows = store.db.execute_sql(
        f'SELECT "created_ms" / {day_ms}, COUNT(*) FROM "{store.Member._meta.table_name}" '
        f'WHERE "created_ms" >= {p} AND "created_ms" < {p}{home} GROUP BY "created_ms" / {day_ms}',
        (period.first_day * day_ms, period.end_ms, *home_args)).fetchall()
    sizes: dict[int, int] = {}
    for day, count in rows:
        month = calendar.month_of_day(int(day))
        sizes[month] = sizes.get(month, 0) + int(count)
    return sizes


def cohort_activity(period: Period, scope: Scope, last_month: int) -> list[tuple[int, int, int]]:
    """(join month, month, members with a net visit that month) for the cohorts joined in the period."""
    p = store.db.param
    days, member = MemberDay._meta.table_name, store.Member._meta.table_name
    home, home_args = scope.sql('m."store_id"')
    first_month = calendar.month_of_day(period.first_day)
    last_join = calendar.month_of_day(period.last_day)
    join_filter = ""
    if scope.stores is not None:
        join_filter = f' AND EXISTS (SELECT 1 FROM "{member}" m WHERE m."member_id" = d."member_id"{home})'
    rows = store.db.execute_sql(
        f'SELECT "join_month", "month", COUNT(DISTINCT "member_id") FROM ('
        f'SELECT d."member_id", d."join_month", d."month" FROM "{days}" d '
        f'WHERE d."join_month" >= {p} AND d."join_month" <= {p} AND d."month" <= {p}{join_filter} '
        f'GROUP BY d."member_id", d."join_month", d."month" HAVING SUM(d."visits") > 0) s '
        f'GROUP BY "join_month", "month"',
        (first_month, last_join, last_month, *home_args)).fetchall()
    return [(int(j), int(m), int(n)) for j, m, n in rows]
