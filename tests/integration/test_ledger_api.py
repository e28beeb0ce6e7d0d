"""Enrollment and signed pulls against a ledger server process, as documented in docs/internals.md."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.cards.keys import public_key_bytes
from cardkit.cards.revocation import load_revocation_delta
from cardkit.cards.trust import load_trust_list
from cardkit.envelope import load_hpke_public_key
from cardkit.pulldocs import load_rules_document
from tests.fixtures.ledger import HTTP_TIMEOUT_S, LedgerServer, LedgerTerminal, b64d, enroll_request, topup


def enroll_raw(server: LedgerServer, code: str, **changes: str) -> requests.Response:
    """A terminal's proof of ``code`` (by a new key), with ``changes`` made to its JSON fields."""
    proof, _, _ = enroll_request(code, Ed25519PrivateKey.generate())
    return requests.post(f"{server.url}/v1/enroll", json={**proof.to_json(), **changes}, timeout=HTTP_TIMEOUT_S)


def test_enrollment_code_works_once_and_hands_over_signed_documents(shared_ledger_server: LedgerServer) -> None:
    server = shared_ledger_server
    added = server.admin_json("terminal", "add", "till A", "--store", "north")
    till = LedgerTerminal.enroll(server.url, added["code"].lower().replace("-", " "))  # typed loosely by people
    body = till.enrollment
    assert body["terminal_id"] == added["terminal_id"] and body["store_id"] == "north"
    assert body["issuer"] == "test-issuer" and body["hpke_suite"] == "x25519"
    root = till.root_public_key
    trust = load_trust_list(b64d(body["trust_list"]), root)
    assert [k.kid for k in trust.keys] == ["k1"]
    assert load_rules_document(b64d(body["rules"]), root).version >= 1
    assert load_revocation_delta(b64d(body["revocations"]), root).from_version == 0
    second = enroll_raw(server, added["code"], identity_key=public_key_bytes(till.key).hex())
    assert second.status_code == 403 and second.json()["error"] == "bad_code"
    listed = {t["terminal_id"]: t for t in server.admin_json("terminal", "list")["terminals"]}
    assert listed[till.terminal_id]["status"] == "active"


def test_enrollment_refuses_bad_codes_and_bad_requests(shared_ledger_server: LedgerServer) -> None:
    server = shared_ledger_server
    wrong = enroll_raw(server, "AAAA-BBBB-CCCC")
    assert wrong.status_code == 403 and wrong.json() == {
        "error": "bad_code", "message": "the enrollment code is unknown, used or expired"}
    code = server.admin_json("terminal", "add", "till B", "--ttl-hours", "0.0003")["code"]  # ~1 s
    time.sleep(1.5)
    assert enroll_raw(server, code).json()["error"] == "bad_code"
    code = server.admin_json("terminal", "add", "till C")["code"]
    assert enroll_raw(server, code, identity_key="zz" * 32).json()["error"] == "malformed"
    assert enroll_raw(server, code, suite="rot13").json()["error"] == "malformed"
    assert enroll_raw(server, code, terminal_hpke_key="11" * 31).json()["error"] == "malformed"
    missing = requests.post(f"{server.url}/v1/enroll", json={"identity_key": "11" * 32}, timeout=HTTP_TIMEOUT_S)
    assert missing.status_code == 400 and missing.json()["error"] == "malformed"
    assert LedgerTerminal.enroll(server.url, code).enrollment["store_id"]  # malformed requests left it unused


def test_hybrid_post_quantum_suite_end_to_end(shared_ledger_server: LedgerServer) -> None:
    server = shared_ledger_server
    code = server.admin_json("terminal", "add", "pq till")["code"]
    till = LedgerTerminal.enroll(server.url, code, suite="mlkem768x25519")
    assert len(bytes.fromhex(till.enrollment["ledger_hpke_public_key"])) == 1184 + 32
    load_hpke_public_key("mlkem768x25519", bytes.fromhex(till.enrollment["ledger_hpke_public_key"]))
    member_id = server.admin("member", "add", "Quinn").stdout.strip()
    till.append("topup", topup(member_id, 700))
    resp = till.push(1, 1)
    assert resp.status_code == 200 and resp.json()["applied"] == 1
    assert server.admin_json("member", "show", member_id)["balance"] == 700


