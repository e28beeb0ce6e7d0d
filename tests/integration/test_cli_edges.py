"""CLI rough edges at the shell: a closed pipe, text that says what ``--json`` says, and refusals with a reason.

The real ``cardpos`` runs as a subprocess against its own data dir and an empty config file.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import CARDPOS, REPO_ROOT, free_port
from tests.integration.test_cli_bad_inputs import Shell, refused

TIMEOUT_S = 60.0
EXIT_OUTPUT_CLOSED = 141  # 128 + SIGPIPE, as a shell reports any tool whose reader went away


@pytest.fixture(scope="module")
def sh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    shell = Shell(tmp_path_factory.mktemp("edges"))
    shell.ok("ledger", "init", "--issuer", "ACME")
    yield shell


@pytest.fixture(scope="module")
def member(sh: Shell) -> str:
    member_id = sh.ok("ledger", "member", "add", "Ann Lee", "--phone", "138-1234-5678", "--email", "ann@example.com",
                      "--notes", "allergic to peanuts", "--pref", "spice=mild", "--balance", "10.00").strip()
    sh.ok("ledger", "card", "issue", "--member", member_id)
    sh.ok("ledger", "coupon", "issue", "--member", member_id, "--amount", "5.00", "--min-spend", "20.00")
    return member_id


def into_closed_pipe(sh: Shell, *args: str, closed: str = "stdout") -> subprocess.CompletedProcess[str]:
    """Run with stdout (or stderr) a pipe whose reader has already gone, as ``| head -1`` leaves it."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, closed: write_end}
    try:
        return subprocess.run([*CARDPOS, *args], env=sh.env, cwd=REPO_ROOT, text=True, timeout=TIMEOUT_S,
                              check=False, **streams)  # type: ignore[call-overload]
    finally:
        os.close(write_end)


# -- a closed pipe --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["ledger", "member", "show", "MEMBER"],
    ["ledger", "member", "show", "MEMBER", "--json"],
    ["ledger", "audit"],
    ["ledger", "keys", "list"],
    ["terminal", "--help"],
], ids=["member-show", "member-show-json", "audit", "keys-list", "help"])
def test_a_closed_pipe_ends_quietly(sh: Shell, member: str, args: list[str]) -> None:
    done = into_closed_pipe(sh, *[member if a == "MEMBER" else a for a in args])
    assert done.stderr == ""  # no traceback, no "Exception ignored" at exit
    assert done.returncode in (0, EXIT_OUTPUT_CLOSED)  # 0 only where argparse itself swallows the error (--help)
    if args[0] == "ledger":
        assert done.returncode == EXIT_OUTPUT_CLOSED


def test_a_closed_stderr_hides_no_failure_behind_a_traceback(sh: Shell) -> None:
    done = into_closed_pipe(sh, "ledger", "member", "show", "nobody", closed="stderr")
    assert done.returncode == EXIT_OUTPUT_CLOSED and done.stdout == ""


def test_head_of_a_real_shell_pipeline(sh: Shell, member: str) -> None:
    line = subprocess.run(["sh", "-c", '"$@" | head -1', "sh", *CARDPOS, "ledger",
                           "member", "show", member], env=sh.env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)
    assert line.stdout.startswith(f"member   {member}  Ann Lee") and line.stdout.count("\n") == 1
    assert "Traceback" not in line.stderr and "BrokenPipe" not in line.stderr


# -- text says what --json says -------------------------------------------------------------------------------
def test_member_show_text_carries_the_facts_of_its_json(sh: Shell, member: str) -> None:
    data = sh.member_json(member)
    text = sh.ok("ledger", "member", "show", member)
    lines = dict(line.split(None, 1) for line in text.splitlines() if not line.startswith(" "))
    assert lines["phone"] == "138-1234-5678" and lines["email"] == "ann@example.com"
    assert lines["notes"] == "allergic to peanuts" and lines["prefs"] == "spice=mild"
    assert (lines["tier"], lines["balance"], lines["points"]) == ("standard", "10.00 CNY", "0")
    [card] = data["cards"]  # type: ignore[misc]
    card_line = lines["card"]
    assert card["card_id"] in card_line and "active" in card_line and f"key {card['kid']}" in card_line
    assert "issued 20" in card_line and "expires 20" in card_line
    [coupon] = data["coupons"]  # type: ignore[misc]
    assert coupon["coupon_id"] in lines["coupon"] and "5.00 CNY off" in lines["coupon"]
    assert "min spend 20.00 CNY" in lines["coupon"] and "valid 20" in lines["coupon"]


def test_member_show_says_dash_for_details_not_given(sh: Shell) -> None:
    bare = sh.ok("ledger", "member", "add", "Bo Li").strip()
    text = sh.ok("ledger", "member", "show", bare)
    for label in ("phone", "email", "notes", "prefs"):
        assert f"\n{label:<8} -\n" in text


def test_audit_is_text_unless_json(sh: Shell, member: str) -> None:
    text = sh.ok("ledger", "audit")
    rows = json.loads(sh.ok("ledger", "audit", "--json"))["rows"]
    lines = text.splitlines()
    assert len(lines) == len(rows) >= 3
    for line, row in zip(lines, rows, strict=True):
        assert not line.startswith("{")
        assert f"  {row['actor']}  {row['action']}  {row['subject']}" in line and line[:4].isdigit()
    [coupon] = [line for line in lines if "coupon_issue" in line]
    assert "amount_off=500" in coupon and f"member_id={member}" in coupon
    rejected = sh("ledger", "audit", "--rejected")
    assert rejected.returncode == 0 and rejected.stdout == "no refused batches\n"
    assert json.loads(sh.ok("ledger", "audit", "--rejected", "--json")) == {"rows": []}


# -- refusals with the reason ---------------------------------------------------------------------------------
def test_serve_with_several_workers_on_sqlite_refuses_with_the_reason(sh: Shell) -> None:
    port = free_port()
    line = refused(sh("ledger", "serve", "--workers", "2", "--port", str(port)), "--workers 2", "PostgreSQL",
                   "SQLite", "--workers 1")
    assert "one process writes at a time" in line
