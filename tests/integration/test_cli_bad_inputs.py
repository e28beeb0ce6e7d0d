"""Bad input at the shell: every mistake gets one clear line on stderr, a non-zero exit, and loses nothing.

The real ``cardpos`` runs as a subprocess against its own data dir and an empty config file.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CARDPOS, REPO_ROOT

TIMEOUT_S = 60.0


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDPOS_")}
    config = root / "config.toml"
    config.touch()
    env.update(CARDPOS_DATA_DIR=str(root / "data"), CARDPOS_CONFIG=str(config))
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CARDPOS, *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)


def refused(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """The command failed with exactly one line on stderr (no traceback) that mentions every word."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


class Shell:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = _env(root)
        self.ledger_dir = root / "data" / "ledger"

    def ok(self, *args: str) -> str:
        done = run(self.env, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(self.env, *args)

    def member_json(self, member_id: str) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.ok("ledger", "member", "show", member_id, "--json"))
        return data


@pytest.fixture(scope="module")
def sh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    shell = Shell(tmp_path_factory.mktemp("shell"))
    shell.ok("ledger", "init", "--issuer", "ACME")
    yield shell


@pytest.fixture(scope="module")
def member(sh: Shell) -> str:
    return sh.ok("ledger", "member", "add", "Ann Lee", "--balance", "10.00").strip()


