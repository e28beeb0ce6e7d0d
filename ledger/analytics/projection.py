"""Projected lifetime value (pure): what each member is expected to spend over a horizon, from the programme's
own data, with integer money and exact fractions (docs/analytics.md, "Projected lifetime value").

For a member as of day ``T`` over a horizon of ``M`` months, with a yearly discount rate ``r``:

- **yearly spend while a customer** ``y = frequency × spend per visit = (visits × 365 / tenure) × (spend /
  visits) = max(0, spend) × 365 / tenure``, from the member's whole history to ``T``; ``tenure`` is the days from
  joining to ``T`` (both counted), at least ``MIN_TENURE_DAYS`` so that a week-old member's first purchase is not
  extrapolated to a year of weekly visits.
- **retention** ``p(S)``: the share of the members who were in RFM segment ``S`` one horizon ago (at ``T - H``,
  ``H`` = the horizon in days) who bought at least once since (in ``T - H + 1 .. T``). Across the segments that
  order members by recency — champions, active, at risk, lapsed — a more recent segment never gets a lower
  retention than a less recent one: where the data say otherwise (small samples), the two are pooled (pool
  adjacent violators, weighted by members). A segment with nobody in it one horizon ago takes the retention of
  its nearest more recent neighbour (or less recent, at the top); ``new`` falls back to all calibrated members,
  and with no calibrated member at all (a programme younger than the horizon) every retention is 1.
- **horizon factor** ``F = Σ_{k=1..M} (1/12) · (1 + r/12)^-k``: a month's spend is a twelfth of a year's,
  discounted to ``T`` from the end of its month at ``r/12`` a month; without a discount ``F = M / 12``.
- **future value** ``= floor(p(S) × y × F)`` in minor units, rounded down once, per member; **projected lifetime
  value** ``= to date + future value``. Totals are sums of the members' rounded figures, so any grouping of
  the members adds up to the same total exactly.

Probabilities and rates are ``Fraction``s (exact: a retention of 7/9 stays 7/9, and the only rounding is the
one stated); money is ``int`` minor units throughout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from ledger.errors import LedgerError

YEAR_DAYS = 365
MIN_TENURE_DAYS = 90
DEFAULT_MONTHS = 12
MAX_MONTHS = 120
MAX_DISCOUNT_BP = 10_000
RECENCY_ORDER = ("champions", "active", "at_risk", "lapsed")  # most recent first: retention never rises along it
SEGMENTS = ("new", *RECENCY_ORDER)


@dataclass(frozen=True)
class Horizon:
    """``months`` ahead, discounted at ``discount_bp`` basis points a year (0: not discounted)."""

    months: int = DEFAULT_MONTHS
    discount_bp: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.months <= MAX_MONTHS:
            raise LedgerError(f"the horizon is 1 to {MAX_MONTHS} months, not {self.months}")
        if not 0 <= self.discount_bp <= MAX_DISCOUNT_BP:
            raise LedgerError(f"the discount rate is 0 to {MAX_DISCOUNT_BP} basis points a year, "
                              f"not {self.discount_bp}")

    @property
    def days(self) -> int:
        """The horizon in days, ``M × 365 / 12`` rounded half up (12 months: 365 days)."""
        return (self.months * YEAR_DAYS * 2 + 12) // 24

    @property
    def factor(self) -> Fraction:
        """``F``: the part of a year's spend the horizon brings, discounted."""
        monthly = Fraction(120_000, 120_000 + self.discount_bp)  # 1 / (1 + r/12), r = bp / 10,000
        total, step = Fraction(0), Fraction(1)
        for _ in range(self.months):
            step *= monthly
            total += step
        return total / 12


def tenure_days(join_day: int, as_of_day: int) -> int:
    return max(MIN_TENURE_DAYS, as_of_day - join_day + 1)


