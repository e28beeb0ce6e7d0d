"""Campaign settings from ``<ledger_dir>/campaigns.toml`` (docs/campaigns.md shows one). Every bad value is a
``ConfigError`` naming the key; no file means defaults and no channel to send through."""

from __future__ import annotations

import tomllib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cardkit.errors import ConfigError
from ledger.campaigns.model import FrequencyCap, QuietHours
from ledger.delivery import EmailConfig, RetryPolicy, _check_email_security
from ledger.errors import LedgerError
from ledger.sms.config import HttpSmsConfig, parse_sms_config

CONFIG_NAME = "campaigns.toml"
TOP_KEYS = frozenset({"time_zone", "language", "unsubscribe_url", "results_days", "lapsed_days", "test_phone",
                      "test_email", "batch", "quiet_hours", "frequency_cap", "sms", "mail", "retry"})
MAIL_KEYS = frozenset({"host", "port", "from", "starttls", "implicit_tls", "cafile", "username", "password",
                       "allow_plaintext", "timeout_s"})


@dataclass(frozen=True, slots=True)
class CampaignConfig:
    time_zone: str = "Asia/Shanghai"
    """The programme's zone: quiet hours of members without one, the daily job's calendar day."""
    language: str = "zh"
    """Members without a language get this one."""
    unsubscribe_url: str = "http://127.0.0.1:8760/unsubscribe"
    """Base of the one-click unsubscribe links (the console serves ``/unsubscribe/<token>``)."""
    results_days: int = 14
    """Sales by recipients in this many days after a campaign count towards its results."""
    lapsed_days: int = 90
    """Members without a visit for this long get the "we miss you" greeting."""
    test_phone: str = ""
    test_email: str = ""
    batch: int = 200
    """Messages claimed per sending round."""
    quiet_hours: dict[str, QuietHours] = field(
        default_factory=lambda: {"sms": QuietHours(), "mail": QuietHours()})
    frequency_cap: FrequencyCap = field(default_factory=FrequencyCap)
    sms: HttpSmsConfig | None = None
    mail: EmailConfig | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def load(ledger_dir: Path) -> CampaignConfig:
    path = ledger_dir / CONFIG_NAME
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return CampaignConfig()
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the campaign settings file {path} cannot be read: {exc}", orig=exc) from exc
    return parse(data, str(path))


def _int(table: dict[str, Any], key: str, default: int, where: str, low: int = 0, high: int = 10**6) -> int:
    value = table.get(key, default)
    if type(value) is not int or not low <= value <= high:
        raise ConfigError(f"{where}: {key} must be a whole number from {low} to {high}, not {value!r}")
    return value


def _text(table: dict[str, Any], key: str, default: str, where: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value.isprintable():
        raise ConfigError(f"{where}: {key} must be printable text, not {value!r}")
    return value


def _bool(table: dict[str, Any], key: str, where: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {key} must be true or false, not {value!r}")
    return value


def parse(data: dict[str, Any], where: str = CONFIG_NAME) -> CampaignConfig:
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown setting {unknown[0]} (known: {', '.join(sorted(TOP_KEYS))})")
    zone = _text(data, "time_zone", "Asia/Shanghai", where)
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: time_zone {zone!r} is not a time zone name") from None
    language = _text(data, "language", "zh", where)
    if language not in ("zh", "en"):
        raise ConfigError(f"{where}: language must be zh or en, not {language!r}")
    url = _text(data, "unsubscribe_url", "http://127.0.0.1:8760/unsubscribe", where)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: unsubscribe_url must be an http:// or https:// address")
    quiet = {"sms": QuietHours(), "mail": QuietHours()}
    table = data.get("quiet_hours", {})
    if not isinstance(table, dict) or set(table) - {"sms", "mail"}:
        raise ConfigError(f"{where}: quiet_hours is a table with sms and mail (\"21:00-08:00\")")
    for channel, text in table.items():
        try:
            quiet[channel] = QuietHours.parse(str(text))
        except LedgerError as exc:
            raise ConfigError(f"{where}: quiet_hours.{channel}: {exc.message}") from None
    cap_table = data.get("frequency_cap", {})
    if not isinstance(cap_table, dict) or set(cap_table) - {"count", "days"}:
        raise ConfigError(f"{where}: frequency_cap is a table with count and days")
    cap = FrequencyCap(_int(cap_table, "count", 2, where), _int(cap_table, "days", 7, where, 1, 366))
    sms = parse_sms_config(data["sms"], f"{where} [sms]") if "sms" in data else None
    mail = _mail(data["mail"], where) if "mail" in data else None
    retry_table = data.get("retry", {})
    if not isinstance(retry_table, dict) or set(retry_table) - {"max_attempts", "backoff_s", "backoff_max_s"}:
        raise ConfigError(f"{where}: retry is a table with max_attempts, backoff_s and backoff_max_s")
    retry = RetryPolicy(_int(retry_table, "max_attempts", 8, where, 1), _int(retry_table, "backoff_s", 5, where),
                        _int(retry_table, "backoff_max_s", 900, where))
    return CampaignConfig(
        time_zone=zone, language=language, unsubscribe_url=url.rstrip("/"),
        results_days=_int(data, "results_days", 14, where, 1, 366), lapsed_days=_int(data, "lapsed_days", 90, where, 1),
        test_phone=_text(data, "test_phone", "", where), test_email=_text(data, "test_email", "", where),
        batch=_int(data, "batch", 200, where, 1, 10_000), quiet_hours=quiet, frequency_cap=cap, sms=sms, mail=mail,
        retry=retry)


def _mail(table: Any, where: str) -> EmailConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: mail must be a [mail] table")
    unknown = sorted(set(table) - MAIL_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown setting mail.{unknown[0]} (known: {', '.join(sorted(MAIL_KEYS))})")
    host = table.get("host")
    if not isinstance(host, str) or not host:
        raise ConfigError(f"{where}: mail needs host")
    cfg = EmailConfig(host=host, port=_int(table, "port", 25, where, 1, 65535),
                      sender=_text(table, "from", "cardpos@localhost", where), to=(),
                      starttls=_bool(table, "starttls", where), implicit_tls=_bool(table, "implicit_tls", where),
                      cafile=_text(table, "cafile", "", where), username=_text(table, "username", "", where),
                      password=_text(table, "password", "", where),
                      allow_plaintext=_bool(table, "allow_plaintext", where),
                      timeout_s=_int(table, "timeout_s", 10, where, 1, 300))
    _check_email_security(cfg, f"{where} [mail]")
    return cfg
