"""Detector thresholds: the ``[anomalies]`` table of the rules file, with defaults for missing keys.

Every value is a whole number (the rules file's ``anomalies: Mapping[str, int]``). A count threshold raises
an alert when the count inside its window *reaches* the value. The keys are documented in docs/alerts.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields

from cardkit.errors import ConfigError

log = logging.getLogger("cardpos.ledger.anomaly")


@dataclass(frozen=True, slots=True)
class Thresholds:
    forged_taps_per_terminal_10min: int = 5
    """Forged (bad_signature / unknown_key) card rejects at one terminal within 10 minutes."""
    forged_taps_per_store_10min: int = 8
    """Forged rejects across one store's terminals within 10 minutes, when at least two terminals saw them."""
    revoked_taps_per_card_day: int = 2
    """Rejected taps of one revoked or held card within 24 hours."""
    clone_min_interval_s: int = 600
    """Two uses of one card at different stores closer than this are impossible (a cloned card)."""
    challenge_failures_per_card_day: int = 1
    """Failed challenge-response checks of one card within 24 hours (a copied card cannot answer)."""
    ops_per_card_hour: int = 20
    """Card operations (sale, top-up, redeem, fee) of one card within any hour."""
    ops_per_card_day: int = 60
    """Card operations of one card within any 24 hours."""
    amount_robust_z_x100: int = 600
    """A sale is unusual when (net − median) / (1.4826 × MAD) of the member's history reaches this / 100."""
    amount_min_ratio_x100: int = 300
    """... and its net amount is at least this / 100 times the member's median (guards a too-regular history)."""
    amount_min_history: int = 10
    """Sales of a member needed before its amounts are judged."""
    amount_history_size: int = 50
    """Most recent sales kept per member for the median and MAD."""
    refunds_voids_per_cashier_shift: int = 5
    """Refunds plus voids by one cashier within one shift (the floor: the fleet's norm may raise it)."""
    refunds_norm_mad_k_x100: int = 400
    """The norm: refunds + voids per closed shift, median + this / 100 × 1.4826 × MAD, over recent shifts."""
    refunds_norm_min_shifts: int = 20
    """Closed shifts needed before the norm is used (0 in ``refunds_norm_mad_k_x100`` turns the norm off)."""
    manual_entries_per_cashier_shift: int = 10
    """Manually entered (typed or scanned, not tapped) cards by one cashier within one shift."""
    clock_skew_s: int = 300
    """Most difference tolerated between a terminal's clock and the ledger's (or a jump of its own clock)."""
    terminal_silent_s: int = 3600
    """A terminal not heard from for this long is reported silent."""
    alert_dedup_s: int = 3600
    """Findings of the same rule about the same subject closer than this merge into one alert."""
    double_spend_hold: int = 1
    """1: put a card on hold when its stored value goes below zero after merging; 0: alert only."""
    entry_max_amount_minor: int = 10_000_000
    """Most minor units one journal entry may move; a larger one is quarantined (``ledger.semantics``)."""
    entry_max_points: int = 100_000_000
    """Most points one journal entry may earn, redeem or return; more is quarantined."""
    entry_clock_ahead_s: int = 86_400
    """An entry stamped further ahead of the ledger's clock than this when it arrives is quarantined."""
    entry_before_enrollment_s: int = 86_400
    """An entry stamped earlier than its terminal's enrollment less this is quarantined."""

    @classmethod
    def from_mapping(cls, raw: Mapping[str, int] | None) -> Thresholds:
        """Thresholds from the rules' ``anomalies`` table. Unknown names are logged and ignored: a newer rules
        file must never stop ingest."""
        known = {f.name for f in fields(cls)}
        values = {}
        for name, value in (raw or {}).items():
            if name not in known:
                log.warning("unknown anomaly threshold ignored", extra={"fields": {"threshold": name}})
                continue
            values[name] = value
        for name, value in values.items():
            if type(value) is not int or value < 0:
                raise ConfigError(f"rules: anomalies.{name} must be a whole number of at least 0, not {value!r}")
        return cls(**values)
