"""Cashier sign-in against the real store: PIN hashes, wrong PINs, lockout, sign-out."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from terminal.ui.screens.idle import IdleScreen
from terminal.ui.screens.signin import SignInScreen
from tests.fixtures.ui import settle, sign_in

pytestmark = pytest.mark.anyio


async def test_right_pin_opens_the_idle_screen_with_the_cashier_in_the_top_bar(ui_app) -> None:
    app = ui_app()
    async with app.run_test(size=(80, 24)) as pilot:
        assert isinstance(app.screen, SignInScreen)
        await sign_in(pilot, "c1", "1111")
        assert isinstance(app.screen, IdleScreen)
        assert app.cashier.cashier_id == "c1"
        top = str(app.screen.query_one("#top-right", Static).render())
        assert "Cashier One (cashier)" in top
        assert "2026-09-21 14:13:20" in top


async def test_wrong_pin_says_how_many_attempts_are_left(ui_app) -> None:
    app = ui_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot, "c1", "0000")
        assert isinstance(app.screen, SignInScreen)
        error = str(app.screen.query_one("#signin-error", Static).render())
        assert "wrong PIN: 4 attempts left" in error
        assert app.cashier is None
        await pilot.press("1")  # typing again: the refusal was about the PIN before
        await pilot.pause()
        assert str(app.screen.query_one("#signin-error", Static).render()) == ""


async def test_five_wrong_pins_lock_the_cashier_even_against_the_right_pin(ui_app) -> None:
    app = ui_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot, "c1", "0000")
        for _ in range(4):
            await pilot.press(*"0000", "enter")
            await settle(pilot)
        await pilot.press(*"1111", "enter")
        await settle(pilot)
        assert isinstance(app.screen, SignInScreen)
        error = str(app.screen.query_one("#signin-error", Static).render())
        assert "locked until" in error
        assert app.cashier is None


async def test_unknown_cashier_is_refused_in_chinese_words(ui_app) -> None:
    app = ui_app("zh")
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot, "nobody", "1111")
        error = str(app.screen.query_one("#signin-error", Static).render())
        assert error.startswith("登录被拒绝")
        assert "没有工号为 nobody 的收银员" in error  # the reason in Chinese too, not the store's English


async def test_sign_out_returns_to_sign_in(ui_app) -> None:
    app = ui_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert isinstance(app.screen, SignInScreen)
        assert app.cashier is None
