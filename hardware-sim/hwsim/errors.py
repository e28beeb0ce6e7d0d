"""The simulators' own error: a bad flag, script or port is one sentence (``cardpos: ...``), never a traceback."""

from __future__ import annotations

from cardkit.errors import CardposError


class SimulatorError(CardposError):
    title = "Simulator error"
