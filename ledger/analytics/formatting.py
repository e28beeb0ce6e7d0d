"""What the reports share to show figures: money in minor units as text, exact ratios and shares as text (no
float on the way), a report's heading, and the (header, rows) table behind CSV and the console."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from cardkit.core.money import Money
from ledger.analytics import calendar
from ledger.analytics.cohorts import percent
from ledger.analytics.scope import Period, Scope

Table = tuple[list[str], list[list[Any]]]


def money(minor: int, currency: str) -> str:
    return str(Money(minor, currency)) if currency else str(minor)


def ratio_text(value: Fraction, places: int = 2) -> str:
    """A non-negative ratio to ``places`` decimals, rounded half up, without a float."""
    scale = 10**places
    scaled = (value * scale + Fraction(1, 2)).__floor__()
    return f"{scaled // scale}.{scaled % scale:0{places}d}"


def share(part: int, whole: int) -> str:
    return percent(Fraction(part, whole)) if whole else "0.0"


def head(kind: str, period: Period, scope: Scope) -> dict[str, Any]:
    return {"report": kind, "scope": scope.label, "stores": list(scope.stores) if scope.stores else None,
            "from": calendar.day_label(period.first_day), "to": calendar.day_label(period.last_day)}
