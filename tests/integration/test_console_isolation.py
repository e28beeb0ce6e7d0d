"""Tenant isolation in the console, over HTTP against a real console process and a real ledger (issue 17).

Two merchants share one program: ``alpha`` (a till at alpha-1 that took a top-up and made a sale, an alert on that
till) and the fixture's ``managed`` (a till at managed-1, the member's home store). ``max`` manages ``managed``;
``bea`` manages ``alpha``. Every console route and export, asked by ``max`` about alpha's things, is refused, not
found, or shows nothing of alpha; the member's shared profile (notes, preferences) shows at both merchants, their
sale at alpha only to alpha. ``bea`` sees her own; the owner sees the whole program and the signed statement.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.console import roles
from ledger.console.roles import ROUTES, Role
from ledger.settlement import periods
from tests.fixtures.console import MANAGED_MERCHANT, PASSWORD, ConsoleClient, ConsoleWorld, start_console_world
from tests.fixtures.ledger import InProcessTill, backdate_enrollment, enroll_in_process, sale, topup

PERIOD = "2026-10"  # over (the console runs on the real clock), so it can be closed and signed
SALE_AT_ALPHA = 4_321  # 43.21: the member's sale at alpha, which managed must never see
ALPHA_MARKERS = ("alpha", "Alpha Bistro", "43.21", "alpha alert")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleWorld]:
    world = start_console_world(tmp_path_factory.mktemp("isolation"))
    try:
        yield world
    finally:
        world.console.stop()
        world.ledger.stop()


def _till(ledger: Any, store_id: str) -> InProcessTill:
    from ledger import admin

    _, code = admin.add_terminal(f"{store_id} till", store_id)
    key = Ed25519PrivateKey.generate()
    body = enroll_in_process(ledger, code, key)
    till = InProcessTill(ledger, body["terminal_id"], key, bytes.fromhex(body["ledger_hpke_public_key"]))
    backdate_enrollment(till.terminal_id, periods.start_ms(PERIOD))
    till.wall_ms = periods.start_ms(PERIOD) + 5 * 86_400_000
    return till


@pytest.fixture(scope="module")
def alpha(world: ConsoleWorld) -> dict[str, str]:
    """Alpha's things (the targets of the walk), and the member both merchants serve."""
    from ledger import admin, alert_store, store
    from ledger.anomaly.model import Finding, Severity, SubjectType
    from ledger.home import open_ledger
    from ledger.merchants import admin as merchants
    from ledger.settlement import books

    world.open_admin()
    ledger = open_ledger(world.ledger.ledger_dir, world.ledger.db_url)
    merchants.add_merchant("Alpha Bistro", merchant_id="alpha")
    merchants.assign_store("alpha-1", "alpha", name="Alpha Bistro floor 1")
    merchants.assign_store("managed-1", MANAGED_MERCHANT, name="Managed lobby")
    member = admin.add_member("Shared Member", store_id="managed-1", phone="+86 139 7777 0001",
                              notes="likes jasmine tea", prefs={"seat": "window"}, member_id="SHARED1")
    card = admin.issue_card(member).card_id
    alpha_till, managed_till = _till(ledger, "alpha-1"), _till(ledger, "managed-1")
    alpha_till.append("topup", topup(member, 10_000, card=card))
    alpha_till.append("sale", sale(member, SALE_AT_ALPHA, card=card))
    assert alpha_till.ingest(1, 2).applied == 2
    managed_till.append("sale", sale(member, 1_000, card=card))
    assert managed_till.ingest(1, 1).applied == 1
    now = int(time.time() * 1000)
    with store.atomic_write():
        recorded = alert_store.record_findings(
            [Finding("velocity", Severity.WARNING, SubjectType.TERMINAL, alpha_till.terminal_id, now, ("x:1",),
                     "alpha alert on the bistro till")], now, 3_600_000)
        # an alert on managed's own till that names alpha's store and cites alpha's sale as evidence (what the
        # cloned-card rule raises when one card is used at both): managed sees the alert, not alpha's part of it
        shared = alert_store.record_findings(
            [Finding("cloned_card", Severity.CRITICAL, SubjectType.CARD, card, now,
                     (f"{alpha_till.terminal_id}:2", f"{managed_till.terminal_id}:1"),
                     f"card {card} used at stores alpha-1 and managed-1 3 s apart",
                     terminal_id=managed_till.terminal_id)], now, 3_600_000)
    books.close(PERIOD, actor="test")
    world.add_admin("bea", Role.MERCHANT_MANAGER, merchant="alpha")
    from ledger.campaigns import plan, tables
    from ledger.campaigns.model import Kind

    tables.create_tables()  # campaigns are the program's (marketing's): a manager is refused them all
    campaign_id = plan.create_campaign(plan.CampaignSpec(name="walk", kind=Kind.PROMOTION, channel="sms",
                                                         segment="all", text_zh="你好", text_en="hello"),
                                       actor="test", now_ms=int(time.time() * 1000))
    return {"campaign_id": campaign_id, "member_id": member, "card_id": card, "terminal_id": alpha_till.terminal_id,
            "managed_terminal": managed_till.terminal_id, "alert_id": str(recorded[0].alert_id), "admin": "bea",
            "merchant_id": "alpha", "period": PERIOD, "name": "bea", "shared_alert": str(shared[0].alert_id)}


