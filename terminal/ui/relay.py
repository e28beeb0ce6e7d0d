"""A callback that can be handed to a service before the app that will receive its calls exists.

The reader device and the sync service take their callbacks at construction (in ``build_services``), but the
app is built afterwards; the relay forwards to whatever the app attaches and keeps the last value so a status
reported before the app started is not lost.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Relay(Generic[T]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._target: Callable[[T], None] | None = None
        self.last: T | None = None

    def __call__(self, value: T) -> None:
        with self._lock:
            self.last = value
            target = self._target
        if target is not None:
            target(value)

    def attach(self, target: Callable[[T], None] | None) -> None:
        with self._lock:
            self._target = target
