"""Issue 13, "Enrollment" and "Pulled member data travels in clear", tried as a network attacker would.

A real ``cardpos ledger serve`` process, real terminal data dirs enrolled and synced with the real ``cardpos
terminal`` commands, and an intercepting proxy (``tests/fixtures/answer_proxy.py``) on 127.0.0.1 playing the attacker on
the path. The attacker never learns the code; what it does with what it sees is written protocol-agnostic where
it can be (if a request carried the code, the attacker would use it), so each test fails on the code before the
enrollment proof and sealed member snapshots, for the reason the issue names.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cardkit.cards.cose import decode_sign1
from cardkit.cards.revocation import load_revocation_delta, sign_revocation_delta
from cardkit.cards.trust import load_trust_list, sign_trust_list
from cardkit.pulldocs import load_rules_document, sign_rules_document
from tests.conftest import REPO_ROOT
from tests.fixtures.answer_proxy import AnswerProxy, Exchange, answer_json, http_answer
from tests.fixtures.ledger import HTTP_TIMEOUT_S, LedgerServer, make_ledger
from tests.fixtures.sync import SyncWorld

CODE_FORMS = (lambda c: c, lambda c: c.replace("-", ""), lambda c: c.lower(), lambda c: c.replace("-", "").lower())
MAX_BAD_PROOFS = 5  # ledger.enroll_guard.MAX_BAD_PROOFS, as docs/sync-protocol.md states it
SOURCE_LIMIT = 10  # ledger.enroll_guard.SOURCE_LIMIT
ProxyFactory = Callable[[tuple[str, int]], AnswerProxy]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LedgerServer]:
    ledger = make_ledger(tmp_path / "ledger-home").start()
    try:
        yield ledger
    finally:
        ledger.stop()


@pytest.fixture
def world(server: LedgerServer, tmp_path: Path) -> SyncWorld:
    return SyncWorld(root=tmp_path, ledger=server)


def add_terminal(server: LedgerServer, name: str = "till") -> tuple[str, str]:
    added = server.admin_json("terminal", "add", name)
    return str(added["terminal_id"]), str(added["code"])


def data_dir(world: SyncWorld, name: str) -> Path:
    path = world.root / name
    path.mkdir()
    return path


def enroll(world: SyncWorld, path: Path, url: str, code: str, *extra: str) -> Any:
    return world.cardpos(path, "terminal", "enroll", "--ledger", url, "--code", code, *extra)


def nothing_written(path: Path) -> bool:
    """No enrollment record, no document and no terminal database in a data dir (its own new keys may be)."""
    docs = path / "documents"
    return (not (path / "enrollment.json").exists() and not (docs.exists() and any(docs.iterdir()))
            and not any(path.glob("*.sqlite3")))


def terminals(server: LedgerServer) -> dict[str, dict[str, Any]]:
    return {t["terminal_id"]: t for t in server.admin_json("terminal", "list")["terminals"]}


def audit(server: LedgerServer) -> list[dict[str, Any]]:
    return list(server.admin_json("audit", "--limit", "500")["rows"])


def alerts(server: LedgerServer, rule: str) -> list[dict[str, Any]]:
    return [a for a in server.admin_json("alerts", "list")["alerts"] if a["rule"] == rule]


def attacker_request(captured: Exchange, guess: str | None) -> dict[str, Any]:
    """What an attacker sends after seeing a terminal's enrollment request: its own identity key in place of the
    terminal's, and the code if the request showed it, else a proof made with ``guess``."""
    seen = json.loads(captured.body)
    identity = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    if "code" in seen:  # the code travelled in clear: nothing to guess
        return {**seen, "identity_key": identity.hex()}
    from cardkit.enrollment import derive_code_keys, make_proof

    proof = make_proof(derive_code_keys(guess or "AAAA-AAAA-AAAA"), identity, seen["suite"],
                       X25519PrivateKey.generate().public_key().public_bytes_raw())
    return {**proof.to_json(), "code_id": seen["code_id"]}  # the pending enrollment the terminal named


