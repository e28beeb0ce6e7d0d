"""Median and MAD on integers, kept in integers (doubled) so amounts never pass through a float."""

from __future__ import annotations

from collections.abc import Sequence


def median2(values: Sequence[int]) -> int:
    """Twice the median (an integer even when the median is a half)."""
    return median2_sorted(sorted(values))


def median2_sorted(ordered: Sequence[int]) -> int:
    """``median2`` of values already in ascending order."""
    n = len(ordered)
    if n == 0:
        raise ValueError("median of nothing")
    mid = n // 2
    return 2 * ordered[mid] if n % 2 else ordered[mid - 1] + ordered[mid]


def mad2(values: Sequence[int], med2: int) -> int:
    """Twice the median absolute deviation from the median given as ``med2`` (twice the median)."""
    deviations2 = sorted(abs(2 * v - med2) for v in values)
    # the median of doubled deviations is 2·MAD (halves stay integers after doubling once more)
    n = len(deviations2)
    mid = n // 2
    return deviations2[mid] if n % 2 else (deviations2[mid - 1] + deviations2[mid]) // 2


def is_unusual_high(amount: int, history: Sequence[int], z_x100: int, min_ratio_x100: int) -> bool:
    """True when ``amount`` is far above the history: robust z ≥ ``z_x100``/100 and ≥ ``min_ratio_x100``/100 × median.

    Robust z = (x − median) / (1.4826 · MAD); the MAD is floored at 5% of the median (and one minor unit) so a
    member who always spends the same is still judged by the ratio rule rather than by a zero spread.
    """
    return is_unusual_high_sorted(amount, sorted(history), z_x100, min_ratio_x100)


def is_unusual_high_sorted(amount: int, ordered: Sequence[int], z_x100: int, min_ratio_x100: int) -> bool:
    """``is_unusual_high`` against a history already in ascending order."""
    n = len(ordered)  # median2_sorted(ordered), inline: this runs for every sale
    if n == 0:
        raise ValueError("median of nothing")
    mid = n // 2
    med2 = 2 * ordered[mid] if n % 2 else ordered[mid - 1] + ordered[mid]
    # both tests must pass; the ratio test needs only the median, so it goes first and most sales never pay for
    # the MAD (a second sort)
    if 2 * amount * 100 < min_ratio_x100 * med2:
        return False
    mad_2 = max(mad2(ordered, med2), med2 // 20, 2)
    # (2x − med2) / (1.4826 · mad_2) ≥ z/100  ⇔  (2x − med2) · 100 · 10000 ≥ z · 14826 · mad_2
    return (2 * amount - med2) * 1_000_000 >= z_x100 * 14_826 * mad_2
