"""Browser tests drive Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/run``) through Playwright;
no browser is ever downloaded. One browser per test module; each test opens its own context (cookies)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CARDPOS_CHROMIUM", "/usr/bin/chromium")
SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"
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
    """``docs/screens/console-NAME-wide.png`` (1280×800 viewport) and ``-phone.png`` (390 px wide), full page."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    for tag, (width, height) in VIEWPORTS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SCREENS / f"console-{name}-{tag}.png"), full_page=True, animations="disabled")
    page.set_viewport_size(before)
