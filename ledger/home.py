"""One ledger installation: its directory, its settings file, its database and its keys.

``<ledger_dir>/ledger.json`` records the issuer name and the database URL chosen at ``ledger init`` so every
later command (serve, admin) opens the same database without repeating ``--db``. An explicit ``--db`` wins.
The clock is injected (epoch milliseconds) so tests can pin time.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee

from ledger import store
from ledger.errors import LedgerError
from ledger.keys import LedgerKeys

Clock = Callable[[], int]
"""Returns the current time in epoch milliseconds."""

SETTINGS_NAME = "ledger.json"
DEFAULT_ISSUER = "cardpos"


def system_clock() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Ledger:
    ledger_dir: Path
    issuer: str
    db_url: str | None
    database: peewee.Database
    keys: LedgerKeys
    clock: Clock = field(default=system_clock)
    randbytes: Callable[[int], bytes] = field(default=os.urandom)

    def now_ms(self) -> int:
        return self.clock()

    def now_s(self) -> int:
        return self.clock() // 1000


_current: Ledger | None = None


def current() -> Ledger:
    """The ledger opened by ``open_ledger`` in this process (admin functions work on it)."""
    if _current is None:
        raise LedgerError("no ledger is open; call ledger.home.open_ledger first")
    return _current


def _settings_path(ledger_dir: Path) -> Path:
    return ledger_dir / SETTINGS_NAME


def read_settings(ledger_dir: Path) -> dict[str, Any]:
    path = _settings_path(ledger_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise LedgerError(f"the ledger settings file {path} is damaged", orig=exc) from exc
    return data if isinstance(data, dict) else {}


def _write_settings(ledger_dir: Path, data: dict[str, Any]) -> None:
    path = _settings_path(ledger_dir)
    tmp = path.with_name(path.name + ".tmp")
    # The URL may hold a database password: owner-only.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _open(ledger_dir: Path, db_url: str | None, issuer: str, clock: Clock) -> Ledger:
    global _current
    database = store.open_ledger_db(db_url if db_url else ledger_dir)
    ledger = Ledger(ledger_dir=ledger_dir, issuer=issuer, db_url=db_url, database=database,
                    keys=LedgerKeys(ledger_dir), clock=clock)
    _current = ledger
    return ledger


def init_ledger(ledger_dir: Path, db_url: str | None = None, issuer: str | None = None,
                clock: Clock = system_clock) -> Ledger:
    """Create (or complete) a ledger: settings, schema, keys. Running it again changes nothing."""
    ledger_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings = read_settings(ledger_dir)
    issuer = issuer or settings.get("issuer") or DEFAULT_ISSUER
    if settings.get("issuer") and settings["issuer"] != issuer:
        raise LedgerError(f"this ledger already issues cards as {settings['issuer']!r}; the issuer cannot change")
    db_url = db_url or settings.get("db_url")
    _write_settings(ledger_dir, {"issuer": issuer, "db_url": db_url})
    ledger = _open(ledger_dir, db_url, issuer, clock)
    store.create_schema()
    with store.atomic_write():
        ledger.keys.create_all(issuer, ledger.now_s())
    return ledger


def open_ledger(ledger_dir: Path, db_url: str | None = None, clock: Clock = system_clock) -> Ledger:
    """Open an initialised ledger; ``db_url`` overrides the one recorded at init."""
    settings = read_settings(ledger_dir)
    if not settings:
        raise LedgerError(f"{ledger_dir} is not a ledger directory; run 'cardpos ledger init' first")
    return _open(ledger_dir, db_url or settings.get("db_url"), str(settings.get("issuer") or DEFAULT_ISSUER),
                 clock)