# -- a network attacker without the code cannot enroll ----------------------------------------------------------
def test_the_code_never_crosses_the_network_and_a_replayed_request_enrolls_nobody(
        world: SyncWorld, server: LedgerServer, answer_proxy_factory: ProxyFactory) -> None:
    terminal_id, code = add_terminal(server)
    proxy = answer_proxy_factory(("127.0.0.1", server.port))
    till = data_dir(world, "till")
    done = enroll(world, till, proxy.url, code)
    assert done.returncode == 0, done.stderr
    [captured] = proxy.sent("/v1/enroll")
    wire = captured.head + captured.body + (captured.answer or b"")
    for form in CODE_FORMS:
        assert form(code).encode() not in wire, "the one-time code crossed the network"
    # Replaying what was seen, with the attacker's own key, gets nowhere (and the code is used up anyway).
    replay = requests.post(server.url + "/v1/enroll", json=attacker_request(captured, None), timeout=HTTP_TIMEOUT_S)
    assert replay.status_code == 403 and replay.json()["error"] == "bad_code"
    enrolled = json.loads((till / "enrollment.json").read_text())
    assert enrolled["terminal_id"] == terminal_id
    assert terminals(server)[terminal_id]["status"] == "active"


def test_guessing_the_code_is_refused_audited_locked_and_alerted(
        world: SyncWorld, server: LedgerServer, answer_proxy_factory: ProxyFactory) -> None:
    terminal_id, code = add_terminal(server)
    proxy = answer_proxy_factory(("127.0.0.1", server.port))
    proxy.intercept = lambda request: http_answer(503, {"error": "busy", "message": "try later"})  # swallowed
    till = data_dir(world, "till")
    assert enroll(world, till, proxy.url, code).returncode == 1
    [captured] = proxy.sent("/v1/enroll")
    for n in range(MAX_BAD_PROOFS):
        guess = f"GUES-S{n:03d}-ABCD"
        resp = requests.post(server.url + "/v1/enroll", json=attacker_request(captured, guess),
                             timeout=HTTP_TIMEOUT_S)
        assert resp.status_code == 403 and resp.json()["error"] == "bad_code", resp.text
    # The code is locked: even the terminal with the right code, straight to the ledger, is refused now.
    late = enroll(world, till, server.url, code)
    assert late.returncode == 1 and "bad_code" in late.stderr
    assert nothing_written(till)
    assert terminals(server)[terminal_id]["status"] == "pending"
    rows = audit(server)
    failed = [r for r in rows if r["action"] == "terminal_enroll_failed"]
    assert len(failed) == MAX_BAD_PROOFS + 1
    assert {r["details"]["reason"] for r in failed} == {"bad_proof", "unknown_code"}
    assert all(r["actor"] == "source:127.0.0.1" for r in failed)
    assert [r["subject"] for r in rows if r["action"] == "terminal_enroll_locked"] == [terminal_id]
    text = json.dumps(rows)
    assert not any(form(code) in text for form in CODE_FORMS)
    assert json.loads(captured.body)["code_id"] not in text  # no secret, nor what would test one
    locked = alerts(server, "enroll_code_locked")
    assert len(locked) == 1 and locked[0]["severity"] == "critical" and locked[0]["subject_id"] == terminal_id
    assert len(alerts(server, "enroll_failures")) == 1  # the source crossed the alert threshold once


def guess_request(code: str) -> dict[str, Any]:
    """A request that tries ``code`` with a new identity key, in whichever protocol this code base speaks."""
    identity = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    try:
        from cardkit.enrollment import derive_code_keys, make_proof
    except ImportError:  # before the enrollment proof the code itself was sent
        return {"code": code, "identity_key": identity.hex(), "suite": "x25519"}
    return make_proof(derive_code_keys(code), identity, "x25519",
                      X25519PrivateKey.generate().public_key().public_bytes_raw()).to_json()


def test_one_source_is_throttled_after_its_limit_and_alerted_once(server: LedgerServer) -> None:
    def attempt(n: int) -> requests.Response:
        return requests.post(server.url + "/v1/enroll", json=guess_request(f"NOPE-{n:04d}-XXXX"),
                             timeout=HTTP_TIMEOUT_S)

    answers = [attempt(n) for n in range(SOURCE_LIMIT + 3)]
    assert [a.status_code for a in answers[:SOURCE_LIMIT]] == [403] * SOURCE_LIMIT
    throttled = answers[SOURCE_LIMIT:]
    assert all(a.status_code == 429 and a.json()["error"] == "too_many_attempts" for a in throttled)
    assert 0 < int(throttled[0].headers["Retry-After"]) <= 600
    rows = audit(server)
    assert sum(r["action"] == "terminal_enroll_failed" for r in rows) == SOURCE_LIMIT
    assert sum(r["action"] == "terminal_enroll_throttled" for r in rows) == 1  # not one line per refusal
    assert len(alerts(server, "enroll_failures")) == 1


