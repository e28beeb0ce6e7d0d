"""The console in a real Chromium against a real console process, a real ledger and a real terminal (its command
line: enroll, sales, sync). Tests run in order and tell one story: sign in; five wrong passwords lock an account;
a form without its CSRF token is refused; a terminal added on the page enrolls with the code the page showed; a
member found by phone shows the sale the terminal made a moment before; a preference changed on the page reaches
the terminal after its pull; rules published on the page make the ledger raise an alert from the terminal's next
sync, which appears on the open alerts page without a reload and is acknowledged; the auditor reads who looked at
that member. Every page is photographed at 1280×800 and 390 px wide into docs/screens/console-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ledger.console.roles import Role
from tests.browser.conftest import screenshot
from tests.conftest import REPO_ROOT
from tests.fixtures.console import PASSWORD, ROLE_ADMINS, ConsoleWorld, TerminalCli

# The tests walk one story on one console and one terminal (enroll, then sell, then look): keep them on one
# xdist worker, in order (make test runs --dist loadgroup).
pytestmark = pytest.mark.xdist_group("console-browser")

PHONE = "139 1234 5678"
MEMBER_ID = "BR1"
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def terminal(console_world: ConsoleWorld, tmp_path_factory: pytest.TempPathFactory) -> TerminalCli:
    return TerminalCli.make(tmp_path_factory.mktemp("browser-terminal"), console_world.ledger.env)


@pytest.fixture(scope="module")
def card(console_world: ConsoleWorld) -> str:
    """A member with a phone, stored value and a card; returns the card's text form (what a scanner reads)."""
    from ledger import admin

    console_world.open_admin()
    admin.add_member("Li Lei", phone=PHONE, email="li.lei@example.com", notes="prefers paper receipts",
                     balance=50_000, points=120, member_id=MEMBER_ID, prefs={"language": "zh"})
    return admin.issue_card(MEMBER_ID).token_text