def yearly_spend(life_spend: int, join_day: int, as_of_day: int) -> Fraction:
    """``y``: the member's net spend per year of membership (never negative)."""
    return Fraction(max(0, life_spend) * YEAR_DAYS, tenure_days(join_day, as_of_day))


def future_value(life_spend: int, join_day: int, as_of_day: int, retention: Fraction, horizon: Horizon) -> int:
    """One member's expected spend over the horizon, minor units, rounded down (the reference formula)."""
    return int(retention * yearly_spend(life_spend, join_day, as_of_day) * horizon.factor)


@dataclass(frozen=True)
class Retention:
    """One segment's calibration: ``members`` in it one horizon ago, ``kept`` of them bought since; ``rate`` is
    the retention used (after pooling and filling), ``observed`` the raw share (None: nobody to observe)."""

    segment: str
    members: int
    kept: int
    rate: Fraction

    @property
    def observed(self) -> Fraction | None:
        return Fraction(self.kept, self.members) if self.members else None


def _pooled(counts: list[tuple[int, int]]) -> list[Fraction | None]:
    """Pool adjacent violators: a non-increasing sequence of shares, weighted by members (None where empty)."""
    blocks: list[tuple[int, int, list[int]]] = []  # (kept, members, indexes)
    for i, (members, kept) in enumerate(counts):
        if members == 0:
            continue
        block = (kept, members, [i])
        while blocks and Fraction(blocks[-1][0], blocks[-1][1]) < Fraction(block[0], block[1]):
            k, m, idx = blocks.pop()
            block = (k + block[0], m + block[1], idx + block[2])
        blocks.append(block)
    out: list[Fraction | None] = [None] * len(counts)
    for kept, members, idx in blocks:
        for i in idx:
            out[i] = Fraction(kept, members)
    return out


def retention_table(counts: Mapping[str, tuple[int, int]]) -> dict[str, Retention]:
    """Retention per segment from ``segment → (members one horizon ago, kept)`` (missing segments: none)."""
    got = {s: counts.get(s, (0, 0)) for s in SEGMENTS}
    for segment, (members, kept) in got.items():
        if not 0 <= kept <= members:
            raise LedgerError(f"calibration of {segment}: {kept} kept of {members} members")
    all_members = sum(m for m, _ in got.values())
    overall = Fraction(sum(k for _, k in got.values()), all_members) if all_members else Fraction(1)
    chain = _pooled([got[s] for s in RECENCY_ORDER])
    filled: list[Fraction] = []
    for i in range(len(chain)):
        more_recent = next((chain[j] for j in range(i, -1, -1) if chain[j] is not None), None)
        less_recent = next((chain[j] for j in range(i, len(chain)) if chain[j] is not None), None)
        filled.append(more_recent if more_recent is not None else less_recent if less_recent is not None
                      else overall)
    rates = dict(zip(RECENCY_ORDER, filled, strict=True))
    new_members, new_kept = got["new"]
    rates["new"] = Fraction(new_kept, new_members) if new_members else overall
    return {s: Retention(s, got[s][0], got[s][1], rates[s]) for s in SEGMENTS}


class Projector:
    """``future_value`` for many members at once, the same answers with integers only: per segment the constant
    ``p(S) × 365 × F`` is one fraction ``a / b``, so a member's future value is ``spend × a // (tenure × b)``."""

    def __init__(self, table: Mapping[str, Retention], horizon: Horizon, as_of_day: int) -> None:
        self.as_of_day = as_of_day
        factor = horizon.factor
        self.coefficients: dict[str, tuple[int, int]] = {}
        for segment, retention in table.items():
            c = retention.rate * YEAR_DAYS * factor
            self.coefficients[segment] = (c.numerator, c.denominator)

    def future(self, segment: str, life_spend: int, join_day: int) -> int:
        if life_spend <= 0:
            return 0
        a, b = self.coefficients[segment]
        return life_spend * a // (max(MIN_TENURE_DAYS, self.as_of_day - join_day + 1) * b)
