"""Days and months as whole numbers (pure): a day is ``wall_ms // 86_400_000`` (UTC), a month is
``year * 12 + month - 1``. Integers make periods cheap to filter and group on in SQL."""

from __future__ import annotations

import datetime

DAY_MS = 86_400_000
EPOCH = datetime.date(1970, 1, 1)


def day_of_ms(epoch_ms: int) -> int:
    return epoch_ms // DAY_MS


def date_of_day(day: int) -> datetime.date:
    return EPOCH + datetime.timedelta(days=day)


def day_of_date(date: datetime.date) -> int:
    return (date - EPOCH).days


def month_of_date(date: datetime.date) -> int:
    return date.year * 12 + date.month - 1


def month_of_day(day: int) -> int:
    return month_of_date(date_of_day(day))


def month_label(month: int) -> str:
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


def day_label(day: int) -> str:
    return date_of_day(day).isoformat()


def first_day_of_month(month: int) -> int:
    return day_of_date(datetime.date(month // 12, month % 12 + 1, 1))
