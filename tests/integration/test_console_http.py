"""The console over HTTP, against a real ``cardpos ledger console`` process and a real ledger: every route ×
every role exactly as the role table says, sign-in with lockout and TOTP, CSRF and cross-site refusals, cookie
flags and security headers, and reads of personal data in the audit log (console, CLI, search)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from ledger.console import roles, totp
from ledger.console.roles import ROUTES, Role
from tests.conftest import REPO_ROOT
from tests.fixtures.console import MANAGED_MERCHANT, PASSWORD, ROLE_ADMINS, ConsoleClient, ConsoleWorld
from tests.fixtures.ledger import run_ledger_cli

RULES_TOML = (REPO_ROOT / "terminal" / "defaults" / "rules.toml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def targets(console_world: ConsoleWorld) -> dict[str, str]:
    """Real things for the routes' path parameters: a member with cards, a terminal, an alert, an admin."""
    from ledger import admin, alert_store, store
    from ledger.anomaly.model import Finding, Severity, SubjectType

    console_world.open_admin()
    member = admin.add_member("Walk Member", phone="+86 139 0000 1111", member_id="WALK1")
    admin.issue_card(member)
    card = admin.issue_card(member).card_id
    terminal_id, _ = admin.add_terminal("walk till", "store-1")
    with store.atomic_write():
        recorded = alert_store.record_findings(
            [Finding("velocity", Severity.WARNING, SubjectType.CARD, card, int(time.time() * 1000), ("x:1",),
                     "walk alert")], int(time.time() * 1000), 3_600_000)
    console_world.add_admin("victim", Role.SUPPORT)
    from ledger.campaigns import plan, tables
    from ledger.campaigns.model import Kind

    tables.create_tables()
    campaign_id = plan.create_campaign(plan.CampaignSpec(name="walk", kind=Kind.PROMOTION, channel="sms",
                                                         segment="all", text_zh="你好", text_en="hello"),
                                       actor="test", now_ms=int(time.time() * 1000))
    return {"member_id": member, "card_id": card, "terminal_id": terminal_id,
            "alert_id": str(recorded[0].alert_id), "admin": "victim", "campaign_id": campaign_id,
            "merchant_id": MANAGED_MERCHANT, "period": "2026-11"}


def _request(route: roles.Route, targets: dict[str, str]) -> tuple[str, dict[str, Any]]:
    params = {**targets, "name": "console.css" if route.name == "static" else targets["admin"]}
    path = route.path.format(**params)
    form: dict[str, Any] = {
        "account_password": {"current": "not the password", "new": "x" * 12, "repeat": "x" * 12},
        "terminal_add": {"name": "walk added", "store": "store-1"},
        "member_edit": {"notes": "walked", "pref_key": ["walk"], "pref_value": ["yes"]},
        "card_revoke": {"reason": "lost"},
        "rules_preview": {"toml": RULES_TOML},
        "rules_publish": {"toml": RULES_TOML, "base_version": "-1"},
        "admin_add": {"name": "walked", "role": "auditor"},
        "alert_resolve": {"note": "walked"},
        "signin": {"name": "nobody", "password": "wrong password"},
        "campaign_create": {"name": "walked", "kind": "promotion", "channel": "sms", "segment": "all",
                            "text_zh": "你好", "text_en": "hello"},
        "campaign_test_send": {"member": targets["member_id"]},
        "campaign_schedule": {"when": "2030-01-01T10:00"},
    }.get(route.name, {})
    if route.name == "lang":
        path += "?to=zh&next=/dashboard"
    return path, form


