"""Whole-number settings a ledger process reads from its environment (``CARDPOS_LEDGER_*``).

A value that is not a whole number is logged and the default kept, and a value out of range is clamped: these tune
a running ledger (windows, lifetimes, intervals), and a typo in one must not stop it from serving.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("cardpos.ledger.settings")


def env_int(name: str, default: int, low: int, high: int) -> int:
    """The environment's ``name`` as an int in ``[low, high]``, or ``default`` when it is unset, empty or not a
    whole number."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        log.warning("ignored a setting that is not a whole number", extra={"fields": {"setting": name}})
        return default
    return min(high, max(low, value))
