"""The dashboard's figures (queries of the console's own): sales, top-ups and points per store for today and
this week (each store's own time zone), a fortnight of daily sales, terminals online / behind / silent, open
alerts by severity. Amounts stay integer minor units per currency.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ledger import alert_store, alerts, store, terminal_reports
from ledger.console import fmt, rollup
from ledger.console.models import SalesBucket
from ledger.console.settings import ConsoleSettings

DAY_MS = 86_400_000
CHART_DAYS = 14


def _money_map() -> dict[str, int]:
    return defaultdict(int)


@dataclass
class Period:
    """One store's figures over a period; amounts per currency."""

    sales_count: int = 0
    sales: dict[str, int] = field(default_factory=_money_map)
    topups_count: int = 0
    topups: dict[str, int] = field(default_factory=_money_map)
    points_issued: int = 0
    points_redeemed: int = 0

    def add(self, kind: str, currency: str, count: int, amount: int, earned: int, redeemed: int) -> None:
        if kind == "sale":
            self.sales_count += count
            self.sales[currency] += amount
            self.points_issued += earned
            self.points_redeemed += redeemed
        elif kind in ("refund", "void"):
            self.sales[currency] -= amount
            self.points_issued -= earned
            self.points_redeemed -= redeemed
        elif kind == "topup":
            self.topups_count += count
            self.topups[currency] += amount
        elif kind == "redeem":
            self.points_redeemed += redeemed


@dataclass
class StoreFigures:
    store_id: str
    name: str
    zone: str
    today: Period = field(default_factory=Period)
    week: Period = field(default_factory=Period)


@dataclass
class TerminalState:
    terminal_id: str
    name: str
    store_id: str
    status: str  # pending, active, disabled, revoked
    state: str  # online, behind, silent, never (active, never heard from), pending (not enrolled), off (disabled...)
    last_seen_ms: int | None
    last_seq: int
    refused_24h: int
    quarantined: int | None  # None: this ledger keeps no quarantine
    app_version: str | None = None  # what the terminal said on its last pull (None: it never said)
    queue_depth: int | None = None  # entries it still had to send then