def test_pulls_must_be_signed_fresh_and_by_an_enrolled_terminal(shared_ledger_server: LedgerServer) -> None:
    server = shared_ledger_server
    till = LedgerTerminal.enroll(server.url, server.admin_json("terminal", "add", "puller")["code"])
    assert till.pull().status_code == 200
    bare = requests.get(f"{server.url}/v1/pull?trust=0", timeout=HTTP_TIMEOUT_S)
    assert bare.status_code == 401 and bare.json()["error"] == "unauthenticated"
    stale = till.pull(time_ms=time.time_ns() // 1_000_000 - 6 * 60 * 1000)
    assert stale.status_code == 403 and stale.json()["error"] == "stale_request"
    forged = till.pull(key=Ed25519PrivateKey.generate())
    assert forged.status_code == 403 and forged.json()["error"] == "bad_signature"
    till.terminal_id = "t-unknown"
    assert till.pull().json()["error"] == "unknown_terminal"


def test_pull_sends_only_what_changed_since_the_versions_asked(shared_ledger_server: LedgerServer,
                                                              tmp_path: Path) -> None:
    server = shared_ledger_server
    till = LedgerTerminal.enroll(server.url, server.admin_json("terminal", "add", "delta", "--store", "east")["code"])
    one = server.admin("member", "add", "East One", "--store", "east").stdout.strip()
    two = server.admin("member", "add", "East Two", "--store", "east").stdout.strip()
    server.admin("member", "add", "West", "--store", "west")
    root = till.root_public_key
    full = till.pull().json()
    snapshot = till.open_members(full["members"])
    assert {m["member_id"] for m in snapshot.members} == {one, two}  # this store's members only
    trust = load_trust_list(b64d(full["trust_list"]), root).version
    # Nothing revoked on this ledger yet: at version 0 there is nothing to send.
    revocations = load_revocation_delta(b64d(full["revocations"]), root).to_version if full["revocations"] else 0
    rules = load_rules_document(b64d(full["rules"]), root).version
    current: dict[str, Any] = {"trust": trust, "revocations": revocations, "rules": rules, "members": snapshot.version}
    assert till.pull(**current).json() == {"trust_list": None, "revocations": None, "rules": None, "members": None}

    server.admin("member", "update", two, "--notes", "likes jasmine tea", "--pref", "size=L")
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text((Path(__file__).resolve().parents[2] / "terminal" / "defaults" / "rules.toml")
                          .read_text(encoding="utf-8").replace('sv_per_card_per_day = "500.00"',
                                                               'sv_per_card_per_day = "300.00"'), encoding="utf-8")
    version = server.admin_json("rules", "load", str(rules_file))["version"]
    later = till.pull(**current).json()
    assert later["trust_list"] is None and later["revocations"] is None
    new_rules = load_rules_document(b64d(later["rules"]), root)
    assert new_rules.version == version > rules
    assert new_rules.offline.sv_per_card_per_day.minor == 30_000
    delta = till.open_members(later["members"])
    assert delta.since == snapshot.version
    assert [(m["member_id"], m["notes"], m["prefs"]) for m in delta.members] == [(two, "likes jasmine tea",
                                                                                 {"size": "L"})]
    bad = tmp_path / "bad.toml"
    bad.write_text("version = 1\ncurrency = \"XYZ\"\n", encoding="utf-8")
    refused = server.admin("rules", "load", str(bad), check=False)
    assert refused.returncode == 1 and "currency" in refused.stderr


def test_serve_stops_cleanly_on_sigterm(ledger_server: LedgerServer) -> None:
    assert requests.get(ledger_server.url + "/v1/health", timeout=HTTP_TIMEOUT_S).json() == {"ok": True}
    assert ledger_server.stop() == 0


def test_admin_mistakes_are_one_sentence_and_exit_1(shared_ledger_server: LedgerServer) -> None:
    server = shared_ledger_server
    unknown = server.admin("card", "issue", "--member", "nope", check=False)
    assert (unknown.returncode, unknown.stderr) == (1, "cardpos: there is no member 'nope'\n")
    member_id = server.admin("member", "add", "Gus", "--id", "gus-1").stdout.strip()
    twice = server.admin("member", "add", "Gus", "--id", member_id, check=False)
    assert twice.returncode == 1 and "already exists" in twice.stderr
    bad_tier = server.admin("card", "issue", "--member", member_id, "--tier", "diamond", check=False)
    assert bad_tier.returncode == 1 and "unknown tier 'diamond'" in bad_tier.stderr
    usage = server.admin("card", "revoke", "0011223344556677", check=False)  # --reason is required
    assert usage.returncode == 2
