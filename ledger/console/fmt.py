"""How the console writes amounts, points and times for people (pure).

Money is always integer minor units with its currency (``cardkit.core.money.Money`` does the decimal text);
times are shown in a store's (or the console's) time zone with the zone's abbreviation, so nobody has to guess.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from cardkit.core.money import Money


def money(minor: int, currency: str) -> str:
    return str(Money(int(minor), currency))


def when(epoch_ms: int | None, zone: ZoneInfo, *, seconds: bool = False) -> str:
    if epoch_ms is None:
        return "—"
    moment = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=zone)
    return moment.strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else "")) + f" {moment.tzname()}"


def ago_seconds(epoch_ms: int | None, now_ms: int) -> int | None:
    return None if epoch_ms is None else max(0, (now_ms - epoch_ms) // 1000)


def duration(seconds: int | None, lang: str) -> str:
    """A short age: 45 s, 12 min, 3 h, 2 d (zh: 45秒, 12分钟, 3小时, 2天)."""
    if seconds is None:
        return "—"
    units = (("d", "天", 86_400), ("h", "小时", 3600), ("min", "分钟", 60), ("s", "秒", 1))
    for en, zh, size in units:
        if seconds >= size or size == 1:
            count = seconds // size
            return f"{count}{zh}" if lang == "zh" else f"{count} {en}"
    return "—"


def local_midnight(epoch_ms: int, zone: ZoneInfo, days_back: int = 0) -> int:
    """Epoch ms of the start of the local day ``days_back`` days before the one holding ``epoch_ms``."""
    day = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=zone).date() - dt.timedelta(days=days_back)
    return int(dt.datetime.combine(day, dt.time(0), tzinfo=zone).timestamp() * 1000)


def week_start(epoch_ms: int, zone: ZoneInfo) -> int:
    """Epoch ms of the local Monday 00:00 of the week holding ``epoch_ms``."""
    weekday = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=zone).weekday()
    return local_midnight(epoch_ms, zone, weekday)


def local_day(epoch_ms: int, zone: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=zone).date()


def parse_local_date(text: str, zone: ZoneInfo) -> int | None:
    """``2026-05-01`` as epoch ms of that local midnight, None if it is not a date."""
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        return None
    return int(dt.datetime.combine(day, dt.time(0), tzinfo=zone).timestamp() * 1000)


def mask_name(name: str) -> str:
    """First character and stars: enough to tell two results apart, not to know who it is."""
    name = name.strip()
    return (name[0] + "＊" * min(3, max(1, len(name) - 1))) if name else ""


def mask_phone(phone: str) -> str:
    digits = [ch for ch in phone if ch.isdigit()]
    return ("•••• " + "".join(digits[-2:])) if digits else ""


def mask_email(email: str) -> str:
    local, at, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}" if at else ("•••" if email else "")
