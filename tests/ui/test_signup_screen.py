"""The sign-up screen driven with keys alone at 80x24 through the real counter and journal, in both languages."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Static

from terminal.ui.screens.dialogs import DeclineScreen
from terminal.ui.screens.idle import IdleScreen
from terminal.ui.screens.signup import SignupScreen
from tests.fixtures.ui import UiWorld, settle, sign_in, text_of

pytestmark = pytest.mark.anyio



def signups(ui_world: UiWorld) -> list:
    return [e for e in ui_world.counter.store.journal.entries() if e.kind == "member_signup"]


async def test_a_member_signs_up_with_keys_alone_and_the_card_waits_for_the_ledger(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, SignupScreen)
        assert "I agree to receive offers" in text_of(app, "#signup-wording")
        assert "SMS offers: no" in text_of(app, "#signup-choices")
        await pilot.press(*"Wang Fang", "enter", *"139 1234 5678", "enter", "f5", "f7")
        await pilot.press(*"1988-02-29", "enter")
        await settle(pilot)
        result = text_of(app, "#signup-result")
        assert "Signed up: member P" in result and "Card queued" in result
        # Everything on the screen fits in 80x24: no widget reaches past the right edge or the bottom.
        for widget in app.screen.query("#body *"):
            region = widget.region
            assert region.right <= 80 and region.bottom <= 24, (widget, region)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, IdleScreen)
    [entry] = signups(ui_world)
    p = entry.payload
    assert (p["name"], p["phone"], p["birthday"], p["language"]) == ("Wang Fang", "139 1234 5678", "1988-02-29",
                                                                       "en")
    assert p["consent"] == {"sms": True, "mail": False, "wording": "consent_1"}
    assert p["member"].startswith("P") and entry.cashier_id == "c1"


async def test_in_chinese_the_wording_and_a_refusal_are_chinese_and_nothing_is_journaled(ui_world: UiWorld) -> None:
    app = ui_world.app(lang="zh")
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, SignupScreen)
        assert "退订" in text_of(app, "#signup-wording") and "语言：中文" in text_of(app, "#signup-choices")
        await pilot.press("enter", "enter", "enter")  # nothing typed: asked for the name and mobile
        await settle(pilot)
        assert "请输入会员姓名和手机号" in text_of(app, "#signup-result")
        assert app.screen.query_one("#signup-name", Input).has_focus  # back to the first empty field
        await pilot.press(*"Li")
        await pilot.pause()
        assert text_of(app, "#signup-result") == ""  # the stale message went as the cashier typed
        await pilot.press("enter", *"13800138000", "enter", *"2099-01-01", "enter")
        await settle(pilot)
        assert isinstance(app.screen, DeclineScreen)
        assert "生日请按 YYYY-MM-DD 输入" in str(app.screen.query_one("#decline-why", Static).render())
    assert signups(ui_world) == []


async def test_the_idle_screen_offers_sign_up(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        assert isinstance(app.screen, IdleScreen)
        assert any(b.action == "signup" and b.description == "Join"
                   for b in app.screen.active_bindings.values() for b in [b.binding])
        await pilot.press("n")
        await settle(pilot)
        assert app.screen.query_one("#signup-name", Input).has_focus
