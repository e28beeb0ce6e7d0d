"""Anomaly alerts: detection observers, the alert store and delivery (filled in by the anomaly issue)."""

from __future__ import annotations

from pathlib import Path


def install(ledger_dir: Path) -> None:
    """Create the alert tables and subscribe the detectors to ingest events. Called by ``ledger serve`` and
    ``ledger init`` after the ledger database is open."""