def test_every_route_allows_exactly_the_roles_in_the_table(console_world: ConsoleWorld,
                                                           targets: dict[str, str]) -> None:
    from ledger.console import views

    assert set(views.handlers()) == {r.name for r in ROUTES}, "every handler has a row in the role table"
    clients: dict[Role | None, ConsoleClient] = {role: console_world.client(role) for role in Role}
    clients[None] = console_world.client(None)
    tokens = {role: client.csrf() for role, client in clients.items() if role is not None}
    wrong: list[str] = []
    walked = 0
    for role, client in clients.items():
        for route in ROUTES:
            if route.name == "signout":
                continue  # walked below, with clients of their own
            path, form = _request(route, targets)
            if route.changes_state:
                if route.name == "signin":  # the sign-in form's own token: a cookie and the same value posted
                    client.http.cookies.set("cardpos_console_signin", "walk-token", path="/signin")
                    form["csrf"] = "walk-token"
                elif role is not None:
                    form["csrf"] = tokens[role]
                answer = client.post(path, form, csrf=False)
            else:
                answer = client.get(path)
            walked += 1
            allowed = roles.allowed(role, route.name)
            to_signin = answer.status_code == 303 and answer.headers["location"].startswith("/signin")
            if allowed:
                ok = answer.status_code != 403 and not (to_signin and route.name not in ("signin", "signout"))
            elif role is None and not route.changes_state and route.name != "alerts_feed":
                ok = to_signin  # a page: the sign-in form, then back here
            else:
                ok = answer.status_code == 403
            if not ok:
                wrong.append(f"{role} {route.method} {path}: {answer.status_code} (allowed={allowed})")
    for role in [*Role, None]:
        client = console_world.client(role)
        answer = client.post("/signout", {"csrf": client.csrf() if role else "x"}, csrf=False)
        expected = 303 if role is not None else 403
        if answer.status_code != expected:
            wrong.append(f"{role} POST /signout: {answer.status_code}")
        walked += 1
    assert not wrong, "\n".join(wrong)
    assert walked == len(ROUTES) * (len(Role) + 1)


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(console_world: ConsoleWorld) -> None:
    client = console_world.client(Role.OWNER)
    assert client.post("/terminals", {"name": "no token", "store": "s"}, csrf=False).status_code == 403
    assert client.post("/terminals", {"name": "bad token", "store": "s", "csrf": "forged"}).status_code == 403
    evil = client.post("/terminals", {"name": "cross site", "store": "s"}, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    fetched = client.post("/terminals", {"name": "cross site", "store": "s"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert fetched.status_code == 403
    assert "cross site" not in client.get("/terminals").text and "no token" not in client.get("/terminals").text


def test_oversized_and_non_form_posts_are_refused_before_parsing(console_world: ConsoleWorld) -> None:
    client = console_world.client(Role.OWNER)
    huge = client.post("/terminals", {"name": "x" * 70_000, "store": "s"})
    assert huge.status_code == 413
    as_json = client.http.post(console_world.url + "/terminals", json={"name": "x"}, timeout=20)
    assert as_json.status_code == 415


def test_five_wrong_passwords_lock_the_account_until_an_owner_resets_it(console_world: ConsoleWorld) -> None:
    console_world.add_admin("locky", Role.SUPPORT)
    client = ConsoleClient(console_world.url)
    for _ in range(5):
        assert client.signin("locky", "not my password").status_code == 401
    refused = client.signin("locky", PASSWORD)
    assert refused.status_code == 401, "a locked account refuses even the right password"
    assert "locked" in refused.text
    env = {**console_world.ledger.env, "NEW_PW": "a brand new password"}
    done = run_ledger_cli(console_world.ledger.ledger_dir, env, "admin", "reset", "locky", "--password-env", "NEW_PW")
    assert "unlocked" in done.stdout
    assert client.signin("locky", "a brand new password").status_code == 303
    audit = console_world.ledger.admin_json("audit", "--limit", "50")["rows"]
    actions = [r["action"] for r in audit if r["subject"] == "locky"]
    assert actions.count("admin_signin_refused") == 5
    assert "admin_locked" in actions and "admin_reset" in actions and "admin_signin" in actions


def test_a_totp_account_needs_a_fresh_code(console_world: ConsoleWorld) -> None:
    creds = console_world.add_admin("tina", Role.AUDITOR, totp=True)
    secret = totp.secret_from_text(creds.totp_secret)
    client = ConsoleClient(console_world.url)
    assert client.signin("tina", PASSWORD).status_code == 401, "no code"
    assert client.signin("tina", PASSWORD, "000000" if totp.totp(secret, int(time.time())) != "000000"
                         else "111111").status_code == 401
    code = totp.totp(secret, int(time.time()))
    assert client.signin("tina", PASSWORD, code).status_code == 303
    again = ConsoleClient(console_world.url)
    assert again.signin("tina", PASSWORD, code).status_code == 401, "a code works once"


def test_cookies_are_httponly_strict_and_secure_behind_tls(console_world: ConsoleWorld) -> None:
    client = ConsoleClient(console_world.url)
    answer = client.signin(ROLE_ADMINS[Role.SUPPORT])
    cookie = answer.headers["set-cookie"]
    assert "cardpos_console=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie, "plain HTTP on loopback: a Secure cookie would never come back"
    # a TLS-terminating proxy on 127.0.0.1 (trusted_proxies) says the browser used https
    proxied = ConsoleClient(console_world.url)
    page = proxied.get("/signin", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in page.headers["set-cookie"]
    assert page.headers["strict-transport-security"].startswith("max-age=")


def test_every_answer_carries_the_security_headers_and_no_server_banner(console_world: ConsoleWorld) -> None:
    client = console_world.client(Role.OWNER)
    for path in ("/signin", "/dashboard", "/static/console.css", "/no-such-page"):
        answer = client.get(path)
        csp = answer.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, path
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "server" not in answer.headers, path
    page = client.get("/dashboard").text
    assert "<script>" not in page and " style=" not in page and "onclick" not in page
    assert "http://" not in page.split("</head>")[0] and "https://" not in page.split("</head>")[0], "no CDN"


def test_reads_of_personal_data_are_audited_in_console_cli_and_search(console_world: ConsoleWorld) -> None:
    from ledger import admin

    console_world.open_admin()
    member = admin.add_member("Reader Target", phone="021-5555-0001", member_id="READ1")
    support = console_world.client(Role.SUPPORT)
    assert support.get(f"/members/{member}").status_code == 200
    found = support.get("/members?q=021+5555+0001")
    assert found.status_code == 200 and "READ1" in found.text
    shown = console_world.ledger.admin("member", "show", member, "--actor", "cli-person")
    assert "Reader Target" in shown.stdout
    auditor = console_world.client(Role.AUDITOR)
    page = auditor.get(f"/audit?member={member}&reads=1")
    assert page.status_code == 200
    assert f"Who looked at member {member}" in page.text
    assert "sam" in page.text and "cli-person" in page.text
    assert "via console from 127.0.0.1" in page.text and "via cli from host:" in page.text
    rows = console_world.ledger.admin_json("audit", "--limit", "30")["rows"]
    search = [r for r in rows if r["action"] == "member_search" and r["actor"] == "sam"]
    assert search and search[0]["details"]["member_ids"] == [member], "a result page is one entry with its ids"
    assert all(json.dumps(r["details"]).find("021-5555") < 0 for r in rows), "the audit log holds no phone numbers"
    what = auditor.get("/audit?actor=sam&reads=1")
    assert "What sam looked at" in what.text and member in what.text


def test_marketing_sees_members_masked(console_world: ConsoleWorld) -> None:
    from ledger import admin

    console_world.open_admin()
    member = admin.add_member("Masked Person", phone="13812345678", notes="secret note", member_id="MASK1")
    page = console_world.client(Role.MARKETING).get(f"/members/{member}")
    assert page.status_code == 200
    assert "Masked Person" not in page.text and "13812345678" not in page.text and "secret note" not in page.text
    assert "•••• 78" in page.text


def test_idle_sessions_expire(console_world: ConsoleWorld) -> None:
    from ledger.console import sessions

    console_world.open_admin()
    now = int(time.time() * 1000)
    token = sessions.start(ROLE_ADMINS[Role.SUPPORT], "127.0.0.1", now)
    assert sessions.find(token, now + sessions.IDLE_MS - 1000) is not None
    later = now + sessions.IDLE_MS - 1000 + sessions.IDLE_MS + 1
    assert sessions.find(token, later) is None
    assert sessions.find(token, now + 1000) is None, "an expired session is gone, not just hidden"


def test_admin_commands_add_list_disable_enable(console_world: ConsoleWorld) -> None:
    ledger = console_world.ledger
    added = json.loads(ledger.admin("admin", "add", "cleo", "--role", "marketing", "--json").stdout)
    assert added["role"] == "marketing" and len(added["password"]) >= 20
    listed = ledger.admin_json("admin", "list")["admins"]
    assert {"name": "cleo", "role": "marketing"}.items() <= next(a for a in listed if a["name"] == "cleo").items()
    client = ConsoleClient(console_world.url)
    assert client.signin("cleo", added["password"]).status_code == 303
    ledger.admin("admin", "disable", "cleo")
    assert client.get("/dashboard").status_code == 303, "disabling ends the session"
    assert ClientSignin(console_world, "cleo", added["password"]) == 401
    ledger.admin("admin", "enable", "cleo")
    assert ClientSignin(console_world, "cleo", added["password"]) == 303
    bad = ledger.admin("admin", "add", "eve", "--role", "root", check=False)
    assert bad.returncode == 1 and "unknown role" in bad.stderr and "Traceback" not in bad.stderr


def ClientSignin(world: ConsoleWorld, name: str, password: str) -> int:
    return ConsoleClient(world.url).signin(name, password).status_code


def test_a_terminal_pull_of_member_snapshots_is_one_audited_read(console_world: ConsoleWorld) -> None:
    from ledger import admin
    from tests.fixtures.ledger import LedgerTerminal

    console_world.open_admin()
    member = admin.add_member("Pulled Person", store_id="store-pull", phone="13900001111", member_id="PULL1")
    _, code = admin.add_terminal("pull till", "store-pull")
    till = LedgerTerminal.enroll(console_world.ledger.url, code)
    answer = till.pull()
    assert answer.status_code == 200 and answer.json()["members"] is not None
    rows = console_world.ledger.admin_json("audit", "--limit", "20")["rows"]
    pulls = [r for r in rows if r["action"] == "members_pull"]
    assert pulls and pulls[0]["actor"] == f"terminal:{till.terminal_id}"
    assert pulls[0]["details"]["member_ids"] == [member] and pulls[0]["details"]["via"] == "api"
    version = till.open_members(answer.json()["members"]).version
    again = till.pull(members=version)
    assert again.json()["members"] is None
    assert len([r for r in console_world.ledger.admin_json("audit", "--limit", "20")["rows"]
                if r["action"] == "members_pull"]) == 1, "nothing sent, nothing recorded"
    page = console_world.client(Role.AUDITOR).get(f"/audit?member={member}&reads=1")
    assert f"terminal:{till.terminal_id}" in page.text and "via api" in page.text



def test_a_pending_upgrade_shows_until_the_card_is_replaced(console_world: ConsoleWorld) -> None:
    from ledger import admin

    console_world.open_admin()
    member = admin.add_member("Upgrading Person", member_id="UPG1")
    old = admin.issue_card(member).card_id
    admin.issue_card(member, "gold")  # the member moves to gold; the standard card is now behind
    support = console_world.client(Role.SUPPORT)
    page = support.get(f"/members/{member}").text
    assert f"Upgrade pending: card {old} is standard, the member is now gold." in page
    replaced = support.post(f"/cards/{old}/replace", {"tier": "gold"})
    assert replaced.status_code == 200 and "Card " in replaced.text and "(gold)" in replaced.text
    assert "Upgrade pending" not in support.get(f"/members/{member}").text


def test_served_over_tls_directly_the_cookie_is_secure(console_world: ConsoleWorld, tmp_path: Any) -> None:
    import datetime as dt
    import ipaddress

    import requests
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from tests.fixtures.console import ConsoleServer

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    tls = ConsoleServer(console_world.ledger, extra_args=("--tls-cert", str(cert_path), "--tls-key", str(key_path)))
    tls.start()
    try:
        assert tls.first_line == f"cardpos-console: listening https://127.0.0.1:{tls.port}"
        answer = requests.get(f"https://127.0.0.1:{tls.port}/signin", verify=str(cert_path), timeout=20)
        assert answer.status_code == 200
        assert "Secure" in answer.headers["set-cookie"] and "strict-transport-security" in answer.headers
    finally:
        tls.stop()


def test_the_member_page_lists_waiting_new_cards_and_resolved_sign_up_conflicts(console_world: ConsoleWorld) -> None:
    from ledger import admin, signup
    from tests.fixtures.ledger import LedgerTerminal

    console_world.open_admin()
    member = admin.add_member("Waiting Person", store_id="store-1", member_id="WAIT1")
    old = admin.issue_card(member).card_id
    _, code = admin.add_terminal("new card till", "store-1")
    till = LedgerTerminal.enroll(console_world.ledger.url, code)
    till.append("tier_upgrade", {"member": member, "card": old, "from": "standard", "to": "gold"})
    for provisional, phone in (("PW1", "13700002222"), ("PW2", "137 0000 2222")):  # one phone, twice
        till.append("member_signup", {
            "member": provisional, "name": "Zhou Min", "phone": phone, "birthday": None, "language": "zh",
            "consent": {"sms": False, "mail": False, "wording": "consent_1"}, "store": "store-1", "cur": "CNY"})
    assert till.push(1, 3).status_code == 200
    support = console_world.client(Role.SUPPORT)
    page = support.get(f"/members/{member}").text
    assert f"Card {old} upgraded to gold at terminal {till.terminal_id}" in page, page
    assert "the new card is not issued yet" in page

    console_world.open_admin()
    joined = {r["provisional_id"]: r for r in signup.signups()}
    signed_up = joined["PW1"]["member_id"]
    assert joined["PW2"]["outcome"] == "merged" and joined["PW2"]["member_id"] == signed_up
    page = support.get(f"/members/{signed_up}").text
    assert "(provisional id PW1)" in page and "first card is not issued yet" in page
    assert "Conflict resolved: signed up again with the same phone" in page and "(provisional id PW2)" in page
