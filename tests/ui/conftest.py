"""Pilot tests are coroutines run by anyio's pytest plugin on asyncio (Textual's loop); each async test module
sets ``pytestmark = pytest.mark.anyio``."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
