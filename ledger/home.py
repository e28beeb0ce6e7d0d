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

from cardkit.locations import private_dir, restrict_mode, write_private
from ledger import pii, store
from ledger.errors import LedgerError
from ledger.keys import LedgerKeys, keys_dir

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
    # The URL may hold a database password: owner-only, and written atomically.
    write_private(_settings_path(ledger_dir), json.dumps(data, indent=2, sort_keys=True).encode("utf-8"))


def private_files(ledger_dir: Path) -> None:
    """The ledger directory and ``keys/`` 0700 and every key file and the settings 0600, also when they exist
    with looser modes (restored from a careless copy, made by an older version); bits are only ever taken away.
    The database files are handled where the database is opened (``ledger.store.private_sqlite_files``)."""
    private_dir(ledger_dir)
    keys = keys_dir(ledger_dir)
    if keys.is_dir():
        private_dir(keys)
        for path in keys.iterdir():
            restrict_mode(path)
    restrict_mode(_settings_path(ledger_dir))


def _open(ledger_dir: Path, db_url: str | None, issuer: str, clock: Clock) -> Ledger:
    global _current
    private_files(ledger_dir)
    database = store.open_ledger_db(db_url if db_url else ledger_dir)
    ledger = Ledger(ledger_dir=ledger_dir, issuer=issuer, db_url=db_url, database=database,
                    keys=LedgerKeys(ledger_dir), clock=clock)
    _current = ledger
    return ledger


def init_ledger(ledger_dir: Path, db_url: str | None = None, issuer: str | None = None,
                clock: Clock = system_clock) -> Ledger:
    """Create (or complete) a ledger: settings, schema, keys. Running it again changes nothing (a ledger of
    an older layout is migrated first)."""
    private_dir(ledger_dir)
    settings = read_settings(ledger_dir)
    issuer = issuer or settings.get("issuer") or DEFAULT_ISSUER
    if settings.get("issuer") and settings["issuer"] != issuer:
        raise LedgerError(f"this ledger already issues cards as {settings['issuer']!r}; the issuer cannot change")
    db_url = db_url or settings.get("db_url")
    _write_settings(ledger_dir, {"issuer": issuer, "db_url": db_url})
    ledger = _open(ledger_dir, db_url, issuer, clock)
    pii.migrate_old_layout(ledger_dir, ledger.now_ms())  # before create_schema indexes the new columns
    from ledger.campaigns import tables as _campaign_tables  # noqa: F401  registers member facts and campaigns

    store.create_schema()
    with store.atomic_write():
        ledger.keys.create_all(issuer, ledger.now_s())
    pii.open_keys(ledger_dir, ledger.now_ms())
    return ledger


def open_ledger(ledger_dir: Path, db_url: str | None = None, clock: Clock = system_clock) -> Ledger:
    """Open an initialised ledger; ``db_url`` overrides the one recorded at init. A ledger of an older layout
    (members' details in clear) is encrypted in place first (``ledger.pii``)."""
    settings = read_settings(ledger_dir)
    if not settings:
        raise LedgerError(f"{ledger_dir} is not a ledger directory; run 'cardpos ledger init' first")
    ledger = _open(ledger_dir, db_url or settings.get("db_url"), str(settings.get("issuer") or DEFAULT_ISSUER),
                   clock)
    pii.migrate_old_layout(ledger_dir, ledger.now_ms())
    pii.open_keys(ledger_dir, ledger.now_ms())
    return ledger
