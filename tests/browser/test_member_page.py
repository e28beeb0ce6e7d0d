"""A member checks their own account in Chromium at phone width: signs in with a code the gateway simulator
delivered (or, signing in with their email, a code a real SMTP server received over STARTTLS), sees the sale a
terminal made a moment before; five wrong codes lock the sign-in."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.fixtures.member_page import MEMBER_SENDER, MemberPageWorld

pytestmark = pytest.mark.xdist_group("member-page-browser")

PHONE_VIEWPORT = {"width": 390, "height": 844}
TIMEOUT_MS = 20_000


def _phone(browser: Any) -> Any:
    context = browser.new_context(viewport=PHONE_VIEWPORT, locale="en-US", is_mobile=True, has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def _ask_code(page: Any, world: MemberPageWorld, who: str) -> None:
    page.goto(world.url + "/me")
    page.fill("input[name=who]", who)
    page.click("#send-code")
    page.wait_for_url("**/me?step=code")


@pytest.mark.parametrize("channel", ["sms", "mail"])
def test_sign_in_with_a_code_by_sms_or_mail_and_see_the_sale_made_a_minute_before(
        browser: Any, member_page_world: MemberPageWorld, channel: str) -> None:
    world = member_page_world
    sale = world.terminal.json("op", "sale", "12.50", "--card", world.card)
    assert sale["ok"] is not False
    world.terminal.run("sync", "--once")
    page = _phone(browser)
    try:
        if channel == "sms":
            before = len(world.codes_sent())
            _ask_code(page, world, "139 1234 5678")
            screenshot(page, "member-code")
            code = world.wait_for_code(before)
        else:  # typed with the phone's keyboard, mixed case
            before = len(world.mails_to())
            _ask_code(page, world, "Han@example.com")
            code = world.wait_for_mailed_code(before)
        page.fill("input[name=code]", code)
        page.click("#signin")
        page.locator("#balance").wait_for()
        assert page.locator("h1").inner_text() == "Han Meimei"
        history = page.locator("#history").inner_text()
        assert "sale" in history and "12.50" in history and "store-1" in history
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]
        if channel == "sms":
            screenshot(page, "member-account")
    finally:
        page.context.close()


def test_five_wrong_codes_lock_the_sign_in(browser: Any, member_page_world: MemberPageWorld) -> None:
    world = member_page_world
    page = _phone(browser)
    try:
        before = len(world.codes_sent())
        _ask_code(page, world, MEMBER_SENDER)
        code = world.wait_for_code(before)
        wrong = f"{(int(code) + 7) % 10**6:06d}"
        for _ in range(4):
            page.fill("input[name=code]", wrong)
            page.click("#signin")
            assert "That code is not right" in page.locator("#message").inner_text()
        page.fill("input[name=code]", wrong)
        page.click("#signin")
        assert "locked for 15 minutes" in page.locator("#message").inner_text()
        screenshot(page, "member-locked")
        _ask_code(page, world, MEMBER_SENDER)  # the right code is gone, and no new one comes
        page.fill("input[name=code]", code)
        page.click("#signin")
        assert page.locator("#balance").count() == 0
    finally:
        page.context.close()
