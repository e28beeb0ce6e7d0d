"""Browser tests drive Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/run``) through Playwright;
no browser is ever downloaded. One browser per test module; each test opens its own context (cookies).

Every page is photographed on every run. The pictures go to ``docs/screens/console-*.png`` with
``CARDPOS_SCREENS=1`` (``CARDPOS_SCREENS=1 pytest tests/browser``), else to a temporary directory: an ordinary
test run must not rewrite tracked files (timestamps and ids differ on every run).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CARDPOS_CHROMIUM", "/usr/bin/chromium")
DOCS_SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"
SCREENS = DOCS_SCREENS if os.environ.get("CARDPOS_SCREENS") == "1" else Path(tempfile.gettempdir()) / "cardpos-screens"
VIEWPORTS = {"wide": (1280, 800), "phone": (390, 844)}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (.ci/run installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def screenshot(page: Any, name: str) -> None:
    """``console-NAME-wide.png`` (1280×800 viewport) and ``-phone.png`` (390 px wide), full page, in SCREENS."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    for tag, (width, height) in VIEWPORTS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SCREENS / f"console-{name}-{tag}.png"), full_page=True, animations="disabled")
    page.set_viewport_size(before)
