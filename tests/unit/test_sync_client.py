"""The ledger HTTP client against a real (tiny) HTTP server on 127.0.0.1: answers, refusals, failures."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.enrollment import derive_code_keys, make_proof
from cardkit.errors import SyncError
from terminal.sync.client import (
    LedgerBusy,
    LedgerClient,
    LedgerRefused,
    LedgerUnreachable,
    TerminalSigner,
    parse_retry_after,
    pull_message,
)
from terminal.sync.service import Backoff
from tests.conftest import free_port


class Script:
    """What the server answers next: (status, headers, body bytes, delay_s); records what it received."""

    def __init__(self) -> None:
        self.answer: tuple[int, dict[str, str], bytes, float] = (200, {}, b"{}", 0.0)
        self.received: list[tuple[str, str, dict[str, str], bytes]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            script.received.append((self.command, self.path, dict(self.headers), body))
            status, headers, payload, delay = script.answer
            time.sleep(delay)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _handle

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]  # a client that timed out
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    httpd.server_close()


def json_answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple:
    return (status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode(), 0.0)


def test_refused_connection_says_the_ledger_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = LedgerClient(url, timeout_s=2)
    with pytest.raises(LedgerUnreachable, match=f"ledger unreachable at {url}"):
        client.push(b"x")


def test_push_sends_cbor_and_reads_the_ack(server: tuple[str, Script]) -> None:
    url, script = server
    script.answer = json_answer(200, {"acked_seq": 12, "applied": 10, "duplicates": 2})
    result = LedgerClient(url, timeout_s=2).push(b"\xa0envelope")
    assert (result.acked_seq, result.applied, result.duplicates) == (12, 10, 2)
    method, path, headers, body = script.received[-1]
    assert (method, path, body) == ("POST", "/v1/batches", b"\xa0envelope")
    assert headers["Content-Type"] == "application/cbor"


def test_json_error_is_surfaced_with_its_code(server: tuple[str, Script]) -> None:
    url, script = server
    script.answer = json_answer(409, {"error": "sequence_gap", "message": "starts at 9, have 4", "acked_seq": 4})
    with pytest.raises(LedgerRefused) as info:
        LedgerClient(url, timeout_s=2).push(b"x")
    assert info.value.code == "sequence_gap" and info.value.status == 409
    assert info.value.body["acked_seq"] == 4
    assert "starts at 9, have 4" in str(info.value)
    assert not isinstance(info.value, LedgerBusy)


def test_busy_ledger_carries_retry_after(server: tuple[str, Script]) -> None:
    url, script = server
    script.answer = json_answer(503, {"error": "busy", "message": "try later"}, {"Retry-After": "7"})
    with pytest.raises(LedgerBusy) as info:
        LedgerClient(url, timeout_s=2).push(b"x")
    assert info.value.retry_after_s == 7.0


def test_non_json_error_still_reads_as_one_sentence(server: tuple[str, Script]) -> None:
    url, script = server
    script.answer = (500, {"Content-Type": "text/html"}, b"<h1>oops</h1>", 0.0)
    with pytest.raises(LedgerBusy, match=r"http_500"):
        LedgerClient(url, timeout_s=2).push(b"x")


def test_garbled_success_is_treated_as_no_answer(server: tuple[str, Script]) -> None:
    url, script = server
    script.answer = (200, {"Content-Type": "application/json"}, b'{"acked_', 0.0)
    with pytest.raises(LedgerUnreachable, match="unreadable answer"):
        LedgerClient(url, timeout_s=2).push(b"x")
    script.answer = json_answer(200, {"applied": 1})
    with pytest.raises(LedgerUnreachable, match="without acked_seq"):
        LedgerClient(url, timeout_s=2).push(b"x")


def test_every_call_has_a_timeout(server: tuple[str, Script]) -> None:
    url, script = server
    script.answer = (200, {}, b"{}", 1.0)
    started = time.monotonic()
    with pytest.raises(LedgerUnreachable, match=r"did not answer within 0\.2 s"):
        LedgerClient(url, timeout_s=0.2).enroll({"code_id": "00" * 16})
    assert time.monotonic() - started < 0.9


def test_enroll_sends_the_proof_and_never_the_code(server: tuple[str, Script]) -> None:
    url, script = server
    script.answer = json_answer(403, {"error": "bad_code", "message": "the enrollment code is not valid"})
    proof = make_proof(derive_code_keys("HJKM-NPQR-STUV"), b"\x01" * 32, "mlkem768x25519", b"\x02" * 1216)
    with pytest.raises(LedgerRefused, match="the enrollment code is not valid") as info:
        LedgerClient(url, timeout_s=2).enroll(proof.to_json())
    assert info.value.code == "bad_code"
    _method, path, _headers, body = script.received[-1]
    assert path == "/v1/enroll"
    assert json.loads(body) == proof.to_json()
    assert b"HJKM" not in body and b"hjkm" not in body  # no letter of the code is a hex digit


def test_pull_is_signed_over_method_path_and_time(server: tuple[str, Script]) -> None:
    url, script = server
    script.answer = json_answer(200, {"trust_list": None, "revocations": None, "rules": None, "members": None})
    key = Ed25519PrivateKey.generate()
    client = LedgerClient(url, timeout_s=2, clock_ms=lambda: 1_700_000_000_123)
    assert client.pull({"trust": 3, "revocations": 0, "rules": 1, "members": 2},
                       TerminalSigner("T-1", key))["trust_list"] is None
    method, path, headers, _body = script.received[-1]
    assert method == "GET" and path == "/v1/pull?members=2&revocations=0&rules=1&trust=3"
    assert headers["X-Cardpos-Terminal"] == "T-1" and headers["X-Cardpos-Time"] == "1700000000123"
    key.public_key().verify(bytes.fromhex(headers["X-Cardpos-Signature"]), pull_message(path, 1_700_000_000_123))


def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(SyncError, match="must start with http"):
        LedgerClient("127.0.0.1:8750", timeout_s=1)


def test_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("-2") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now_s=1445412480.0) == 10.0


def test_backoff_grows_with_jitter_and_stays_capped() -> None:
    backoff = Backoff(base_s=0.5, cap_s=8.0)
    rng = random.Random(3)
    for failures, step in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (50, 8.0)]:
        delays = [backoff.delay(failures, rng) for _ in range(200)]
        assert all(step / 2 <= d <= step for d in delays)
        assert max(delays) - min(delays) > step / 4  # jittered, not a fixed step
    assert backoff.delay(0, rng) == 0.0


def test_service_honours_retry_after_and_keeps_entries(server: tuple[str, Script], open_store: Any) -> None:
    from cardkit.config import SyncSettings
    from cardkit.envelope import generate_hpke_private_key, hpke_public_key_bytes
    from terminal.documents import Enrollment
    from terminal.sync.service import SyncService
    from tests.fixtures.offline import TEST_TERMINAL_ID

    url, script = server
    store = open_store()
    for i in range(3):
        store.journal.append("shift_open", {"shift": f"s{i}"}, "c1")
    enrollment = Enrollment(terminal_id=TEST_TERMINAL_ID, store_id="store-1", ledger_url=url,
                            ledger_hpke_public_key=hpke_public_key_bytes("x25519", generate_hpke_private_key()).hex(),
                            hpke_suite="x25519", root_public_key="00" * 32, issuer="acme")
    seen: list[Any] = []
    service = SyncService(store, enrollment, Ed25519PrivateKey.generate(),
                          settings=SyncSettings(ledger_url=url, timeout_s=2, interval_s=30),
                          clock=lambda: 1_780_000_000_000, rng=random.Random(1), backoff=Backoff(0.1, 1.0),
                          on_status=seen.append)
    script.answer = json_answer(503, {"error": "busy", "message": "try later"}, {"Retry-After": "7"})
    with pytest.raises(LedgerBusy):
        service.sync_once()
    assert 7.0 <= service.next_delay_s() <= 7.0 + 1e-9  # the backoff (≤ 1 s) is shorter than Retry-After
    assert store.journal.queue_depth == 3  # nothing marked synced without an ack
    status = service.status
    assert not status.online and status.offline_since_ms == 1_780_000_000_000 and status.queue_depth == 3
    assert seen and seen[-1] == status
    assert store.sync_state.last_error is not None and "try later" in store.sync_state.last_error
    # An ack for part of the queue marks exactly that part.
    script.answer = json_answer(200, {"acked_seq": 2, "applied": 2, "duplicates": 0})
    with pytest.raises(SyncError, match="stopped acknowledging at entry 2"):
        service.sync_once()
    assert store.journal.synced_seq == 2


def test_an_ack_beyond_the_journal_marks_nothing(server: tuple[str, Script], open_store: Any) -> None:
    """A ledger claiming entries this terminal never wrote (a cloned terminal id) is an error, not progress."""
    from cardkit.config import SyncSettings
    from cardkit.envelope import generate_hpke_private_key, hpke_public_key_bytes
    from terminal.documents import Enrollment
    from terminal.sync.service import SyncService
    from tests.fixtures.offline import TEST_TERMINAL_ID

    url, script = server
    store = open_store()
    store.journal.append("shift_open", {"shift": "s1"}, "c1")
    enrollment = Enrollment(terminal_id=TEST_TERMINAL_ID, store_id="store-1", ledger_url=url,
                            ledger_hpke_public_key=hpke_public_key_bytes("x25519", generate_hpke_private_key()).hex(),
                            hpke_suite="x25519", root_public_key="00" * 32, issuer="acme")
    service = SyncService(store, enrollment, Ed25519PrivateKey.generate(),
                          settings=SyncSettings(ledger_url=url, timeout_s=2), rng=random.Random(1))
    script.answer = json_answer(200, {"acked_seq": 5, "applied": 0, "duplicates": 0})
    with pytest.raises(SyncError, match="another terminal using this id"):
        service.sync_once()
    assert store.journal.synced_seq == 0 and store.journal.queue_depth == 1
    assert service.status.online and "another terminal" in (service.status.last_error or "")
