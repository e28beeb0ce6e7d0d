"""The ledger's database failing underneath it: a read-only, locked or full SQLite file, a PostgreSQL server that
drops the connection. An admin command says so in one line on stderr and exits 1; the API answers 503 with
``{"error": "storage" | "busy", "message": ...}`` and a ``Retry-After``; nothing half-done is left behind.

Real files throughout: read-only by permission bits (root ignores those, so as root the immutable attribute),
locked by another connection holding ``BEGIN EXCLUSIVE``, full by SQLite's ``max_page_count`` (a per-connection
limit, so those commands run in this process, through the real ``cardpos`` entry point).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardpos.cli import main
from ledger import store
from tests.fixtures.ledger import LedgerServer, LedgerTerminal, enroll_request, make_ledger, topup
from tests.fixtures.postgres import PostgresServer, start_postgres, stop_postgres


def one_line(stderr: str) -> str:
    """The single line a failed command printed (no traceback, nothing else)."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("cardpos: "), lines[0]
    return lines[0]


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make files (0444) and folders (0555) unwritable for this test; as root, immutable (``chattr +i``)."""
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode & 0o777 for path in paths}
        for path in paths:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root without chattr: cannot make a file read-only for this test")
    done: list[Path] = []
    try:
        for path in paths:
            if subprocess.run([chattr, "+i", str(path)], capture_output=True, timeout=10).returncode:
                pytest.skip("running as root where chattr +i does not work: cannot make a file read-only")
            done.append(path)
        yield
    finally:
        for path in done:
            subprocess.run([chattr, "-i", str(path)], capture_output=True, timeout=10, check=True)


def audit_actions(server: LedgerServer) -> list[str]:
    return [row["action"] for row in server.admin_json("audit")["rows"]]


# -- admin commands ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("what", ["file", "file and folder"])
def test_an_admin_write_on_a_read_only_ledger_is_one_line(tmp_path: Path, what: str) -> None:
    server = make_ledger(tmp_path / "home")
    db = store.sqlite_path(server.ledger_dir)
    paths = (db, server.ledger_dir) if what == "file and folder" else (db,)
    with read_only(*paths):
        done = server.admin("member", "add", "Ann Lee", "--balance", "10.00", check=False)
        assert done.returncode == 1, done.stdout
        line = one_line(done.stderr)
        assert "read-only" in line and str(db) in line
    assert "member_add" not in audit_actions(server)  # nothing was recorded
    assert server.admin("member", "add", "Ann Lee").returncode == 0  # and the ledger works again


@pytest.fixture
def in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A ledger made by the real CLI, for ``cardpos`` run in this process (its own settings, no CARDPOS_*)."""
    for var in [v for v in os.environ if v.startswith("CARDPOS_")]:
        monkeypatch.delenv(var)
    config = tmp_path / "config.toml"
    config.write_text("")
    monkeypatch.setenv("CARDPOS_CONFIG", str(config))
    monkeypatch.setenv("CARDPOS_DATA_DIR", str(tmp_path / "data"))
    server = make_ledger(tmp_path / "home")
    log = logging.getLogger("cardpos")
    handlers, propagate, level = list(log.handlers), log.propagate, log.level
    yield server.ledger_dir
    store.db.close()  # the connection the in-process commands left open
    for handler in [h for h in log.handlers if h not in handlers]:  # the command's JSON log file
        log.removeHandler(handler)
        handler.close()
    log.propagate, log.level = propagate, level


