"""Shared fixtures. Area-specific fixtures (simulator, ledger server, SMTP) live in tests/fixtures/."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from cardpos.demo.runner import free_port  # noqa: F401  (re-exported for tests)

# Property tests assert what is true of every example, never how fast one runs: Hypothesis's default 200 ms
# deadline per example (and its too-slow health check) fail a correct test on a loaded machine, as `make test`'s
# parallel workers make it. Speed is measured under bench/.
settings.register_profile("cardpos", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("cardpos")

REPO_ROOT = Path(__file__).resolve().parent.parent
CARDPOS = [sys.executable, "-m", "cardpos"]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def clean_env(data_dir: Path, tmp_path: Path) -> dict[str, str]:
    """Environment for child processes: no user config, data in the test's own dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDPOS_")}
    env["CARDPOS_DATA_DIR"] = str(data_dir)
    config = tmp_path / "empty-config.toml"
    config.write_text("# tests: defaults only\n")
    env["CARDPOS_CONFIG"] = str(config)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# Each area keeps its fixtures (simulator process, ledger server, SMTP server, ...) in tests/fixtures/<area>.py;
# all of them are loaded here so any test can ask for any fixture by name.
pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}"
    for path in (Path(__file__).parent / "fixtures").glob("*.py")
    if path.stem != "__init__"
)
