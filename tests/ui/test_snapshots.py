"""Snapshots of the main screens in both languages, at 80x24 and 100x30, with a fixed clock and no cursor blink.

Update after an intended change with ``pytest tests/ui/test_snapshots.py --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.widgets import Input

from tests.fixtures.cards import key_from_seed
from tests.fixtures.ui import TECHNICIAN_PIN, UiWorld, settle, sign_in, tap

Steps = Callable[[Any, UiWorld], Awaitable[None]]


async def _steady(pilot: Any) -> None:
    await settle(pilot)
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False


async def idle(pilot: Any, world: UiWorld) -> None:
    await sign_in(pilot)


async def member(pilot: Any, world: UiWorld) -> None:
    await sign_in(pilot)
    await tap(pilot, world.world.token())


async def refusal(pilot: Any, world: UiWorld) -> None:
    await sign_in(pilot)
    await tap(pilot, world.world.token(key=key_from_seed(bytes([9]) * 32)))


async def sale_receipt(pilot: Any, world: UiWorld) -> None:
    await member(pilot, world)
    await pilot.press("s", *"100", "c")
    await settle(pilot)
    await pilot.press("enter")


async def technician(pilot: Any, world: UiWorld) -> None:
    await sign_in(pilot, "t1", TECHNICIAN_PIN)
    await pilot.press("f9")


async def signup(pilot: Any, world: UiWorld) -> None:
    await sign_in(pilot)
    await pilot.press("n", *"Wang Fang", "enter", *"139 1234 5678", "enter", "f5")


async def new_card(pilot: Any, world: UiWorld) -> None:
    # A tier upgrade with no ledger here: the new card screen says it is queued.
    await sign_in(pilot)
    await tap(pilot, world.world.std_token())  # standard, 1950.00 spent this year
    await pilot.press("s", *"50", "t", "enter")  # 50.00 cash reaches 2000.00
    await settle(pilot)
    await pilot.press("enter", "u")
    await settle(pilot)
    await pilot.press("enter")  # confirm
    await settle(pilot)
    await pilot.press("enter")  # the receipt, then the new card
    await settle(pilot)


SCREENS: dict[str, Steps] = {
    "idle": idle, "member": member, "refusal": refusal, "sale_receipt": sale_receipt, "technician": technician,
    "signup": signup, "new_card": new_card,
}
CASES = [(name, lang, (80, 24)) for name in SCREENS for lang in ("en", "zh")]
CASES += [(name, lang, (100, 30)) for name in ("idle", "member") for lang in ("en", "zh")]


@pytest.mark.parametrize(("screen", "lang", "size"), CASES,
                         ids=[f"{s}-{lang}-{w}x{h}" for s, lang, (w, h) in CASES])
def test_screen_snapshot(snap_compare: Any, ui_world: UiWorld, screen: str, lang: str,
                         size: tuple[int, int]) -> None:
    steps = SCREENS[screen]

    async def run_before(pilot: Any) -> None:
        await steps(pilot, ui_world)
        await _steady(pilot)

    assert snap_compare(ui_world.app(lang), terminal_size=size, run_before=run_before)
