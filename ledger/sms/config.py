"""Settings of the HTTP SMS provider: where the gateway is, how we authenticate, how its fields are named.

``parse_sms_config(table)`` reads one TOML table (docs/sms-gateway.md shows one); every bad value is a
``ConfigError`` naming the key. Secrets are kept out of ``repr`` so a logged config does not leak them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cardkit.errors import ConfigError
from ledger.sms.mapping import BodyFormat, FieldMapping

MAX_FIELD_NAME = 64


@dataclass(frozen=True, slots=True)
class HttpSmsConfig:
    url: str
    """The gateway's send endpoint (http:// or https://), e.g. ``http://127.0.0.1:8025/messages``."""
    token: str = field(default="", repr=False)
    """Bearer token (``Authorization: Bearer <token>``); empty: none."""
    username: str = ""
    """Basic-auth user (with ``password``); empty: no basic auth."""
    password: str = field(default="", repr=False)
    sender: str = ""
    """Sender id or number sent with every message; empty: the gateway's account default."""
    fields: FieldMapping = field(default_factory=FieldMapping)
    """The gateway's names for our fields and where its answer keeps the message id."""
    body_format: BodyFormat = BodyFormat.JSON
    extra: dict[str, str] = field(default_factory=dict)
    """Fixed fields added to every request (an account id, a route, a message type)."""
    timeout_s: float = 10.0
    """Longest wait to connect, and for the answer (the whole answer, not only each read)."""
    default_retry_s: int = 60
    """Wait after a 429 (or 503) without a readable ``Retry-After``."""
    max_retry_s: int = 3600
    """Longest wait taken from a ``Retry-After``; a gateway asking for more is waited on this long."""
    callback_secret: str = field(default="", repr=False)
    """HMAC key the gateway signs receipts and inbound replies with (``X-Sms-Signature``)."""
    callback_tolerance_s: int = 300
    """Callbacks whose timestamp is further than this from our clock are refused (replay window)."""


def parse_sms_config(table: Any, where: str = "[sms]") -> HttpSmsConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    known = {"url", "token", "username", "password", "sender", "fields", "format", "extra", "timeout_s",
             "default_retry_s", "max_retry_s", "callback_secret", "callback_tolerance_s"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    url = table.get("url")
    if not isinstance(url, str) or not _is_http_url(url):
        raise ConfigError(f"{where}: url must be an http:// or https:// address, not {url!r}")
    token = _credential(table, "token", where)
    username = _credential(table, "username", where)
    password = _credential(table, "password", where)
    if bool(username) != bool(password) or ":" in username:
        raise ConfigError(f"{where}: username and password go together (and a username has no ':')")
    if token and username:
        raise ConfigError(f"{where}: give a token or a username and password, not both")
    body_format = table.get("format", "json")
    if body_format not in tuple(BodyFormat):
        raise ConfigError(f"{where}: format must be json or form, not {body_format!r}")
    config = HttpSmsConfig(
        url=url, token=token, username=username, password=password, sender=_string(table, "sender", where),
        fields=_fields(table.get("fields", {}), where), body_format=BodyFormat(body_format),
        extra=_extra(table.get("extra", {}), where), timeout_s=_number(table, "timeout_s", 10.0, where, 0.1, 300),
        default_retry_s=int(_number(table, "default_retry_s", 60, where, 0, 86_400, whole=True)),
        max_retry_s=int(_number(table, "max_retry_s", 3600, where, 0, 86_400, whole=True)),
        callback_secret=_string(table, "callback_secret", where),
        callback_tolerance_s=int(_number(table, "callback_tolerance_s", 300, where, 1, 3600, whole=True)))
    clash = set(config.extra) & set(config.fields.request_fields())
    if clash:
        raise ConfigError(f"{where}: extra field {sorted(clash)[0]!r} is also a mapped field")
    return config


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port that is not a number from 0 to 65535
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and url.isprintable() and " " not in url


def _string(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str) or not value.isprintable():
        raise ConfigError(f"{where}: {key} must be printable text")
    return value


def _credential(table: dict[str, Any], key: str, where: str) -> str:
    """Credentials travel in an HTTP header: printable ASCII only (a token without spaces)."""
    value = _string(table, key, where)
    if not value.isascii() or (key == "token" and " " in value):
        raise ConfigError(f"{where}: {key} must be printable ASCII" + (" without spaces" if key == "token" else ""))
    return value


def _number(table: dict[str, Any], key: str, default: float, where: str, low: float, high: float,
            whole: bool = False) -> float:
    value = table.get(key, default)
    allowed = (int,) if whole else (int, float)
    if type(value) not in allowed or not low <= value <= high:
        kind = "a whole number" if whole else "a number"
        raise ConfigError(f"{where}: {key} must be {kind} from {low:g} to {high:g}, not {value!r}")
    return float(value)


def _name(value: Any, where: str, label: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_FIELD_NAME or not value.isprintable():
        raise ConfigError(f"{where}: {label} must be a field name of at most {MAX_FIELD_NAME} printable characters")
    return value


def _fields(table: Any, where: str) -> FieldMapping:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: fields must be a table")
    defaults = FieldMapping()
    unknown = sorted(set(table) - {"to", "text", "sender", "reference", "message_id"})
    if unknown:
        raise ConfigError(f"{where}: fields.{unknown[0]} is not a field we send (to, text, sender, reference, "
                          "message_id)")
    names = {key: _name(table.get(key, getattr(defaults, key)), where, f"fields.{key}")
             for key in ("to", "text", "sender", "reference", "message_id")}
    for key in ("to", "text", "message_id"):
        if not names[key]:
            raise ConfigError(f"{where}: fields.{key} cannot be empty")
    mapping = FieldMapping(**names)
    sent = mapping.request_fields()
    if len(set(sent)) != len(sent):
        raise ConfigError(f"{where}: two fields map to the same name")
    return mapping


def _extra(table: Any, where: str) -> dict[str, str]:
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ConfigError(f"{where}: extra must be a table of text values")
    for key in table:
        if not _name(key, where, f"extra key {str(key)[:40]!r}"):
            raise ConfigError(f"{where}: an extra key cannot be empty")
    return dict(table)
