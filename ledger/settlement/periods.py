"""Settlement periods: calendar months in UTC, written ``YYYY-MM``. Pure."""

from __future__ import annotations

import datetime
import re
from collections.abc import Collection

from ledger.errors import LedgerError

_PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


def check_period(text: str) -> str:
    if not _PERIOD.fullmatch(text.strip()):
        raise LedgerError(f"a settlement period is a month written YYYY-MM (e.g. 2026-11), not {text!r}")
    return text.strip()


def period_of(wall_ms: int) -> str:
    """The month an entry's own time falls in."""
    moment = datetime.datetime.fromtimestamp(wall_ms / 1000, datetime.UTC)
    return f"{moment.year:04d}-{moment.month:02d}"


def _year_month(period: str) -> tuple[int, int]:
    year, month = period.split("-")
    return int(year), int(month)


def next_period(period: str) -> str:
    year, month = _year_month(period)
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def previous_period(period: str) -> str:
    year, month = _year_month(period)
    return f"{year - (month == 1):04d}-{(month - 2) % 12 + 1:02d}"


def start_ms(period: str) -> int:
    year, month = _year_month(period)
    return int(datetime.datetime(year, month, 1, tzinfo=datetime.UTC).timestamp()) * 1000


def end_ms(period: str) -> int:
    """The first millisecond after the period."""
    return start_ms(next_period(period))


def settling_period(wall_ms: int, closed: Collection[str]) -> tuple[str, str | None]:
    """The period an entry counts in and, when its own month was closed before it arrived, that month (it is then
    an adjustment in the first open month after it)."""
    own = period_of(wall_ms)
    if own not in closed:
        return own, None
    period = next_period(own)
    while period in closed:
        period = next_period(period)
    return period, own


def quarter_start(day_ms: int) -> int:
    """The first millisecond of the calendar quarter ``day_ms`` is in."""
    moment = datetime.datetime.fromtimestamp(day_ms / 1000, datetime.UTC)
    month = (moment.month - 1) // 3 * 3 + 1
    return int(datetime.datetime(moment.year, month, 1, tzinfo=datetime.UTC).timestamp()) * 1000
