"""Pilot tests are coroutines run by anyio's pytest plugin on asyncio (Textual's loop)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/ui/" in str(item.fspath).replace("\\", "/") and item.get_closest_marker("anyio") is None:
            item.add_marker(pytest.mark.anyio)