def store_figures(settings: ConsoleSettings, now_ms: int) -> list[StoreFigures]:
    """Today's and this week's (Monday on) figures per store, in each store's time zone."""
    earliest = min(fmt.week_start(now_ms, settings.store_zone(s)) for s in [*settings.stores, None]) - DAY_MS
    p = store.db.param
    rows = store.db.execute_sql(
        f'SELECT "bucket", "store_id", "kind", "currency", "count", "amount", "points_earned", "points_redeemed" '
        f'FROM "{SalesBucket._meta.table_name}" WHERE "bucket" >= {p}', (earliest // rollup.BUCKET_MS,)).fetchall()
    out: dict[str, StoreFigures] = {}
    bounds: dict[str, tuple[int, int]] = {}
    for bucket, store_id, kind, currency, count, amount, earned, redeemed in rows:
        figures = out.get(store_id)
        if figures is None:
            zone = settings.store_zone(store_id)
            figures = out[store_id] = StoreFigures(store_id, settings.store_name(store_id), zone.key)
            bounds[store_id] = (fmt.local_midnight(now_ms, zone) // rollup.BUCKET_MS,
                                fmt.week_start(now_ms, zone) // rollup.BUCKET_MS)
        today, week = bounds[store_id]
        if bucket >= week:
            figures.week.add(kind, currency, count, amount, earned, redeemed)
        if bucket >= today:
            figures.today.add(kind, currency, count, amount, earned, redeemed)
    return sorted(out.values(), key=lambda f: (f.store_id == rollup.LEDGER_STORE, f.store_id))


def daily_sales(settings: ConsoleSettings, now_ms: int, days: int = CHART_DAYS,
                stores: frozenset[str] | None = None) -> list[tuple[str, dict[str, int]]]:
    """Net sales per local day (the console's time zone) for the last ``days`` days, oldest first; ``stores``:
    only those stores' sales (a merchant manager's scope; None: every store)."""
    zone = settings.time_zone
    starts = [fmt.local_midnight(now_ms, zone, back) for back in range(days - 1, -1, -1)]
    p = store.db.param
    bucket_starts = [start // rollup.BUCKET_MS for start in starts]
    # the local day of each bucket in SQL (days need not be 96 buckets long: DST), so few rows come back
    day_of = " ".join(f"WHEN \"bucket\" >= {p} THEN {i}" for i in range(len(starts) - 1, -1, -1))
    only = sorted(stores) if stores is not None else []
    in_stores = (f' AND "store_id" IN ({", ".join(p for _ in only)})' if only
                 else " AND 1 = 0" if stores is not None else "")
    rows = store.db.execute_sql(
        f'SELECT CASE {day_of} END AS "day", "kind", "currency", SUM("amount") FROM '
        f'"{SalesBucket._meta.table_name}" WHERE "bucket" >= {p} AND "kind" IN ({p}, {p}, {p}){in_stores} '
        f'GROUP BY 1, "kind", "currency"',
        (*reversed(bucket_starts), bucket_starts[0], "sale", "refund", "void", *only)).fetchall()
    per_day: list[dict[str, int]] = [defaultdict(int) for _ in starts]
    for day, kind, currency, amount in rows:
        per_day[int(day)][str(currency)] += int(amount) * (1 if kind == "sale" else -1)
    labels = [fmt.local_day(start, zone).strftime("%m-%d") for start in starts]
    return list(zip(labels, [dict(d) for d in per_day], strict=True))


def terminal_states(settings: ConsoleSettings, now_ms: int) -> list[TerminalState]:
    silent_ms = alerts.current_thresholds().terminal_silent_s * 1000
    online_ms = settings.online_within_s * 1000
    p = store.db.param
    refused = {str(tid): int(n) for tid, n in store.db.execute_sql(
        f'SELECT "terminal_id", COUNT(*) FROM "{store.RejectedBatch._meta.table_name}" WHERE "at_ms" >= {p} '
        f'GROUP BY "terminal_id"', (now_ms - DAY_MS,)).fetchall()}
    quarantined = _quarantined_counts()
    said = terminal_reports.latest()
    out: list[TerminalState] = []
    rows = store.Terminal.select().where(store.Terminal.status != "internal").order_by(store.Terminal.store_id,
                                                                                       store.Terminal.name)
    for row in rows:
        seen = row.last_seen_ms if row.enrolled_ms is not None else None
        report = said.get(str(row.terminal_id))
        if row.status == "pending":
            state = "pending"
        elif row.status != "active":
            state = "off"
        elif seen is None:
            state = "never"
        elif now_ms - seen <= online_ms:
            state = "online"
        elif now_ms - seen < silent_ms:
            state = "behind"
        else:
            state = "silent"
        out.append(TerminalState(terminal_id=str(row.terminal_id), name=str(row.name), store_id=str(row.store_id),
                                 status=str(row.status), state=state, last_seen_ms=seen, last_seq=int(row.last_seq),
                                 refused_24h=refused.get(str(row.terminal_id), 0),
                                 quarantined=None if quarantined is None else quarantined.get(str(row.terminal_id), 0),
                                 app_version=report.app_version if report else None,
                                 queue_depth=report.queue_depth if report else None))
    return out


def _quarantined_counts() -> dict[str, int] | None:
    """Entries held back per terminal, when this ledger keeps a quarantine (``quarantined_entry``)."""
    if not store.db.table_exists("quarantined_entry"):
        return None
    rows = store.db.execute_sql('SELECT "terminal_id", COUNT(*) FROM "quarantined_entry" GROUP BY "terminal_id"')
    return {str(tid): int(n) for tid, n in rows.fetchall()}


def open_alerts_by_severity(terminals: frozenset[str] | None = None) -> dict[str, int]:
    """Open alerts by severity; ``terminals``: only alerts raised on those terminals (None: every alert)."""
    p = store.db.param
    only = sorted(terminals) if terminals is not None else []
    on = (f' AND "terminal_id" IN ({", ".join(p for _ in only)})' if only
          else " AND 1 = 0" if terminals is not None else "")
    rows = store.db.execute_sql(
        f'SELECT "severity", COUNT(*) FROM "{alert_store.Alert._meta.table_name}" WHERE "status" != {p}{on} '
        f'GROUP BY "severity"', (alert_store.AlertStatus.RESOLVED.value, *only)).fetchall()
    counts = {"critical": 0, "warning": 0, "info": 0}
    counts.update({str(severity): int(n) for severity, n in rows})
    return counts