def _signed_in(world: ConsoleWorld, name: str) -> ConsoleClient:
    client = ConsoleClient(world.url)
    assert client.signin(name, PASSWORD).status_code == 303
    return client


def _leaks(text: str, markers: tuple[str, ...]) -> list[str]:
    return [m for m in markers if m.lower() in text.lower()]


def test_every_route_and_export_of_another_merchant_is_refused_or_empty(world: ConsoleWorld,
                                                                        alpha: dict[str, str]) -> None:
    max_ = world.client(Role.MERCHANT_MANAGER)
    csrf = max_.csrf()
    markers = (*ALPHA_MARKERS, alpha["terminal_id"])
    wrong: list[str] = []
    walked = 0
    extra_gets = [f"/alerts?terminal={alpha['terminal_id']}", "/alerts/feed?after=0",
                  f"/settlement-liability?day={PERIOD}-31", "/members?q=%2B86+139+7777+0001",
                  "/alerts?rule=velocity"]
    for route in ROUTES:
        if route.name in ("signin", "signin_form", "signout", "lang", "static", "account_password"):
            continue  # not about anyone's data (the sign-in, the language switch, one's own account)
        path = route.path.format(**alpha)
        if route.name == "home":
            assert max_.get(path).headers.get("location", "").endswith("/dashboard")
            continue
        if route.changes_state:
            answer = max_.post(path, {"csrf": csrf, "name": "x", "store": "alpha-1", "reason": "lost",
                                      "notes": "overwritten"}, csrf=False)
            ok = answer.status_code == 403
        else:
            answer = max_.get(path)
            leaked = _leaks(answer.text, markers) if answer.status_code == 200 else []
            ok = answer.status_code in (403, 404) or (answer.status_code == 200 and not leaked)
            if leaked:
                wrong.append(f"{route.method} {path}: shows {leaked}")
        walked += 1
        allowed = roles.allowed(Role.MERCHANT_MANAGER, route.name)
        if not ok:
            wrong.append(f"{route.method} {path}: {answer.status_code} (role allowed={allowed})")
    for path in extra_gets:
        answer = max_.get(path)
        leaked = _leaks(answer.text, ALPHA_MARKERS)  # (the terminal filter's own value is echoed in its box)
        if answer.status_code not in (200, 403, 404) or leaked:
            wrong.append(f"GET {path}: {answer.status_code} shows {leaked}")
        walked += 1
    assert not wrong, "\n".join(wrong)
    assert walked >= len(ROUTES) - 7 + len(extra_gets)

    # what he may reach is refused outright or not found, not merely emptied
    assert max_.get("/merchants/alpha").status_code == 404
    assert max_.get(f"/alerts/{alpha['alert_id']}").status_code == 404
    shared = max_.get(f"/alerts/{alpha['shared_alert']}")
    assert shared.status_code == 200 and "[another merchant]" in shared.text
    assert alpha["managed_terminal"] in shared.text
    assert not _leaks(shared.text, markers), "the alert on his own till, without alpha's store or sale"
    # the member is the program's: shared profile at every merchant, the sale at alpha not
    page = max_.get(f"/members/{alpha['member_id']}")
    assert page.status_code == 200
    assert "likes jasmine tea" in page.text and "window" in page.text
    assert alpha["managed_terminal"] in page.text, "his own merchant's sale is in the history"
    assert "Shared Member" not in page.text, "personal data stays masked for a merchant manager"
    # his own settlement lines and nothing else, without the program's signature (it is not the signed document)
    exported = json.loads(max_.get(f"/settlement/{PERIOD}/statement.json").text)
    assert exported["scope"] == MANAGED_MERCHANT and "signature" not in exported
    assert {p["party"] for p in exported["parties"]} == {MANAGED_MERCHANT}
    assert all(MANAGED_MERCHANT in (t["from"], t["to"]) for t in exported["transfers"])
    assert "alpha" not in max_.get(f"/settlement/{PERIOD}/statement.csv").text
    assert max_.post(f"/members/{alpha['member_id']}/details", {"notes": "x"}).status_code == 403


