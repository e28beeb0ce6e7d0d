"""Annual churn (pure): the share of the members who bought in the year before last and not in the last year.
Shown beside the lifetime value; the projected lifetime value itself is ``projection`` (per RFM segment)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Churn:
    previous_buyers: int  # bought in the year before last
    kept: int  # of those, bought in the last year too

    @property
    def rate(self) -> Fraction:
        if self.previous_buyers == 0:
            return Fraction(0)
        return Fraction(self.previous_buyers - self.kept, self.previous_buyers)
