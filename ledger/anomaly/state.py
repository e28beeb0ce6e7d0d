"""Small per-subject detector state, as JSON-able dicts under string keys.

Keys are ``<detector>:<subject>`` (``vel:card-1``). The in-memory store serves tests and the benchmark; the
ledger persists the same dicts in its database (``ledger.alert_store.DbState``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol


class StateStore(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any]) -> None: ...

    def scan(self, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]: ...

    def delete(self, key: str) -> None: ...


class MemoryState:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.data.get(key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.data[key] = value

    def scan(self, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for key, value in list(self.data.items()):
            if key.startswith(prefix):
                yield key, value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)
