"""Nothing an unauthenticated caller says is stored unbounded (issue 13: "Filling the disk without credentials",
"Forged alerts without credentials"), against a real ``cardpos ledger serve`` process.

Refused unsigned batches and pulls are counted per source in memory, summarized in the audit log once per source
and window, and raise at most one alert per source; the terminal id they claim is never stored or echoed beyond a
cut, sanitized form; identifier columns have enforced lengths on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import cbor2
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.fixtures.ledger import HTTP_TIMEOUT_S, LedgerServer, LedgerTerminal, make_ledger, topup

WINDOW_S = 2  # the server's summary window, short so the test sees a window end
TEN_MB = 10 * 1024 * 1024


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[LedgerServer]:
    server = make_ledger(tmp_path / "ledger-home")
    server.env["CARDPOS_LEDGER_NOISE_WINDOW_S"] = str(WINDOW_S)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def db_bytes(ledger_dir: Path) -> int:
    return sum(p.stat().st_size for p in ledger_dir.glob("ledger.sqlite3*"))


def alerts(ledger: LedgerServer) -> list[dict]:
    return ledger.admin_json("alerts", "list", "--limit", "100000")["alerts"]


def audit(ledger: LedgerServer) -> list[dict]:
    return ledger.admin_json("audit", "--limit", "100000")["rows"]


def unsigned_envelope(terminal_id: str, *, key: Ed25519PrivateKey | None = None) -> bytes:
    """A well-formed envelope claiming ``terminal_id``, signed by a key that is not that terminal's."""
    body = cbor2.dumps([1, terminal_id, uuid.uuid4().hex, "x25519", os.urandom(64)])
    signature = (key or Ed25519PrivateKey.generate()).sign(b"cardpos-batch-sig-v1" + body)
    return cbor2.dumps([body, signature])


def post(session: requests.Session, ledger: LedgerServer, body: bytes) -> requests.Response:
    return session.post(f"{ledger.url}/v1/batches", data=body, headers={"Content-Type": "application/cbor"},
                        timeout=HTTP_TIMEOUT_S)


def summed_reasons(ledger: LedgerServer) -> dict[str, int]:
    """The refusal reasons of every summary line written so far, added up across windows."""
    reasons: dict[str, int] = {}
    for line in audit(ledger):
        if line["action"] == "unauthenticated_refused":
            for reason, n in line["details"]["reasons"].items():
                reasons[reason] = reasons.get(reason, 0) + n
    return reasons


def test_ten_megabytes_of_garbage_store_next_to_nothing_and_raise_one_alert(ledger: LedgerServer) -> None:
    session = requests.Session()
    assert post(session, ledger, b"warm-up").status_code == 400  # the first refusal: the one alert of the window
    before_bytes, before_alerts = db_bytes(ledger.ledger_dir), len(alerts(ledger))
    long_claim = "t-" + "A" * TEN_MB  # the disk-filling attack: a claimed terminal id of 10 MB
    # 10 MB is past the batch limit: the edge answers 413 from Content-Length, before reading any of it.
    answers = [post(session, ledger, unsigned_envelope(long_claim)), post(session, ledger, os.urandom(TEN_MB))]
    assert [(a.status_code, a.json()["error"]) for a in answers] == [(413, "too_large")] * 2
    # Just under the limit the bodies are read and refused by the envelope's fixed layout, the claim unechoed.
    limit = 4 * 1024 * 1024  # cardkit.envelope.MAX_ENVELOPE_BYTES
    under = [post(session, ledger, unsigned_envelope("t-" + "A" * (limit - 1024))),
             post(session, ledger, os.urandom(limit - 1))]
    assert [(a.status_code, a.json()["error"]) for a in under] == [(400, "malformed")] * 2
    answers += under
    assert all(len(a.content) < 1024 for a in answers)  # nothing echoed beyond a cut form of the claim
    assert not any("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" in a.text for a in answers)
    grown = db_bytes(ledger.ledger_dir) - before_bytes
    assert grown < 100 * 1024, f"the database grew by {grown} bytes"
    assert len(alerts(ledger)) - before_alerts <= 1
    assert ledger.admin_json("audit", "--rejected")["rows"] == []  # no row per unsigned request
    # Every one of them was counted at the edge, the ones refused before their body was read too.
    time.sleep(WINDOW_S + 0.5)
    post(session, ledger, b"next window")
    assert summed_reasons(ledger) == {"batch:malformed": 3, "batch:too_large": 2}