# -- a substituted answer is refused by the terminal ------------------------------------------------------------
ATTACKER_ROOT = Ed25519PrivateKey.generate()
ATTACKER_HPKE = X25519PrivateKey.generate().public_key().public_bytes_raw()


def resigned_documents(trust: bytes, rules: bytes, revocations: bytes, root: bytes) -> tuple[bytes, bytes, bytes]:
    """The ledger's documents signed again by the attacker's root key, so they verify against a swapped root."""
    return (sign_trust_list(load_trust_list(trust, root), ATTACKER_ROOT),
            sign_rules_document(load_rules_document(rules, root), ATTACKER_ROOT),
            sign_revocation_delta(load_revocation_delta(revocations, root), ATTACKER_ROOT))


def substitute(answer: bytes, what: str) -> bytes:
    """The attacker's rewrite of an enrollment answer: its own HPKE key, or its own root key (with every
    document and signature it can make redone under it)."""
    if int(answer.split(b" ", 2)[1]) != 200:
        return answer
    body = answer_json(answer)
    if "answer" not in body:  # the answer carries the keys in plain JSON
        if what == "hpke":
            body["ledger_hpke_public_key"] = ATTACKER_HPKE.hex()
        else:
            root = bytes.fromhex(body["root_public_key"])
            trust, rules, revocations = (base64.b64decode(body[k]) for k in ("trust_list", "rules", "revocations"))
            docs = resigned_documents(trust, rules, revocations, root)
            body.update(zip(("trust_list", "rules", "revocations"), (base64.b64encode(d).decode() for d in docs),
                            strict=True))
            body["root_public_key"] = ATTACKER_ROOT.public_key().public_bytes_raw().hex()
        return http_answer(200, body)
    answer = cbor2.loads(base64.b64decode(body["answer"]))
    if what == "hpke":
        answer["ledger_hpke_key"] = ATTACKER_HPKE
    else:
        answer["trust_list"], answer["rules"], answer["revocations"] = resigned_documents(
            answer["trust_list"], answer["rules"], answer["revocations"], answer["root_key"])
        answer["root_key"] = ATTACKER_ROOT.public_key().public_bytes_raw()
    data = cbor2.dumps(answer, canonical=True)
    body["answer"] = base64.b64encode(data).decode()
    body["signature"] = ATTACKER_ROOT.sign(b"cardpos-enroll-answer-sig-v2" + data).hex()  # all it can redo
    return http_answer(200, body)


@pytest.mark.parametrize("what", ["hpke", "root"])
def test_a_substituted_enrollment_answer_is_refused_and_nothing_is_written(
        world: SyncWorld, server: LedgerServer, answer_proxy_factory: ProxyFactory, what: str) -> None:
    _terminal_id, code = add_terminal(server)
    proxy = answer_proxy_factory(("127.0.0.1", server.port))
    proxy.intercept = lambda request: substitute(request.forward(), what)
    till = data_dir(world, "till")
    done = enroll(world, till, proxy.url, code)
    assert done.returncode == 1, f"the terminal accepted the attacker's {what} key: {done.stdout}"
    assert "not authenticated with the enrollment code" in done.stderr and done.stderr.count("\n") == 1
    assert nothing_written(till)


def test_a_wrong_root_key_is_refused_before_the_code_is_used(world: SyncWorld, server: LedgerServer) -> None:
    terminal_id, code = add_terminal(server)
    till = data_dir(world, "till")
    wrong = enroll(world, till, server.url, code, "--root-key", "ab" * 32)
    assert wrong.returncode == 1 and "--root-key" in wrong.stderr and "not used" in wrong.stderr
    assert nothing_written(till)
    root = next(k["public_key"] for k in server.admin_json("keys", "list")["keys"] if k["kid"] == "root")
    right = enroll(world, till, server.url, code, "--root-key", root)
    assert right.returncode == 0, right.stderr
    assert json.loads((till / "enrollment.json").read_text())["terminal_id"] == terminal_id


