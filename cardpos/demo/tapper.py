"""The demo's "tap a card" panel: taps go to the simulator's console, then come back over the real serial path."""

from __future__ import annotations

import threading

from hwsim.errors import SimulatorError

from cardkit.wallet import Wallet
from cardpos.demo.children import Child


class SimTapper:
    """``terminal.ui.demo.DemoTapper`` backed by a running ``cardpos sim`` child (its stdin console)."""

    def __init__(self, sim: Child, wallet: Wallet, *, accounts: list[tuple[str, str, str]] | None = None) -> None:
        self._sim = sim
        self._wallet = wallet
        self._accounts = list(accounts or [])
        self._lock = threading.Lock()  # one console conversation at a time

    def cards(self) -> list[tuple[int, str, str]]:
        return [(number, card.label, card.kind) for number, card in enumerate(self._wallet.cards, start=1)]

    def accounts(self) -> list[tuple[str, str, str]]:
        return list(self._accounts)

    def tap(self, index: int) -> None:
        with self._lock:
            reply = self._sim.command(f"tap {index}")
        if not reply.startswith("ok"):
            raise SimulatorError(f"the simulator refused the tap: {reply}")
