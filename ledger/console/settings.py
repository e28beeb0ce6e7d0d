"""The console's settings: ``<ledger_dir>/console.toml`` (optional; every key has a default).

```toml
time_zone = "Asia/Shanghai"        # times on pages, and the day/week boundaries of figures (default UTC)
cookie_secure = "auto"             # "auto": Secure cookies when the request came over HTTPS; "always"
trusted_proxies = ["127.0.0.1"]    # whose X-Forwarded-Proto / X-Forwarded-For is believed
online_within_s = 900              # a terminal heard from within this is online (silent: the alerts' threshold)
ledger_url = "https://ledger.example.com"  # the terminals' API, put into enrollment QR codes (default: none)
[stores.store-1]
name = "Nanjing Road"
time_zone = "Asia/Shanghai"
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.errors import LedgerError

FILE_NAME = "console.toml"
_KEYS = {"time_zone", "cookie_secure", "trusted_proxies", "online_within_s", "ledger_url", "stores"}
_STORE_KEYS = {"name", "time_zone"}


@dataclass(frozen=True)
class StoreSettings:
    name: str
    time_zone: ZoneInfo


@dataclass(frozen=True)
class ConsoleSettings:
    time_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    cookie_secure: str = "auto"
    trusted_proxies: tuple[str, ...] = ("127.0.0.1",)
    online_within_s: int = 900
    ledger_url: str = ""
    stores: dict[str, StoreSettings] = field(default_factory=dict)

    def store_zone(self, store_id: str | None) -> ZoneInfo:
        known = self.stores.get(store_id or "")
        return known.time_zone if known is not None else self.time_zone

    def store_name(self, store_id: str) -> str:
        known = self.stores.get(store_id)
        return known.name if known is not None and known.name else store_id


def _zone(value: Any, where: str) -> ZoneInfo:
    if not isinstance(value, str):
        raise LedgerError(f"{where} must be a time zone name such as \"Asia/Shanghai\"")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise LedgerError(f"{where}: unknown time zone {value!r} (write it like \"Asia/Shanghai\")") from None


def parse_settings(data: dict[str, Any], where: str = FILE_NAME) -> ConsoleSettings:
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise LedgerError(f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    zone = _zone(data.get("time_zone", "UTC"), f"{where}: time_zone")
    secure = data.get("cookie_secure", "auto")
    if secure not in ("auto", "always"):
        raise LedgerError(f"{where}: cookie_secure is \"auto\" or \"always\"")
    proxies = data.get("trusted_proxies", ["127.0.0.1"])
    if not isinstance(proxies, list) or not all(isinstance(p, str) for p in proxies):
        raise LedgerError(f"{where}: trusted_proxies is a list of addresses")
    online = data.get("online_within_s", 900)
    if type(online) is not int or not 10 <= online <= 86_400:
        raise LedgerError(f"{where}: online_within_s is a whole number of seconds from 10 to 86400")
    ledger_url = data.get("ledger_url", "")
    if not isinstance(ledger_url, str) or (ledger_url and not ledger_url.startswith(("http://", "https://"))):
        raise LedgerError(f"{where}: ledger_url is the terminals' API address, http(s)://host:port")
    stores: dict[str, StoreSettings] = {}
    raw_stores = data.get("stores", {})
    if not isinstance(raw_stores, dict):
        raise LedgerError(f"{where}: [stores.ID] tables expected")
    for store_id, raw in raw_stores.items():
        if not isinstance(raw, dict) or set(raw) - _STORE_KEYS:
            raise LedgerError(f"{where}: [stores.{store_id}] takes only name and time_zone")
        name = raw.get("name", store_id)
        if not isinstance(name, str):
            raise LedgerError(f"{where}: stores.{store_id}.name must be text")
        stores[str(store_id)] = StoreSettings(name=name, time_zone=_zone(raw.get("time_zone", zone.key),
                                                                         f"{where}: stores.{store_id}.time_zone"))
    return ConsoleSettings(time_zone=zone, cookie_secure=secure, trusted_proxies=tuple(proxies),
                           online_within_s=online, ledger_url=ledger_url.rstrip("/"), stores=stores)


def load_console_settings(ledger_dir: Path) -> ConsoleSettings:
    path = ledger_dir / FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ConsoleSettings()
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerError(f"cannot read {path}: {exc}", orig=exc) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LedgerError(f"{path} is not valid TOML: {exc}", orig=exc) from exc
    return parse_settings(data, str(path))