def test_every_kind_of_unauthenticated_refusal_is_counted_once_per_source(ledger: LedgerServer) -> None:
    """Refusals the edge makes (content type, size, body of a GET), the application's refusals of unsigned
    requests (a bad nonce, an unsigned pull, an unknown path) and a connection that is not HTTP at all: each is
    counted for its source, and together they raise one alert, not one each."""
    session = requests.Session()
    before = {a["id"] for a in alerts(ledger)}
    url = ledger.url
    answers = [
        session.post(f"{url}/v1/batches", data=b"x", headers={"Content-Type": "text/plain"}, timeout=HTTP_TIMEOUT_S),
        session.post(f"{url}/v1/batches", data=b"x", timeout=HTTP_TIMEOUT_S,
                     headers={"Content-Type": "application/cbor", "X-Cardpos-Nonce": "not hex"}),
        session.get(f"{url}/v1/pull?trust=0", timeout=HTTP_TIMEOUT_S),
        session.get(f"{url}/v1/pull?trust=-1", timeout=HTTP_TIMEOUT_S),
        session.get(f"{url}/v1/health", data=b"a body", timeout=HTTP_TIMEOUT_S),
        session.get(f"{url}/wp-login.php", timeout=HTTP_TIMEOUT_S),
        session.post(f"{url}/v1/enroll", data=b"{}", headers={"Content-Type": "text/plain"}, timeout=HTTP_TIMEOUT_S),
    ]
    assert [a.status_code for a in answers] == [415, 400, 401, 400, 413, 404, 415]
    with socket.create_connection(("127.0.0.1", ledger.port), timeout=HTTP_TIMEOUT_S) as sock:
        sock.sendall(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")
    time.sleep(0.3)  # the connection's count is reported off the event loop
    new = [a for a in alerts(ledger) if a["id"] not in before]
    assert len(new) <= 1 and all(a["rule"] == "unauthenticated_refusals" for a in new), new
    assert ledger.admin_json("audit", "--rejected")["rows"] == []
    time.sleep(WINDOW_S + 0.5)
    post(session, ledger, b"next window")
    assert summed_reasons(ledger) == {
        "batch:unsupported_media_type": 1, "batch:malformed": 1, "pull:unauthenticated": 1, "pull:malformed": 1,
        "request:too_large": 1, "request:not_found": 1, "enroll:unsupported_media_type": 1,
        "connection:malformed": 1}


def test_a_thousand_invented_terminal_ids_raise_at_most_one_alert(ledger: LedgerServer) -> None:
    code = ledger.admin_json("terminal", "add", "real till")["code"]
    till = LedgerTerminal.enroll(ledger.url, code)
    session = requests.Session()
    before = {a["id"] for a in alerts(ledger)}
    started = time.monotonic()
    statuses: dict[int, int] = {}
    for i in range(1_000):
        assert time.monotonic() < started + 120, "the flood took too long"
        if i % 10 == 0:  # a real terminal's id without its key: once a critical alert per request
            answer = post(session, ledger, unsigned_envelope(till.terminal_id))
        elif i % 10 == 1:  # an unsigned pull with an invented id
            answer = session.get(f"{ledger.url}/v1/pull?trust=0&revocations=0&rules=0&members=0", headers={
                "X-Cardpos-Terminal": f"t-{uuid.uuid4().hex}", "X-Cardpos-Time": str(time.time_ns() // 1_000_000),
                "X-Cardpos-Signature": "00" * 64}, timeout=HTTP_TIMEOUT_S)
        else:
            answer = post(session, ledger, unsigned_envelope(f"t-{uuid.uuid4().hex}"))
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
    elapsed = time.monotonic() - started
    assert statuses == {403: 1_000}
    new = [a for a in alerts(ledger) if a["id"] not in before]
    assert len(new) <= 1, [(a["rule"], a["subject_id"]) for a in new]
    assert all(a["subject_type"] == "source" and a["rule"] == "unauthenticated_refusals" for a in new)
    assert not [a for a in alerts(ledger) if a["terminal_id"] == till.terminal_id]  # no alert pinned on the till
    assert ledger.admin_json("audit", "--rejected")["rows"] == []

    # Each window is summed up by one audit line per source (with a few cut, sanitized claims), once it is over.
    time.sleep(WINDOW_S + 0.5)
    post(session, ledger, b"next window")
    lines = [r for r in audit(ledger) if r["action"] == "unauthenticated_refused"]
    assert 1 <= len(lines) <= elapsed / WINDOW_S + 1
    assert {line["subject"] for line in lines} == {"127.0.0.1"}
    reasons: dict[str, int] = {}
    for line in lines:
        for reason, n in line["details"]["reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + n
        assert 0 < len(line["details"]["claimed"]) <= 5
        assert all(len(c) <= 41 for c in line["details"]["claimed"])
    assert sum(line["details"]["count"] for line in lines) == 1_000
    assert reasons == {"batch:bad_signature": 100, "batch:unknown_terminal": 800, "pull:unknown_terminal": 100}

    # The real till is unharmed: its own signed batches still apply.
    member = ledger.admin_json("member", "add", "Noise Proof", "--balance", "1.00")["member_id"]
    till.append("topup", topup(member, 100))
    assert till.push_verified(1, 1) == {"acked_seq": 1, "applied": 1, "duplicates": 0}


def test_identifier_columns_are_bounded_on_sqlite(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path / "ledger-home")  # made by `cardpos ledger init`; no server needed
    conn = sqlite3.connect(ledger.ledger_dir / "ledger.sqlite3", timeout=10)
    try:
        too_long = [
            ("rejected_batch", "INSERT INTO rejected_batch (at_ms, terminal_id, reason, detail, seqs, size) "
                               "VALUES (1, ?, 'x', '', '[]', 0)", "t" * 41),
            ("audit_log", "INSERT INTO audit_log (at_ms, actor, action, subject, details) "
                          "VALUES (1, ?, 'x', '', '{}')", "a" * 201),
            ("alert", "INSERT INTO alert (rule, severity, subject_type, subject_id, summary, evidence, count, "
                      "first_seen_ms, last_seen_ms, created_ms, status, note) "
                      "VALUES ('r', 'info', 'source', ?, '', '[]', 1, 1, 1, 1, 'open', '')", "s" * 81),
            ("quarantined_entry", "INSERT INTO quarantined_entry (terminal_id, seq, uuid, prev_hash, hash, body, kind, "
                                  "code, reason, batch_id, at_ms) VALUES ('t', 1, 'u', x'', x'', x'', ?, 'c', 'r', "
                                  "'b', 1)", "k" * 25),
            # written per applied entry: bounded by a CHECK in the table (store.INLINE_CHECKED), not a trigger
            ("applied_entry", "INSERT INTO applied_entry (terminal_id, seq, uuid, prev_hash, hash, wall_ms, mono_ns, "
                              "kind, payload, batch_id, applied_ms) VALUES ('t', 1, ?, x'', x'', 1, 1, 'sale', x'', "
                              "'b', 1)", "u" * 37),
            ("funding_line", "INSERT INTO funding_line (terminal_id, seq, uuid, member_id, kind, flow, merchant_id, "
                             "issuer_id, amount, points, currency, period, wall_ms) VALUES ('t', 1, 'u', 'm', 'sale', "
                             "'sv_out', 'shop', 'group', 1, 0, ?, '2026-11', 1)", "CNYX"),
        ]
        for table, sql, value in too_long:
            with pytest.raises(sqlite3.IntegrityError, match=f"longer than its column allows in {table}"):
                conn.execute(sql, (value,))
            conn.execute(sql, (value[:-1],))  # at the limit: fine
            conn.rollback()
    finally:
        conn.close()


def test_identifier_columns_are_bounded_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    import peewee

    from ledger import alerts as ledger_alerts
    from ledger import store
    from ledger.home import init_ledger

    init_ledger(tmp_path / "ledger", postgres_url)
    ledger_alerts.install(tmp_path / "ledger", start_worker=False)
    try:
        for model, fields, column, limit in (
                (store.RejectedBatch, {"at_ms": 1, "reason": "x"}, "terminal_id", 40),
                (store.AuditLog, {"at_ms": 1, "action": "x"}, "actor", 200),
                (store.AuditLog, {"at_ms": 1, "action": "x", "actor": "a"}, "subject", 200)):
            with pytest.raises(peewee.DatabaseError), store.db.atomic():
                model.create(**fields, **{column: "x" * (limit + 1)})
            with store.db.atomic() as txn:
                model.create(**fields, **{column: "x" * limit})
                txn.rollback()
    finally:
        ledger_alerts.uninstall()
        store.db.close()
