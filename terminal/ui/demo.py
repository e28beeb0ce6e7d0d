"""What the app needs from ``cardpos demo`` to let a person tap simulated cards from the keyboard.

The demo command implements this Protocol by writing ``tap N`` to the simulator process's stdin; the tap then
comes back through the real reader path (simulator pty → reader thread → counter), exactly like a real card.
"""

from __future__ import annotations

from typing import Protocol


class DemoTapper(Protocol):
    def cards(self) -> list[tuple[int, str, str]]:
        """Wallet cards as ``(index, label, kind)``, e.g. ``(0, "Alice gold", "genuine")``."""
        ...

    def accounts(self) -> list[tuple[str, str, str]]:
        """The demo's sign-ins as ``(role, cashier id, PIN)``, shown on the sign-in screen; ``[]`` shows none."""
        ...

    def tap(self, index: int) -> None:
        """Tap wallet card ``index`` on the simulated reader. May block briefly; the app calls it in a worker."""
        ...
