"""The settlement pages in a real Chromium against a real console and ledger: three merchants of a hotel (restaurant,
shop, spa) with a till each, a top-up at the shop spent at the restaurant and the spa, October closed and signed.
The owner opens the periods, the statement with its who-owes-whom table and its printable page; the spa's manager
sees only the spa's lines. Pages are photographed into docs/screens/console-*.png (``CARDPOS_SCREENS=1``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.console.roles import Role
from ledger.settlement import periods
from tests.browser.conftest import screenshot
from tests.fixtures.console import PASSWORD, ROLE_ADMINS, ConsoleWorld
from tests.fixtures.ledger import InProcessTill, backdate_enrollment, enroll_in_process, sale, topup

pytestmark = pytest.mark.xdist_group("settlement-browser")

PERIOD = "2026-10"
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def hotel(console_world: ConsoleWorld) -> dict[str, str]:
    from ledger import admin
    from ledger.home import open_ledger
    from ledger.merchants import admin as merchants
    from ledger.settlement import books

    console_world.open_admin()
    ledger = open_ledger(console_world.ledger.ledger_dir, console_world.ledger.db_url)
    merchants.set_program(name="Lakeside Hotel", point_cost=(1, 1))
    tills = {}
    for merchant_id, name in (("restaurant", "Lakeside Restaurant"), ("shop", "Lobby Shop"), ("spa", "Lakeside Spa")):
        merchants.add_merchant(name, merchant_id=merchant_id)
        merchants.assign_store(f"{merchant_id}-1", merchant_id, name=f"{name} counter")
        _, code = admin.add_terminal(f"{merchant_id} till", f"{merchant_id}-1")
        key = Ed25519PrivateKey.generate()
        body = enroll_in_process(ledger, code, key)
        till = InProcessTill(ledger, body["terminal_id"], key, bytes.fromhex(body["ledger_hpke_public_key"]))
        backdate_enrollment(till.terminal_id, periods.start_ms(PERIOD))
        till.wall_ms = periods.start_ms(PERIOD) + 9 * 86_400_000
        tills[merchant_id] = till
    member = admin.add_member("Wang Fang", store_id="shop-1", member_id="GUEST1")
    card = admin.issue_card(member).card_id
    tills["shop"].append("topup", topup(member, 100_000, card=card, bonus=10_000))
    tills["restaurant"].append("sale", sale(member, 38_800, card=card, pts_earn=388))
    tills["spa"].append("sale", sale(member, 52_000, card=card, pts_earn=520))
    for merchant_id in ("shop", "restaurant", "spa"):  # the top-up reaches the ledger before it is spent
        till = tills[merchant_id]
        assert till.ingest(1, len(till.entries)).applied == len(till.entries)
    books.close(PERIOD, actor="test")
    console_world.add_admin("sara", Role.MERCHANT_MANAGER, merchant="spa")
    return {"member": member}


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
def owner(browser: Any, console_world: ConsoleWorld, hotel: dict[str, str]) -> Iterator[Any]:
    page = _signed_in(browser, console_world, ROLE_ADMINS[Role.OWNER])
    try:
        yield page
    finally:
        page.context.close()


def test_the_owner_reads_the_signed_statement_and_its_printable_page(owner: Any, console_world: ConsoleWorld) -> None:
    owner.click("nav >> text=Merchants")
    owner.wait_for_selector("#merchants-table tr[data-merchant=spa]")
    screenshot(owner, "merchants")
    owner.click("#merchants-table >> text=Lakeside Spa")
    owner.wait_for_selector("#merchant-name")
    assert "Lakeside Spa counter" in owner.inner_text("main")
    screenshot(owner, "merchant")
    owner.click("nav >> text=Settlement")
    owner.wait_for_selector(f"#periods-table tr[data-period='{PERIOD}']")
    assert "closed" in owner.inner_text(f"#periods-table tr[data-period='{PERIOD}']")
    screenshot(owner, "settlement")
    owner.click(f"#periods-table >> text={PERIOD}")
    owner.wait_for_selector("#transfers-table")
    # the shop took 1000.00 and funded a 100.00 bonus; the restaurant and the spa delivered 388.00 and 520.00
    # against it and issued 388 and 520 points at 0.01 each: the shop pays the operator, who pays the two
    net = {row.get_attribute("data-party"): row.query_selector("td.net").inner_text()
           for row in owner.query_selector_all("#positions-table tbody tr")}
    assert (net["restaurant"], net["spa"]) == ("384.12 CNY", "514.80 CNY")
    assert net["shop"].replace(",", "") == "-1100.00 CNY" and net["program"] == "201.08 CNY"
    transfers = owner.inner_text("#transfers-table")
    assert "shop" in transfers and "program" in transfers
    assert "SHA-256" in owner.inner_text("#signature")
    liability = owner.inner_text("#liability-table")
    assert "shop" in liability and "192.00 CNY" in liability, "1100.00 taken in less 908.00 redeemed"
    screenshot(owner, "statement")
    owner.click("#print-link")
    owner.wait_for_selector(".statement.printable")
    assert owner.query_selector("#csv-link") is None, "the printable page has no links to click"
    screenshot(owner, "statement-print")


def test_the_spa_manager_sees_only_the_spa(browser: Any, console_world: ConsoleWorld, hotel: dict[str, str]) -> None:
    page = _signed_in(browser, console_world, "sara")
    try:
        page.goto(f"{console_world.url}/settlement/{PERIOD}")
        page.wait_for_selector("#positions-table")
        parties = [r.get_attribute("data-party") for r in page.query_selector_all("#positions-table tbody tr")]
        assert parties == ["spa"]
        assert "Lobby Shop" not in page.inner_text("main") and "Restaurant" not in page.inner_text("main")
        assert "your merchant's lines only" in page.inner_text("#statement-status")
        screenshot(page, "statement-merchant")
    finally:
        page.context.close()
