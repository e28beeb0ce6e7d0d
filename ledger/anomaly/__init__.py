"""Anomaly detection at the ledger: pure detectors over journal entries and ingest events.

``engine.AnomalyEngine`` routes ledger events to the detectors in ``cards``, ``cashiers`` and ``terminals``;
each detector reads and updates a little per-subject state through a ``state.StateStore`` and returns
``model.Finding`` values. Nothing here touches the database directly: ``ledger.alerts`` persists state and
findings (as deduplicated alerts) and acts on them (holding cards).
"""

from ledger.anomaly.batch import BatchPlan, plan_batch
from ledger.anomaly.engine import AnomalyEngine, LedgerView, NullLedgerView
from ledger.anomaly.model import Finding, Severity, op_id
from ledger.anomaly.state import MemoryState, StateStore
from ledger.anomaly.thresholds import Thresholds

__all__ = [
    "AnomalyEngine", "BatchPlan", "Finding", "LedgerView", "MemoryState", "NullLedgerView", "Severity",
    "StateStore", "Thresholds", "op_id", "plan_batch",
]
