from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cardpos.cli import build_parser, main
from tests.conftest import CARDPOS


def _walk(parser, prefix=()):  # yields every command path
    yield prefix
    for action in parser._actions:
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict):
            for name, sub in choices.items():
                yield from _walk(sub, (*prefix, name))


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    paths = list(_walk(build_parser()))
    assert ("terminal",) in paths and ("ledger",) in paths and ("card",) in paths
    for path in paths:
        with pytest.raises(SystemExit) as exc:
            main([*path, "--help"])
        assert exc.value.code == 0
        assert "usage:" in capsys.readouterr().out


def test_bad_flag_is_one_line_and_exit_2() -> None:
    proc = subprocess.run([*CARDPOS, "--no-such-flag"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unrecognized arguments" in lines[0]
    assert "Traceback" not in proc.stderr


def test_an_error_of_ours_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # ``terminal sync`` on a data dir that was never enrolled raises ConfigError up to ``main``.
    assert main(["terminal", "sync", "--data-dir", str(tmp_path / "never-enrolled")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cardpos: ") and "not enrolled" in err[0]
