"""``POST /v1/authorize`` against a network attacker and hostile callers (real ledger process).

- The ledger answers only requests its terminal signed, whose body is the one the signature's digest names, within
  the body limits; every refusal is a JSON reason, never a traceback.
- A retried request (same uuid, same body) gets the same answer and never holds twice; the same uuid with another
  body is refused.
- A man in the middle who turns a decline into an approval, replays an approval from another request, or answers
  on the ledger's behalf gets nothing believed: the terminal's authorizer reports no answer (the counter then
  decides offline under the offline limits), never an approval.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import pytest
import requests

from cardkit import answers, authorization, wire
from cardkit.authorization import AuthorizationRequest
from terminal.sync.authorize import AuthorizationUnavailable, OnlineAuthorizer
from tests.fixtures.answer_proxy import AnswerProxy, Intercepted, answer_json, http_answer, with_json
from tests.fixtures.ledger import LedgerServer, LedgerTerminal


@pytest.fixture
def world(ledger_server: LedgerServer) -> tuple[LedgerServer, LedgerTerminal, str]:
    member = ledger_server.admin_json("member", "add", "Auth Target", "--balance", "10.00")["member_id"]
    till = LedgerTerminal.enroll(ledger_server.url, ledger_server.admin_json("terminal", "add", "auth-till")["code"])
    return ledger_server, till, member


def authorizer(url: str, till: LedgerTerminal) -> OnlineAuthorizer:
    return OnlineAuthorizer(url, terminal_id=till.terminal_id, key=till.key, root_public_key=till.root_public_key,
                            timeout_s=10.0)


def ask(url: str, till: LedgerTerminal, req: AuthorizationRequest, *, body: bytes | None = None,
        path: str | None = None, key_of: LedgerTerminal | None = None,
        content_type: str = "application/json") -> requests.Response:
    body = req.body() if body is None else body
    path = path or authorization.signed_path(body)
    now = time.time_ns() // 1_000_000
    signer = key_of or till
    headers = {**wire.signed_request_headers(till.terminal_id, now,
                                             signer.key.sign(wire.request_signature_text("POST", path, now))),
               "Content-Type": content_type}
    return requests.post(url + path, data=body, headers=headers, timeout=20)


def payment(member: str, sv: int) -> AuthorizationRequest:
    return AuthorizationRequest(entry_uuid=str(uuid.uuid4()), member_id=member, card_id="card", currency="CNY",
                                sv=sv, points=0, coupons=(), nonce=answers.new_nonce())


def test_hostile_requests_are_refused_with_a_reason(world: tuple[LedgerServer, LedgerTerminal, str]) -> None:
    server, till, member = world
    req = payment(member, 100)
    unsigned = requests.post(server.url + authorization.signed_path(req.body()), data=req.body(),
                             headers={"Content-Type": "application/json"}, timeout=20)
    other = LedgerTerminal.enroll(server.url, server.admin_json("terminal", "add", "other-till")["code"])
    cases: list[tuple[requests.Response, int, str]] = [
        (unsigned, 401, "unauthenticated"),
        (ask(server.url, till, req, key_of=other), 403, "bad_signature"),
        (ask(server.url, till, req, path=authorization.signed_path(payment(member, 1).body())), 400, "malformed"),
        (ask(server.url, till, req, body=b"[" * 100, path=authorization.signed_path(b"[" * 100)), 400, "malformed"),
        (ask(server.url, till, req, body=b" " * 4096, path=authorization.signed_path(b" " * 4096)), 413,
         "too_large"),
        (ask(server.url, till, req, content_type="text/plain"), 415, "unsupported_media_type"),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.json()["error"]) == (status, code), response.text
        assert "Traceback" not in response.text


def test_a_retry_gets_the_same_answer_and_never_holds_twice(world: tuple[LedgerServer, LedgerTerminal, str]) -> None:
    server, till, member = world
    first = payment(member, 600)
    answers_seen = [ask(server.url, till, first).json() for _ in range(3)]
    assert answers_seen[0]["decision"] == "approved"
    assert all(a == answers_seen[0] for a in answers_seen)
    # 600 of 1000 held once: another 400 fits, 401 would not (a double hold would refuse both).
    assert ask(server.url, till, payment(member, 401)).json()["reason"] == "insufficient_balance"
    assert ask(server.url, till, payment(member, 400)).json()["decision"] == "approved"
    reused = AuthorizationRequest(first.entry_uuid, member, "card", "CNY", 1, 0, (), first.nonce)
    refused = ask(server.url, till, reused)
    assert (refused.status_code, refused.json()["error"]) == (409, "uuid_reused")


@pytest.mark.parametrize("attack", ["flip_decline", "replay_approval", "forge"])
def test_a_man_in_the_middle_cannot_approve(attack: str, world: tuple[LedgerServer, LedgerTerminal, str],
                                            answer_proxy_factory: Callable[[tuple[str, int]], AnswerProxy]) -> None:
    server, till, member = world
    proxy = answer_proxy_factory(("127.0.0.1", server.port))
    approval = ask(server.url, till, payment(member, 1)).json()  # a genuine approval, of another request

    def intercept(request: Intercepted) -> bytes | None:
        if not request.path.startswith(wire.AUTHORIZE_PATH):
            return None
        if attack == "flip_decline":
            real = request.forward()
            return with_json(real, {**answer_json(real), "decision": "approved", "reason": ""})
        if attack == "replay_approval":
            return http_answer(200, {**approval, "uuid": json.loads(request.body)["uuid"]})
        return http_answer(200, {"uuid": json.loads(request.body)["uuid"], "decision": "approved", "reason": "",
                                 "auth_id": "0" * 16, "signature": "00" * 64})

    proxy.intercept = intercept
    with pytest.raises(AuthorizationUnavailable, match="not believed"):
        authorizer(proxy.url, till).authorize(payment(member, 5_000))  # more than the balance: the ledger declines
