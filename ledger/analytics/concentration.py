"""How concentrated sales are (pure): the share of net sales made by the top quarter of buying members.

Members who bought in the period (net spend > 0) are ranked by net spend; the top ``ceil(n / 4)`` of them
made ``top_share`` of the buyers' net sales. Ties at the boundary do not change the sum. The seeds' department
store: a quarter of its cardholders made a third of its sales.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class TopShare:
    buyers: int
    top_members: int
    top_spend: int  # minor units
    total_spend: int

    @property
    def share(self) -> Fraction:
        return Fraction(self.top_spend, self.total_spend) if self.total_spend else Fraction(0)

    def percent(self) -> str:
        """The share as a percentage to one decimal, rounded half up (exact: no float on the way)."""
        tenths = (self.share * 1000 + Fraction(1, 2)).__floor__()
        return f"{tenths // 10}.{tenths % 10}"


def top_share(spends: Iterable[int], fraction: Fraction = Fraction(1, 4)) -> TopShare:
    positive = sorted((s for s in spends if s > 0), reverse=True)
    n = len(positive)
    k = (n * fraction.numerator + fraction.denominator - 1) // fraction.denominator
    return TopShare(buyers=n, top_members=k, top_spend=sum(positive[:k]), total_spend=sum(positive))