# -- pulled member data is sealed to the terminal ---------------------------------------------------------------
ANN = {"name": "Annabel Quixote", "phone": "555-0142-7788", "email": "annabel.q@example.org",
       "notes": "allergic to hazelnuts, prefers window seat"}


def readable_forms(data: bytes) -> bytes:
    """Every way a captured answer could show a value: its bytes, and every base64 string in its JSON decoded."""
    out = [data]
    try:
        body = json.loads(data)
    except ValueError:
        return data
    for value in body.values() if isinstance(body, dict) else ():
        if isinstance(value, str):
            try:
                decoded = base64.b64decode(value, validate=True)
            except (ValueError, binascii.Error):
                continue
            out.append(decoded)
            with contextlib.suppress(Exception):  # a COSE document's payload (else the bytes are searched as they are)
                out.append(decode_sign1(decoded, strict=False, max_bytes=len(decoded)).payload)
    return b"\n".join(out)


def test_a_captured_pull_shows_no_member_personal_data(world: SyncWorld, server: LedgerServer,
                                                        answer_proxy_factory: ProxyFactory) -> None:
    member_id = server.admin("member", "add", ANN["name"], "--phone", ANN["phone"], "--email", ANN["email"],
                             "--notes", ANN["notes"]).stdout.strip()
    _terminal_id, code = add_terminal(server)
    proxy = answer_proxy_factory(("127.0.0.1", server.port))
    till = data_dir(world, "till")
    assert enroll(world, till, proxy.url, code).returncode == 0
    synced = world.cardpos(till, "terminal", "sync", "--once", "--json")
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["pulled"]["members"] >= 1
    pulls = proxy.sent("/v1/pull")
    assert pulls and all(p.status == 200 for p in pulls)
    captured = b"\n".join(readable_forms(p.answer_body) for p in pulls)
    for value in ANN.values():
        assert value.encode() not in captured, f"{value!r} crossed the network in clear"
    # ... while the terminal itself opened the snapshot and holds Ann in its member cache.
    from terminal.offline.store import TerminalStore

    with TerminalStore.open(till, json.loads((till / "enrollment.json").read_text())["terminal_id"]) as store:
        cached = store.cache.get(member_id)
        assert cached is not None and cached.name == ANN["name"] and cached.notes == ANN["notes"]


def test_a_terminal_enrolled_before_sealing_must_enroll_again(world: SyncWorld, server: LedgerServer) -> None:
    server.admin("member", "add", ANN["name"], "--phone", ANN["phone"])
    terminal_id, code = add_terminal(server)
    till = data_dir(world, "till")
    assert enroll(world, till, server.url, code).returncode == 0
    # Make it a terminal from before sealing: no member key registered at the ledger, none in its record.
    record = json.loads((till / "enrollment.json").read_text())
    (till / "enrollment.json").write_text(json.dumps({k: v for k, v in record.items() if k != "members_sealed"}))
    with sqlite3.connect(server.ledger_dir / "ledger.sqlite3", timeout=10) as db:
        db.execute("DELETE FROM terminal_seal_key WHERE terminal_id = ?", (terminal_id,))
    db.close()
    refused = world.cardpos(till, "terminal", "sync", "--once")
    assert refused.returncode == 1
    line = (refused.stdout + refused.stderr).strip()
    assert line.count("\n") == 0 and "enroll it again" in line and "reenroll_required" in line
    # Only an explicit choice at the ledger lets it keep working, unsealed.
    server.stop()
    _start_with_flag(server, "--allow-cleartext-members")  # same port: the terminal's record names it
    synced = world.cardpos(till, "terminal", "sync", "--once", "--json")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert json.loads(synced.stdout)["pulled"]["members"] >= 1


def _start_with_flag(server: LedgerServer, flag: str) -> None:
    """Start ``ledger serve`` again with one extra flag (the fixture's ``start`` has no place for one); the
    fixture stops it."""
    cmd = [sys.executable, "-m", "cardpos", "ledger", "serve", "--ledger-dir", str(server.ledger_dir), "--host",
           "127.0.0.1", "--port", str(server.port), flag]
    server.proc = subprocess.Popen(cmd, env=server.env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        try:
            if requests.get(server.url + "/v1/health", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError("the ledger did not start with " + flag)
