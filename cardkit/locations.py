"""Every path cardpos uses, resolved in one place.

The data dir defaults to the platform's user data dir; ``CARDPOS_DATA_DIR`` or the config file override it,
and each path below hangs off it unless set on its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "cardpos"


def default_data_dir() -> Path:
    env = os.environ.get("CARDPOS_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_config_file() -> Path:
    env = os.environ.get("CARDPOS_CONFIG")
    return Path(env) if env else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def terminal_db(data_dir: Path) -> Path:
    return data_dir / "terminal.sqlite3"


def keys_dir(data_dir: Path) -> Path:
    return data_dir / "keys"


def log_file(data_dir: Path) -> Path:
    return data_dir / "logs" / "cardpos.jsonl"


def receipts_dir(data_dir: Path) -> Path:
    return data_dir / "receipts"


def ledger_dir(data_dir: Path) -> Path:
    return data_dir / "ledger"


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only (0600), creating parents as 0700."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, 0o600)
