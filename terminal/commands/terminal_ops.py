"""cardpos terminal op ...: headless cashier operations."""

from __future__ import annotations

from terminal.cliutil import Subparsers


def register(subparsers: Subparsers) -> None:
    """Add this module's commands (filled in by its issue)."""