def cardpos(capsys: pytest.CaptureFixture[str], ledger_dir: Path, *args: str) -> tuple[int, str, str]:
    code = main(["ledger", *args, "--ledger-dir", str(ledger_dir)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_locked_ledger_is_one_line(in_process: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(store.SQLITE_PRAGMAS, "busy_timeout", 200)  # give up quickly (10 s by default)
    db = store.sqlite_path(in_process)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        code, out, err = cardpos(capsys, in_process, "member", "add", "Ann Lee")
        assert code == 1 and out == ""
        line = one_line(err)
        assert "is locked by another program" in line and str(db) in line
        other.execute("ROLLBACK")
    finally:
        other.close()
    code, out, err = cardpos(capsys, in_process, "member", "add", "Ann Lee")
    assert code == 0, err


def test_a_full_disk_is_one_line_and_records_nothing(in_process: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    db = store.sqlite_path(in_process)
    with closing(sqlite3.connect(db)) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    notes = random.Random(1).randbytes(30_000).hex()  # needs new pages: more than the free room in the file
    with monkeypatch.context() as full:
        full.setitem(store.SQLITE_PRAGMAS, "max_page_count", pages)  # the "disk" has no room for another page
        code, out, err = cardpos(capsys, in_process, "member", "add", "Ann Lee", "--notes", notes)
    assert code == 1 and out == ""
    line = one_line(err)
    assert "is full" in line and "was not saved" in line and str(db) in line
    code, out, _ = cardpos(capsys, in_process, "audit", "--json")
    assert code == 0 and "member_add" not in [row["action"] for row in json.loads(out)["rows"]]
    code, _, err = cardpos(capsys, in_process, "member", "add", "Ann Lee", "--notes", notes)
    assert code == 0, err


# -- the API ----------------------------------------------------------------------------------------------------
def test_the_api_answers_503_storage_when_the_database_is_read_only(tmp_path: Path) -> None:
    server = make_ledger(tmp_path / "home")
    member = server.admin("member", "add", "Ann Lee").stdout.strip()
    code = server.admin_json("terminal", "add", "Till 1")["code"]
    late_code = server.admin_json("terminal", "add", "Till 2")["code"]
    db = store.sqlite_path(server.ledger_dir)
    try:
        till = LedgerTerminal.enroll(server.start().url, code)
        till.append("topup", topup(member, 500))
        server.stop()
        with read_only(db):
            server.start()
            proof, _, _ = enroll_request(late_code, Ed25519PrivateKey.generate())
            for resp in (till.push(1, 1), till.session.post(f"{server.url}/v1/enroll", timeout=20,
                                                            json=proof.to_json())):
                assert resp.status_code == 503, resp.text
                body = resp.json()
                assert body["error"] == "storage" and body["message"].startswith("the ledger database is unavailable")
                assert str(tmp_path) not in body["message"]  # the caller learns what happened, not where
                assert int(resp.headers["Retry-After"]) > 0
            assert till.pull().status_code == 200  # reading still works
            server.stop()
        assert "Traceback" not in server.stderr()
        server.start()
        resp = till.push(1, 1)  # nothing was half-applied: the same batch applies once, now
        assert resp.status_code == 200 and resp.json()["applied"] == 1, resp.text
        assert LedgerTerminal.enroll(server.url, late_code).terminal_id  # the code was not used up
    finally:
        server.stop()


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, which it may stop and start again."""
    server = start_postgres()
    try:
        yield server
    finally:
        with suppress(AssertionError):  # a test that left it stopped: its directory is removed all the same
            stop_postgres(server)


@pytest.mark.postgres
def test_a_lost_postgresql_server_is_503_storage_and_the_ledger_recovers(own_postgres: PostgresServer,
                                                                         tmp_path: Path) -> None:
    server = make_ledger(tmp_path / "home", db_url=own_postgres.url(own_postgres.create_database())).start()
    try:
        member = server.admin("member", "add", "Ann Lee").stdout.strip()
        till = LedgerTerminal.enroll(server.url, server.admin_json("terminal", "add", "Till 1")["code"])
        till.append("topup", topup(member, 500))
        assert till.pull().status_code == 200  # the ledger holds open connections now
        own_postgres.stop()  # the database server goes away under the running ledger
        for resp in (till.push(1, 1), till.pull()):
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"] == "storage" and int(resp.headers["Retry-After"]) > 0
        done = server.admin("member", "show", member, check=False)
        assert done.returncode == 1 and "cannot connect to the ledger database" in one_line(done.stderr)
        own_postgres.start()
        resp = till.push(1, 1)  # the ledger reconnects by itself; the batch applies once
        assert resp.status_code == 200 and resp.json()["applied"] == 1, resp.text
        assert till.pull().status_code == 200
    finally:
        server.stop()
    assert "Traceback" not in server.stderr()