def test_the_other_merchant_sees_its_own(world: ConsoleWorld, alpha: dict[str, str]) -> None:
    bea = _signed_in(world, "bea")
    assert alpha["terminal_id"] in bea.get("/terminals").text
    assert alpha["managed_terminal"] not in bea.get("/terminals").text
    merchant = bea.get("/merchants/alpha")
    assert merchant.status_code == 200 and "Alpha Bistro floor 1" in merchant.text
    assert bea.get(f"/merchants/{MANAGED_MERCHANT}").status_code == 404
    statement = bea.get(f"/settlement/{PERIOD}")
    assert statement.status_code == 200 and "Alpha Bistro" in statement.text
    assert "Managed Merchant" not in statement.text
    assert "alpha alert" in bea.get("/alerts").text
    assert bea.get(f"/alerts/{alpha['alert_id']}").status_code == 200
    member = bea.get(f"/members/{alpha['member_id']}")
    assert "43.21" in member.text and alpha["managed_terminal"] not in member.text
    assert "managed-1" not in member.text, "the member's home store belongs to the other merchant"
    assert "likes jasmine tea" in member.text, "the shared profile shows at every merchant"
    exported = bea.get(f"/settlement/{PERIOD}/statement.csv")
    assert exported.headers["content-disposition"] == f'attachment; filename="settlement-{PERIOD}-alpha.csv"'
    assert "position,2026-10,,alpha,Alpha Bistro" in exported.text


def test_the_owner_sees_the_whole_program_and_the_signed_statement(world: ConsoleWorld,
                                                                   alpha: dict[str, str]) -> None:
    owner = world.client(Role.OWNER)
    listing = owner.get("/merchants").text
    assert "Alpha Bistro" in listing and "Managed Merchant" in listing
    assert PERIOD in owner.get("/settlement").text
    page = owner.get(f"/settlement/{PERIOD}")
    assert "Alpha Bistro" in page.text and "Managed Merchant" in page.text and "SHA-256" in page.text
    document = json.loads(owner.get(f"/settlement/{PERIOD}/statement.json").text)
    assert document["signature"]["sha256"] and sum(p["net"] for p in document["positions"]) == 0
    printable = owner.get(f"/settlement/{PERIOD}/print")
    assert printable.status_code == 200 and 'class="statement printable"' in printable.text
    liability = owner.get("/settlement-liability")
    assert liability.status_code == 200 and "alpha" in liability.text
    assert owner.get("/settlement/2026-13").status_code == 404
    assert owner.get("/settlement-liability?day=yesterday").status_code == 400


def test_a_merchant_manager_is_added_with_an_existing_merchant(world: ConsoleWorld, alpha: dict[str, str]) -> None:
    env = {**world.ledger.env, "NEW_PW": "a manager's password"}

    def add(*args: str) -> Any:
        from tests.fixtures.ledger import run_ledger_cli

        return run_ledger_cli(world.ledger.ledger_dir, env, "admin", "add", *args, "--password-env", "NEW_PW",
                              check=False)

    for args, said in ((("carl", "--role", "merchant_manager"), "needs the merchant"),
                       (("carl", "--role", "merchant_manager", "--merchant", "nowhere"), "no merchant 'nowhere'"),
                       (("carl", "--role", "support", "--merchant", "alpha"), "only a merchant manager")):
        refused = add(*args)
        assert refused.returncode != 0 and said in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert add("carl", "--role", "merchant_manager", "--merchant", "alpha").returncode == 0
    listed = world.ledger.admin("admin", "list").stdout
    assert any(line.startswith("carl") and "merchant alpha" in line for line in listed.splitlines())
    carl = _signed_in_as(world, "carl", "a manager's password")
    assert alpha["terminal_id"] in carl.get("/terminals").text


def _signed_in_as(world: ConsoleWorld, name: str, password: str) -> ConsoleClient:
    client = ConsoleClient(world.url)
    assert client.signin(name, password).status_code == 303
    return client