def _signed_in(browser: Any, world: ConsoleWorld, name: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(world.url + "/signin")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    return page


@pytest.fixture(scope="module")
def owner(browser: Any, console_world: ConsoleWorld) -> Iterator[Any]:
    page = _signed_in(browser, console_world, ROLE_ADMINS[Role.OWNER])
    try:
        yield page
    finally:
        page.context.close()


def test_sign_in_shows_the_dashboard(browser: Any, console_world: ConsoleWorld, owner: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    page.goto(console_world.url + "/dashboard")
    page.wait_for_url("**/signin?next=*")  # not signed in: the sign-in form, then back
    screenshot(page, "signin")
    context.close()
    assert owner.locator("h1").inner_text() == "Dashboard"
    assert "Admins" in owner.locator("nav.nav").inner_text()


def test_five_wrong_passwords_lock_the_account(browser: Any, console_world: ConsoleWorld) -> None:
    console_world.add_admin("lockme", Role.SUPPORT)
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    for _ in range(5):
        page.goto(console_world.url + "/signin")
        page.fill("input[name=name]", "lockme")
        page.fill("input[name=password]", "not the password")
        page.click("button[type=submit]")
        assert "Wrong name, password or code" in page.locator(".error").inner_text()
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    assert "/signin" in page.url and "locked" in page.locator(".error").inner_text()
    screenshot(page, "signin-refused")
    context.close()


def test_a_form_posted_without_its_csrf_token_is_refused(owner: Any, console_world: ConsoleWorld) -> None:
    owner.goto(console_world.url + "/terminals")
    owner.evaluate("document.querySelector('form[action=\"/terminals\"] input[name=csrf]').remove()")
    owner.fill("form[action='/terminals'] input[name=name]", "forged till")
    with owner.expect_response(lambda r: r.url.endswith("/terminals") and r.request.method == "POST") as answer:
        owner.click("#add-terminal")
    assert answer.value.status == 403
    assert owner.locator("h1").inner_text() == "Not allowed"
    screenshot(owner, "refused")
    owner.goto(console_world.url + "/terminals")
    assert "forged till" not in owner.content()


def test_add_a_terminal_and_enroll_it_with_the_code_shown(owner: Any, console_world: ConsoleWorld,
                                                          terminal: TerminalCli) -> None:
    owner.goto(console_world.url + "/terminals")
    owner.fill("form[action='/terminals'] input[name=name]", "Front till")
    owner.click("#add-terminal")
    code = owner.locator("#enroll-code").inner_text().strip()
    terminal_id = owner.locator("#new-terminal-id").inner_text().strip()
    assert owner.locator("#enrollment svg.qr").count() == 1
    screenshot(owner, "terminal-added")
    enrolled = terminal.json("enroll", "--ledger", console_world.ledger.url, "--code", code)
    assert enrolled["terminal_id"] == terminal_id
    terminal.run("sync", "--once")  # the pull carries the terminal's version and queue, signed
    owner.goto(console_world.url + "/terminals")
    row = owner.locator(f"tr[data-terminal='{terminal_id}']")
    assert "online" in row.inner_text()
    from cardkit import __version__

    assert row.locator("td[data-label='Version']").inner_text().strip() == __version__
    assert row.locator("td[data-label='To send']").inner_text().strip() == "0"
    screenshot(owner, "terminals")


def test_find_a_member_by_phone_and_see_the_sale_made_a_moment_before(owner: Any, console_world: ConsoleWorld,
                                                                      terminal: TerminalCli, card: str) -> None:
    terminal.run("sync", "--once")  # the member's snapshot reaches the terminal
    sale = terminal.json("op", "sale", "12.50", "--card", card)
    assert sale["ok"] is not False
    terminal.run("sync", "--once")
    owner.goto(console_world.url + "/members")
    owner.fill("input[name=q]", "139-1234-5678")
    owner.click("form.search button[type=submit]")
    owner.locator("#results").wait_for()
    assert "Li Lei" in owner.locator("#results").inner_text()
    screenshot(owner, "members")
    owner.click(f"#results a[href='/members/{MEMBER_ID}'] >> nth=0")
    owner.wait_for_url(f"**/members/{MEMBER_ID}")
    history = owner.locator("#history").inner_text()
    assert "sale" in history and "12.50 CNY" in history
    assert owner.locator("#member-balance").inner_text() == "487.50 CNY"
    screenshot(owner, "member")


def test_change_a_preference_and_see_it_reach_the_terminal(owner: Any, console_world: ConsoleWorld,
                                                           terminal: TerminalCli, card: str) -> None:
    owner.goto(console_world.url + f"/members/{MEMBER_ID}")
    owner.click("details.card summary")
    owner.locator("#member-edit input[name=pref_key]").last.fill("drink")
    owner.locator("#member-edit input[name=pref_value]").last.fill("oolong tea")
    owner.click("#save-member")
    owner.wait_for_url("**msg=member_saved")
    assert "oolong tea" in owner.locator("#member-prefs").inner_text()
    terminal.run("sync", "--once")
    seen = terminal.json("op", "balance", "--card", card)
    assert seen["prefs"]["drink"] == "oolong tea"


def test_rules_published_on_the_page_raise_an_alert_that_appears_and_is_acknowledged(
        owner: Any, console_world: ConsoleWorld, terminal: TerminalCli, card: str) -> None:
    text = (REPO_ROOT / "terminal" / "defaults" / "rules.toml").read_text(encoding="utf-8")
    assert "ops_per_card_hour = 20" in text
    owner.goto(console_world.url + "/rules")
    owner.fill("#rules-text", text.replace("ops_per_card_hour = 20", "ops_per_card_hour = 2"))
    owner.click("#check-rules")
    preview = owner.locator("#rules-preview").inner_text()
    assert "anomalies.ops_per_card_hour" in preview and "2" in preview
    screenshot(owner, "rules-preview")
    owner.click("#publish-rules")
    owner.wait_for_url("**msg=rules_published")
    screenshot(owner, "rules")

    owner.goto(console_world.url + "/alerts")  # open before the sync: the alert must come without a reload
    assert owner.locator("#alerts-table tr[data-alert]").count() == 0
    for _ in range(2):
        terminal.json("op", "sale", "3.00", "--card", card)
    terminal.run("sync", "--once")
    fresh = owner.locator("#alerts-table tr[data-alert]", has_text="velocity")
    fresh.first.wait_for(timeout=TIMEOUT_MS)
    screenshot(owner, "alerts")
    fresh.first.locator("a").first.click()
    owner.wait_for_url("**/alerts/*")
    assert "sale" in owner.locator("table.list").first.inner_text(), "the entries behind the alert"
    owner.fill("form[action$='/acknowledge'] input[name=note]", "called the store: a family sharing one card")
    owner.click("#acknowledge")
    owner.wait_for_url("**msg=alert_acknowledged")
    assert owner.locator("#alert-status").inner_text() == "acknowledged"
    assert "family sharing one card" in owner.locator("ul.history").inner_text()
    screenshot(owner, "alert")


def test_the_auditor_reads_who_looked_at_the_member(browser: Any, console_world: ConsoleWorld) -> None:
    page = _signed_in(browser, console_world, ROLE_ADMINS[Role.AUDITOR])
    nav = page.locator("nav.nav").inner_text()
    assert "Audit log" in nav and "Members" not in nav and "Admins" not in nav
    page.click("nav.nav >> text=Audit log")
    page.fill("form.filters input[name=member]", MEMBER_ID)
    page.check("form.filters input[name=reads]")
    page.click("form.filters button[type=submit]")
    assert page.locator("#audit-question").inner_text() == f"Who looked at member {MEMBER_ID}"
    table = page.locator("#audit-table").inner_text()
    assert ROLE_ADMINS[Role.OWNER] in table and "via console from 127.0.0.1" in table
    assert "member_search" in table and "member_view" in table
    screenshot(page, "audit")
    page.goto(console_world.url + f"/members/{MEMBER_ID}")
    assert page.locator("h1").inner_text() == "Not allowed"
    page.context.close()


def test_pages_in_chinese_and_the_rest_photographed(owner: Any, console_world: ConsoleWorld) -> None:
    for path, name in (("/dashboard", "dashboard"), ("/admins", "admins"), ("/account", "account")):
        owner.goto(console_world.url + path)
        screenshot(owner, name)
    owner.goto(console_world.url + "/dashboard")
    owner.click("a[lang=zh]")  # back to the same page, in Chinese
    owner.wait_for_url("**/dashboard")
    assert owner.locator("h1").inner_text() == "概览"
    assert "警报" in owner.locator("nav.nav").inner_text()
    screenshot(owner, "dashboard-zh")
    owner.goto(console_world.url + f"/members/{MEMBER_ID}")
    assert "各门店的消费记录" in owner.content()
    screenshot(owner, "member-zh")
    owner.click("a[lang=en]")


def test_marketing_creates_a_promotion_and_reads_the_analytics(browser: Any, console_world: ConsoleWorld) -> None:
    """The marketing role's pages in the browser: a promotion created from the form (its page, preview and
    results), the analytics page with the members' segments; photographed."""
    page = _signed_in(browser, console_world, ROLE_ADMINS[Role.MARKETING])
    try:
        page.goto(console_world.url + "/campaigns")
        page.fill("#create-campaign input[name=name]", "Winter tea week")
        page.select_option("#create-campaign select[name=kind]", "promotion")
        page.fill("#create-campaign input[name=segment]", "at_risk")
        page.fill("#create-campaign input[name=coupon_amount]", "10.00")
        page.fill("#create-campaign [name=text_zh]", "{name}，本周茶饮八折")
        page.fill("#create-campaign [name=text_en]", "{name}, 20% off tea this week")
        page.click("#create-campaign button[type=submit]")
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Winter tea week"
        assert page.locator("#results").count() == 1
        screenshot(page, "campaign")
        page.goto(console_world.url + "/campaigns")
        assert "Winter tea week" in page.locator("#campaigns-table").inner_text()
        screenshot(page, "campaigns")
        page.goto(console_world.url + "/analytics")
        assert page.locator("h1").inner_text() == "Analytics" and page.locator("p.error").count() == 0
        screenshot(page, "analytics")
        page.goto(console_world.url + "/analytics?view=segments")
        assert page.locator("nav.tabs a[aria-current=page]").inner_text() != ""
        assert page.locator("p.error").count() == 0
        screenshot(page, "analytics-segments")
    finally:
        page.context.close()