# -- ledger ----------------------------------------------------------------------------------------------------
def test_init_in_an_unwritable_place_is_one_line(sh: Shell, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    refused(sh("ledger", "init", "--ledger-dir", str(blocker / "ledger")), str(blocker))


@pytest.mark.parametrize("args", [("ledger", "verify", "--ledger-dir"), ("terminal", "status", "--data-dir")])
def test_a_mistyped_directory_is_left_uncreated(sh: Shell, tmp_path: Path, args: tuple[str, ...]) -> None:
    typo = tmp_path / "typo"
    result = sh(*args, str(typo))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert not typo.exists()  # not even a logs/ dir


def test_db_url_of_an_unknown_kind_is_refused_and_nothing_is_created(sh: Shell, tmp_path: Path) -> None:
    refused(sh("ledger", "init", "--ledger-dir", str(tmp_path / "l"), "--db", "mysql://x/y"), "--db")
    assert not (tmp_path / "l").exists()
    assert not (REPO_ROOT / "mysql:").exists()  # not taken for a relative SQLite file name either
    refused(sh("ledger", "verify", "--db", "garbage://x"), "--db")
    assert not (REPO_ROOT / "garbage:").exists()


def test_db_file_that_does_not_exist_is_refused_not_created(sh: Shell, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ledger.sqlite3"
    refused(sh("ledger", "verify", "--db", str(missing)), str(missing))
    assert not missing.parent.exists()


@pytest.mark.parametrize("flag,value", [("--balance", "-5"), ("--points", "-5")])
def test_member_opening_values_cannot_be_negative(sh: Shell, flag: str, value: str) -> None:
    refused(sh("ledger", "member", "add", "Neg", flag, value), flag)


@pytest.mark.parametrize("flag", ["--name", "--store"])
def test_member_update_cannot_blank_the_name_or_store(sh: Shell, member: str, flag: str) -> None:
    # a blank store would drop the member from every terminal of their store at the next pull
    refused(sh("ledger", "member", "update", member, flag, " "), flag)
    view = sh.member_json(member)
    assert (view["name"], view["store_id"]) == ("Ann Lee", "store-1")


def test_member_update_with_nothing_to_change_says_so(sh: Shell, member: str) -> None:
    refused(sh("ledger", "member", "update", member), "nothing to change")


@pytest.mark.parametrize("args", [("member", "add", "Bo", "--store", ""), ("terminal", "add", "Blank", "--store", "")])
def test_blank_store_is_refused(sh: Shell, args: tuple[str, ...]) -> None:
    refused(sh("ledger", *args), "--store")


def test_coupon_min_spend_cannot_be_negative(sh: Shell, member: str) -> None:
    refused(sh("ledger", "coupon", "issue", "--member", member, "--amount", "5", "--min-spend", "-1"), "--min-spend")
    refused(sh("ledger", "coupon", "issue", "--member", member, "--amount", "5", "--days", "9" * 23), "--days")
    assert sh.member_json(member)["coupons"] == []


def test_bad_wallet_is_refused_before_a_card_is_issued(sh: Shell, member: str, tmp_path: Path) -> None:
    wallet = tmp_path / "wallet.json"
    wallet.write_text("garbage")
    refused(sh("ledger", "card", "issue", "--member", member, "--challenge", "--wallet", str(wallet)), str(wallet))
    assert sh.member_json(member)["cards"] == []  # no card whose private key went nowhere


def test_rules_file_that_is_not_text_is_one_line(sh: Shell, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_bytes(b"\xff\xfe\x00garbage")
    refused(sh("ledger", "rules", "load", str(rules)), str(rules))


@pytest.mark.parametrize("hours", ["0", "-1"])
def test_enrollment_code_lifetime_must_be_positive(sh: Shell, hours: str) -> None:
    refused(sh("ledger", "terminal", "add", "Till", "--ttl-hours", hours), "--ttl-hours")
    assert "Till" not in sh.ok("ledger", "terminal", "list")


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_serve_on_a_port_that_does_not_exist(sh: Shell, port: str) -> None:
    refused(sh("ledger", "serve", "--port", port), "port")


def test_alert_settings_file_that_is_not_text_is_one_line(sh: Shell) -> None:
    settings = sh.ledger_dir / "alerts.toml"
    settings.write_bytes(b"\xff\xfe[webhook]")
    try:
        refused(sh("ledger", "alerts", "deliver"), str(settings))
    finally:
        settings.unlink()


@pytest.mark.parametrize("args", [("verify",), ("member", "add", "X"), ("alerts", "list")])
def test_damaged_ledger_database_is_one_line(sh: Shell, tmp_path: Path, args: tuple[str, ...]) -> None:
    ledger_dir = tmp_path / "ledger"
    sh.ok("ledger", "init", "--ledger-dir", str(ledger_dir))
    for wal in ledger_dir.glob("ledger.sqlite3-*"):
        wal.unlink()
    (ledger_dir / "ledger.sqlite3").write_bytes(b"garbage" * 100)
    refused(sh("ledger", *args, "--ledger-dir", str(ledger_dir)), "damaged")


HUGE = "99999999999999999999999"


@pytest.mark.parametrize("args", [
    ("ledger", "terminal", "add", "Huge", "--ttl-hours", "1e308"),
    ("ledger", "member", "add", "Huge", "--points", HUGE),
    ("ledger", "audit", "--limit", HUGE),
])
def test_huge_numbers_are_refused_in_one_line(sh: Shell, args: tuple[str, ...]) -> None:
    refused(sh(*args))


def test_limits_must_be_positive(sh: Shell) -> None:
    refused(sh("ledger", "audit", "--limit", "-1"), "--limit")
    refused(sh("ledger", "alerts", "list", "--limit", "0"), "--limit")


# -- terminal --------------------------------------------------------------------------------------------------
def test_config_file_that_is_not_text_is_one_line(sh: Shell, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(b"\xff\xfe[terminal]")
    refused(run({**sh.env, "CARDPOS_CONFIG": str(config)}, "terminal", "status"), str(config))


@pytest.mark.parametrize("key", ["zz", "00"])
def test_enroll_checks_root_key_before_spending_the_code(sh: Shell, key: str) -> None:
    # the ledger is unreachable: a bad --root-key must be refused before any request (which would use the code)
    line = refused(sh("terminal", "enroll", "--ledger", "http://127.0.0.1:1", "--code", "AAAA-BBBB-CCCC",
                      "--root-key", key), "--root-key")
    assert "unreachable" not in line


def test_reader_probe_baud_must_be_positive(sh: Shell) -> None:
    refused(sh("reader", "probe", "--port", "loop://", "--baud", "0", "--seconds", "0.2"), "baud")


# -- simulator -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("port", ["99999", "-1"])
def test_sim_tcp_port_that_does_not_exist(sh: Shell, port: str) -> None:
    refused(sh("sim", "--tcp", port), "port")


def test_sim_script_that_is_not_text_is_one_line(sh: Shell, tmp_path: Path) -> None:
    script = tmp_path / "script.txt"
    script.write_bytes(b"\xff\xfe tap 1\n")
    refused(sh("sim", "--script", str(script)), str(script))


def test_sim_script_with_an_unknown_command_is_refused_before_it_runs(sh: Shell, tmp_path: Path) -> None:
    script = tmp_path / "script.txt"
    script.write_text("wait 0.1\ntap 1\ntpa 2\n", encoding="utf-8")
    refused(sh("sim", "--script", str(script)), "line 3", "tpa")


@pytest.mark.parametrize("args", [("--ledger-port", "99999"), ("--ledger-port", "-1")])
def test_demo_ledger_port_that_does_not_exist(sh: Shell, args: tuple[str, ...]) -> None:
    refused(sh("demo", *args), "port")


def test_demo_dir_that_cannot_be_made_is_one_line(sh: Shell, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    refused(sh("demo", "--dir", str(blocker / "demo")), str(blocker))
