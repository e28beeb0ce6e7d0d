"""Alert delivery: the outbox drained to a webhook, to email and by SMS, with retries, backoff and digests.

``deliver_pending(now_ms, config)`` sends what is due once (tests and ``cardpos ledger alerts deliver``);
``DeliveryWorker`` runs it in a background thread inside ``ledger serve``. Messages are rendered from the alert
as it is at sending time, so a burst that kept counting while the digest window was open is mailed with its
final count.

Channel settings come from ``<ledger_dir>/alerts.toml`` (see docs/alerts.md). They are checked when loaded, so a
setting that would leak does not start the server: an unknown key (a misspelt ``startls``) is refused by name, an
SMTP login needs TLS (STARTTLS or implicit TLS) unless ``allow_plaintext = true``, and a webhook needs https://
unless it goes to this machine (loopback) or ``allow_http = true``. Webhooks are signed with a timestamp
(``ledger.webhook_signature``, Stripe's ``t=…,v1=…`` scheme).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import smtplib
import ssl
import threading
import tomllib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from cardkit.errors import ConfigError
from ledger import periodic as interval_jobs
from ledger import store
from ledger.alert_store import Alert, AlertOutbox, Channel, OutboxStatus
from ledger.anomaly.model import Severity
from ledger.errors import LedgerError
from ledger.sms.config import HttpSmsConfig, parse_sms_config
from ledger.sms.provider import HttpSmsProvider, SendOutcome, SmsProvider
from ledger.webhook_signature import HEADER as SIGNATURE_HEADER
from ledger.webhook_signature import sign as sign  # re-exported: receivers know ledger.delivery's names
from ledger.webhook_signature import verify_signature as verify_signature

log = logging.getLogger("cardpos.ledger.delivery")

CONFIG_NAME = "alerts.toml"
HOUR_MS = 3_600_000


# -- configuration ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8
    """Attempts before a notification is given up (dead letter)."""
    backoff_s: int = 5
    """Wait after the first failure; doubled after each further failure."""
    backoff_max_s: int = 900
    """Longest wait between two attempts."""

    def delay_ms(self, attempts: int) -> int:
        return min(self.backoff_s * 2 ** max(attempts - 1, 0), self.backoff_max_s) * 1000


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    url: str
    """Where alerts are POSTed as JSON (Slack incoming-webhook compatible ``text``)."""
    secrets: tuple[str, ...] = ()
    """HMAC-SHA256 keys: ``X-Cardpos-Signature: t=<unix s>,v1=<hex>`` with one ``v1`` per key (the new and
    the old key while the receiver's is being rotated); none: unsigned."""
    allow_http: bool = False
    """Allow an ``http://`` URL to another machine (alerts in clear on the network); loopback is always allowed."""
    min_severity: Severity = Severity.WARNING
    timeout_s: int = 5
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True, slots=True)
class EmailConfig:
    host: str
    port: int = 25
    sender: str = "cardpos@localhost"
    to: tuple[str, ...] = ()
    starttls: bool = False
    """Upgrade the connection with STARTTLS (the server's certificate is verified; no fallback to clear)."""
    implicit_tls: bool = False
    """Speak TLS from the first byte (SMTPS, usually port 465; the server's certificate is verified)."""
    cafile: str = ""
    """Extra CA certificate file to trust for TLS (a private mail relay's own CA)."""
    username: str = ""
    """Log in with this name when set (only over TLS unless ``allow_plaintext``)."""
    password: str = ""
    allow_plaintext: bool = False
    """Allow the login over a connection without TLS (the password crosses the network in clear)."""
    min_severity: Severity = Severity.WARNING
    digest_s: int = 60
    """Alerts are gathered this long after the first one waiting, then mailed together."""
    max_per_hour: int = 12
    """Most mails in any hour; more alerts wait and go out in the next digest."""
    timeout_s: int = 10
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def tls(self) -> bool:
        return self.starttls or self.implicit_tls

    def plaintext_login(self) -> bool:
        """A login this configuration would send in clear without having been allowed to."""
        return bool(self.username) and not self.tls and not self.allow_plaintext


@dataclass(frozen=True, slots=True)
class SmsAlertConfig:
    """Alerts to the on-call admins' phones through the SMS gateway (``[sms]`` in alerts.toml)."""

    gateway: HttpSmsConfig
    to: tuple[str, ...] = ()
    min_severity: Severity = Severity.CRITICAL
    digest_s: int = 0
    """Alerts are gathered this long after the first one waiting, then sent as one SMS (0: at once)."""
    max_per_hour: int = 6
    """Most SMS per phone in any hour; more alerts wait for the next one (the digest rule of mail)."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    webhook: WebhookConfig | None = None
    email: EmailConfig | None = None
    sms: SmsAlertConfig | None = None
    poll_s: int = 2
    """How often the background worker looks for due notifications."""

    def channels(self) -> list[Channel]:
        out = []
        if self.webhook:
            out.append(Channel("webhook", self.webhook.min_severity))
        if self.email:
            out.append(Channel("email", self.email.min_severity))
        if self.sms:
            out.append(Channel("sms", self.sms.min_severity))
        return out


def load_config(ledger_dir: Path) -> DeliveryConfig:
    """Read ``<ledger_dir>/alerts.toml``; no file means no channels (alerts are still stored)."""
    path = ledger_dir / CONFIG_NAME
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DeliveryConfig()
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:  # UnicodeDecodeError: not UTF-8 text
        raise ConfigError(f"the alert settings file {path} cannot be read: {exc}", orig=exc) from exc
    config = parse_config(data, str(path))
    has_secret = (config.webhook is not None and config.webhook.secrets) or (config.email is not None
                                                                           and config.email.password)
    if has_secret and path.stat().st_mode & 0o077:
        log.warning("alert settings file holds a secret and is readable by others; chmod 600 it",
                    extra={"fields": {"path": str(path)}})
    return config


TOP_KEYS = frozenset({"min_severity", "poll_s", "webhook", "email", "sms"})
RETRY_KEYS = frozenset({"max_attempts", "backoff_s", "backoff_max_s"})
WEBHOOK_KEYS = frozenset({"url", "secret", "allow_http", "min_severity", "timeout_s"}) | RETRY_KEYS
EMAIL_KEYS = frozenset({"host", "port", "from", "to", "starttls", "implicit_tls", "cafile", "username", "password",
                        "allow_plaintext", "min_severity", "digest_s", "max_per_hour", "timeout_s"}) | RETRY_KEYS
SMS_ALERT_KEYS = frozenset({"to", "min_severity", "digest_s", "max_per_hour"}) | RETRY_KEYS
"""Keys of ``[sms]`` about alerts; every other key there describes the gateway (``ledger.sms.config``)."""


def parse_config(data: dict[str, Any], where: str = CONFIG_NAME) -> DeliveryConfig:
    """Check and type the settings; every refusal is one sentence naming the setting."""
    _known(data, TOP_KEYS, where, "")
    default_sev = _severity(data.get("min_severity", "warning"), f"{where}: min_severity")
    webhook = email = None
    if "webhook" in data:
        w = _table(data, "webhook", where)
        _known(w, WEBHOOK_KEYS, where, "webhook")
        url = w.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: webhook.url must be an http:// or https:// address")
        allow_http = _bool(w, "allow_http", where, "webhook")
        _check_webhook_url(url, allow_http, where)
        webhook = WebhookConfig(
            url=url, secrets=_secrets(w.get("secret", ""), where), allow_http=allow_http,
            min_severity=_severity(w.get("min_severity", default_sev), f"{where}: webhook.min_severity"),
            timeout_s=_int(w, "timeout_s", 5, where, "webhook"), retry=_retry(w, where, "webhook"))
    if "email" in data:
        e = _table(data, "email", where)
        _known(e, EMAIL_KEYS, where, "email")
        to = e.get("to", [])
        to = [to] if isinstance(to, str) else to
        if not isinstance(e.get("host"), str) or not isinstance(to, list) or not to \
                or not all(isinstance(a, str) for a in to):
            raise ConfigError(f"{where}: email needs host and to (one address or a list)")
        email = EmailConfig(
            host=e["host"], port=_int(e, "port", 25, where, "email"),
            sender=_text(e, "from", "cardpos@localhost", where, "email"), to=tuple(to),
            starttls=_bool(e, "starttls", where, "email"), implicit_tls=_bool(e, "implicit_tls", where, "email"),
            cafile=_text(e, "cafile", "", where, "email"), username=_text(e, "username", "", where, "email"),
            password=_text(e, "password", "", where, "email"),
            allow_plaintext=_bool(e, "allow_plaintext", where, "email"),
            min_severity=_severity(e.get("min_severity", default_sev), f"{where}: email.min_severity"),
            digest_s=_int(e, "digest_s", 60, where, "email"), max_per_hour=_int(e, "max_per_hour", 12, where, "email"),
            timeout_s=_int(e, "timeout_s", 10, where, "email"), retry=_retry(e, where, "email"))
        _check_email_security(email, where)
    sms = _sms_alerts(_table(data, "sms", where), where, default_sev) if "sms" in data else None
    return DeliveryConfig(webhook=webhook, email=email, sms=sms, poll_s=max(1, _int(data, "poll_s", 2, where, "")))


def _sms_alerts(table: dict[str, Any], where: str, default_sev: Any) -> SmsAlertConfig:
    to = table.get("to", [])
    to = [to] if isinstance(to, str) else to
    if not isinstance(to, list) or not to or not all(isinstance(n, str) and n.strip() for n in to):
        raise ConfigError(f"{where}: sms needs to (one phone number or a list)")
    gateway = parse_sms_config({k: v for k, v in table.items() if k not in SMS_ALERT_KEYS}, f"{where} [sms]")
    return SmsAlertConfig(
        gateway=gateway, to=tuple(to),
        min_severity=_severity(table.get("min_severity", "critical" if default_sev == "warning" else default_sev),
                               f"{where}: sms.min_severity"),
        digest_s=_int(table, "digest_s", 0, where, "sms"), max_per_hour=_int(table, "max_per_hour", 6, where, "sms"),
        retry=_retry(table, where, "sms"))


def _known(table: dict[str, Any], known: frozenset[str], where: str, section: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        name = f"{section}.{unknown[0]}" if section else unknown[0]
        place = f"in [{section}]" if section else "at the top level"
        raise ConfigError(f"{where}: unknown setting {name} (known {place}: {', '.join(sorted(known))})")


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    table = data[key]
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: {key} must be a [{key}] table, not {table!r}")
    return table


def _bool(table: dict[str, Any], key: str, where: str, section: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {section}.{key} must be true or false, not {value!r}")
    return value


def _text(table: dict[str, Any], key: str, default: str, where: str, section: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {section}.{key} must be text, not {value!r}")
    return value


def _secrets(value: Any, where: str) -> tuple[str, ...]:
    """``secret = "key"``, or ``secret = ["new key", "old key"]`` while a receiver rotates its key."""
    keys = [value] if isinstance(value, str) else value
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) \
            or (len(keys) > 1 and not all(keys)):
        raise ConfigError(f"{where}: webhook.secret must be text or a list of non-empty texts, not {value!r}")
    return tuple(k for k in keys if k)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_webhook_url(url: str, allow_http: bool, where: str) -> None:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError as exc:  # a malformed IPv6 literal
        raise ConfigError(f"{where}: webhook.url {url} is not a valid address", orig=exc) from exc
    if not host:
        raise ConfigError(f"{where}: webhook.url {url} names no host")
    if url.startswith("http://") and not allow_http and not _is_loopback(host):
        raise ConfigError(f"{where}: webhook.url {url} would send alerts in clear to another machine, so use an "
                          "https:// address or set allow_http = true in [webhook]")


def _check_email_security(cfg: EmailConfig, where: str) -> None:
    if cfg.starttls and cfg.implicit_tls:
        raise ConfigError(f"{where}: email.starttls and email.implicit_tls exclude each other (implicit_tls for "
                          "SMTPS, usually port 465; starttls for submission, usually port 587)")
    if cfg.password and not cfg.username:
        raise ConfigError(f"{where}: email.password is set without email.username")
    if cfg.plaintext_login():
        raise ConfigError(f"{where}: email would send the password of {cfg.username!r} in clear, so set "
                          "starttls = true or implicit_tls = true (or allow_plaintext = true to accept that)")


def _severity(value: Any, where: str) -> Severity:
    try:
        return Severity(value)
    except ValueError:
        raise ConfigError(f"{where} must be one of info, warning, critical, not {value!r}") from None


def _int(table: dict[str, Any], key: str, default: int, where: str, section: str) -> int:
    value = table.get(key, default)
    if type(value) is not int or value < 0:
        name = f"{section}.{key}" if section else key
        raise ConfigError(f"{where}: {name} must be a whole number of at least 0, not {value!r}")
    return value


def _retry(table: dict[str, Any], where: str, section: str) -> RetryPolicy:
    return RetryPolicy(max_attempts=max(1, _int(table, "max_attempts", 8, where, section)),
                       backoff_s=_int(table, "backoff_s", 5, where, section),
                       backoff_max_s=_int(table, "backoff_max_s", 900, where, section))


# -- rendering ----------------------------------------------------------------------------------------------

def alert_line(alert: Alert) -> str:
    return (f"[{alert.severity.upper()}] #{alert.id} {alert.rule} {alert.subject_type} {alert.subject_id}: "
            f"{alert.summary} (count {alert.count})")


def webhook_body(alert: Alert, now_ms: int) -> bytes:
    payload = {"text": f"cardpos alert {alert_line(alert)}", "alert": alert.as_dict(), "sent_ms": now_ms}
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")


def email_message(alerts: Sequence[Alert], cfg: EmailConfig, now_ms: int) -> EmailMessage:
    worst = max((Severity(a.severity) for a in alerts), key=lambda s: s.rank)
    total = sum(a.count for a in alerts)
    msg = EmailMessage()
    noun = "alert" if len(alerts) == 1 else "alerts"
    msg["Subject"] = f"cardpos: {len(alerts)} {noun} ({worst.value}), {total} occurrences"
    msg["From"] = cfg.sender
    msg["To"] = ", ".join(cfg.to)
    msg["Date"] = formatdate(now_ms / 1000, usegmt=True)
    msg["Message-ID"] = make_msgid(domain="cardpos.local")
    lines = [alert_line(a) for a in alerts]
    lines.append("")
    for a in alerts:
        lines.append(f"#{a.id} evidence: {', '.join(list(a.evidence or [])[:10])}")
    lines.append("")
    lines.append("Acknowledge with: cardpos ledger alerts ack ID --by NAME")
    msg.set_content("\n".join(lines))
    return msg


# -- sending ------------------------------------------------------------------------------------------------

@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    waiting: int = 0  # held back by the digest window or the hourly mail limit
    mails: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "dead": self.dead, "waiting": self.waiting,
                "mails": self.mails}


Poster = Callable[[str, bytes, dict[str, str], int], int]
"""(url, body, headers, timeout_s) → HTTP status; raises LedgerError when the receiver cannot be reached."""


def http_post(url: str, body: bytes, headers: dict[str, str], timeout_s: int) -> int:
    try:
        response = requests.post(url, data=body, headers=headers, timeout=timeout_s)
    except requests.RequestException as exc:
        raise LedgerError(f"the webhook at {url} could not be reached", orig=exc) from exc
    return response.status_code


def _fail(rows: Sequence[AlertOutbox], policy: RetryPolicy, now_ms: int, error: str, report: DeliveryReport) -> None:
    for row in rows:
        row.attempts += 1
        row.last_error = error[:500]
        if row.attempts >= policy.max_attempts:
            row.status = OutboxStatus.DEAD.value
            report.dead += 1
            log.warning("alert delivery gave up", extra={"fields": {"channel": row.channel, "alert": row.alert_id,
                                                                     "attempts": row.attempts}})
        else:
            row.next_attempt_ms = now_ms + policy.delay_ms(row.attempts)
            report.failed += 1
        row.save()


LEASE_MS = 120_000
"""A claimed notification is not due for anyone else for this long (several server processes share the outbox)."""


def _due(channel: str, now_ms: int) -> list[AlertOutbox]:
    return list(AlertOutbox.select().where(
        (AlertOutbox.channel == channel) & (AlertOutbox.status == OutboxStatus.PENDING.value)
        & (AlertOutbox.next_attempt_ms <= now_ms)).order_by(AlertOutbox.id))


def _claim(rows: Sequence[AlertOutbox], now_ms: int) -> list[AlertOutbox]:
    """Take rows for sending by pushing their due time past a lease; a row another process took first (its
    due time moved) is skipped, so no notification goes out twice."""
    claimed = []
    with store.atomic_write():
        for row in rows:
            taken = (AlertOutbox.update(next_attempt_ms=now_ms + LEASE_MS)
                     .where((AlertOutbox.id == row.id) & (AlertOutbox.status == OutboxStatus.PENDING.value)
                            & (AlertOutbox.next_attempt_ms == row.next_attempt_ms)).execute())
            if taken:
                row.next_attempt_ms = now_ms + LEASE_MS
                claimed.append(row)
    return claimed


def deliver_webhooks(cfg: WebhookConfig, now_ms: int, report: DeliveryReport, post: Poster = http_post) -> None:
    for row in _claim(_due("webhook", now_ms), now_ms):
        alert = Alert.get_or_none(Alert.id == row.alert_id)
        if alert is None:
            row.status = OutboxStatus.DEAD.value
            row.save()
            continue
        body = webhook_body(alert, now_ms)
        headers = {"Content-Type": "application/json", "User-Agent": "cardpos-ledger"}
        if cfg.secrets:
            headers[SIGNATURE_HEADER] = sign(cfg.secrets, body, now_ms // 1000)
        try:
            status = post(cfg.url, body, headers, cfg.timeout_s)
            error = "" if 200 <= status < 300 else f"HTTP {status}"
        except LedgerError as exc:
            error = str(exc)
        with store.atomic_write():
            if error:
                _fail([row], cfg.retry, now_ms, error, report)
            else:
                row.status, row.sent_ms, row.attempts = OutboxStatus.SENT.value, now_ms, row.attempts + 1
                row.save()
                report.sent += 1


def deliver_email(cfg: EmailConfig, now_ms: int, report: DeliveryReport) -> None:
    rows = _digest_due("email", cfg.digest_s, cfg.max_per_hour, now_ms, report)
    if not rows:
        return
    alerts = list(Alert.select().where(Alert.id.in_(sorted({r.alert_id for r in rows}))).order_by(Alert.id))
    message = email_message(alerts, cfg, now_ms)
    try:
        send_mail(cfg, message)
        error = ""
    except LedgerError as exc:
        error = str(exc)
    with store.atomic_write():
        if error:
            _fail(rows, cfg.retry, now_ms, error, report)
            return
        message_id = uuid.uuid4().hex
        for row in rows:
            row.status, row.sent_ms, row.message_id = OutboxStatus.SENT.value, now_ms, message_id
            row.attempts += 1
            row.save()
        report.sent += len(rows)
        report.mails += 1


def send_mail(cfg: EmailConfig, message: EmailMessage) -> None:
    """Send one message. With TLS the server's certificate and name are verified, STARTTLS must succeed before
    anything else is said (a server, or an attacker, that drops it gets a failed delivery, not the password),
    and the login comes only after it."""
    if cfg.plaintext_login():  # a config built in code, not by parse_config: the same rule
        raise LedgerError(f"the alert mail through {cfg.host}:{cfg.port} would send a password in clear")
    try:
        context = ssl.create_default_context(cafile=cfg.cafile or None) if cfg.tls else None
        smtp_class = smtplib.SMTP_SSL if cfg.implicit_tls else smtplib.SMTP
        extra: dict[str, Any] = {"context": context} if cfg.implicit_tls else {}
        with smtp_class(cfg.host, cfg.port, timeout=cfg.timeout_s, **extra) as smtp:
            if cfg.starttls:
                smtp.starttls(context=context)
            if cfg.username:
                smtp.login(cfg.username, cfg.password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:  # ssl.SSLError is an OSError
        raise LedgerError(f"the alert mail could not be sent through {cfg.host}:{cfg.port}", orig=exc) from exc


SMS_ALERT_MAX_TEXT = 300


def sms_alert_text(alerts: Sequence[Alert]) -> str:
    """One short SMS for a digest of alerts: the worst first, then how many more."""
    ordered = sorted(alerts, key=lambda a: (-Severity(a.severity).rank, a.id))
    first = ordered[0]
    text = f"cardpos {alert_line(first)}"
    if len(ordered) > 1:
        text += f" (+{len(ordered) - 1} more: " + ", ".join(f"#{a.id} {a.rule}" for a in ordered[1:4]) + ")"
    return text[:SMS_ALERT_MAX_TEXT]


def deliver_sms(cfg: SmsAlertConfig, now_ms: int, report: DeliveryReport, provider: SmsProvider) -> None:
    """Due SMS alerts, as one digest message per phone, under the digest window and the hourly limit. A gateway
    asking us to wait (429 ``Retry-After``) postpones the digest without counting an attempt; each phone's
    message carries a reference derived from the first row, so a resend is taken as the same message."""
    rows = _digest_due("sms", cfg.digest_s, cfg.max_per_hour, now_ms, report)
    if not rows:
        return
    alerts = list(Alert.select().where(Alert.id.in_(sorted({r.alert_id for r in rows}))).order_by(Alert.id))
    if not alerts:
        return
    text = sms_alert_text(alerts)
    first = min(r.id for r in rows)
    errors: list[str] = []
    wait_s = 0
    for index, phone in enumerate(cfg.to):
        result = provider.send(phone, text, f"alert-{first}-{index}")
        if result.outcome is SendOutcome.RETRY_AFTER:
            wait_s = max(wait_s, result.retry_after_s, 1)
        elif not result.ok:
            errors.append(result.reason)
    with store.atomic_write():
        if wait_s:
            for row in rows:
                row.next_attempt_ms = now_ms + wait_s * 1000
                row.save()
            report.waiting += len(rows)
        elif errors:
            _fail(rows, cfg.retry, now_ms, errors[0], report)
        else:
            message_id = f"sms-{first}"
            for row in rows:
                row.status, row.sent_ms, row.message_id = OutboxStatus.SENT.value, now_ms, message_id
                row.attempts += 1
                row.save()
            report.sent += len(rows)


_deliver_lock = threading.Lock()


def deliver_pending(now_ms: int, config: DeliveryConfig, post: Poster = http_post,
                    sms: SmsProvider | None = None) -> DeliveryReport:
    """Send every due notification once. Safe to call from several threads (one runs at a time)."""
    report = DeliveryReport()
    with _deliver_lock:
        if config.webhook:
            deliver_webhooks(config.webhook, now_ms, report, post)
        if config.email:
            deliver_email(config.email, now_ms, report)
        if config.sms:
            deliver_sms(config.sms, now_ms, report, sms or _sms_provider(config.sms.gateway))
    return report


_providers: dict[int, HttpSmsProvider] = {}


def _sms_provider(gateway: HttpSmsConfig) -> HttpSmsProvider:
    """One provider (and its connection pool) per loaded gateway configuration (the provider keeps it alive,
    so its id is not reused)."""
    provider = _providers.get(id(gateway))
    if provider is None or provider.config is not gateway:
        provider = _providers[id(gateway)] = HttpSmsProvider(gateway)
    return provider


def dead_letters() -> list[AlertOutbox]:
    return list(AlertOutbox.select().where(AlertOutbox.status == OutboxStatus.DEAD.value).order_by(AlertOutbox.id))


class DeliveryWorker(threading.Thread):
    """Drains the outbox in the background; ``wake()`` after queueing for prompt delivery."""

    def __init__(self, config: DeliveryConfig, clock: Callable[[], int],
                 periodic: Callable[[int], None] | None = None, periodic_s: int = 60) -> None:
        super().__init__(name="cardpos-alert-delivery", daemon=True)
        self.config = config
        self.clock = clock
        self.periodic = periodic
        self.periodic_s = periodic_s
        self._stop_event = threading.Event()
        self._wake_event = threading.Event()

    def wake(self) -> None:
        self._wake_event.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop_event.set()
        self._wake_event.set()
        if self.is_alive() and self is not threading.current_thread():
            self.join(timeout_s)
            if self.is_alive():
                log.warning("alert delivery worker still busy after stop", extra={"fields": {"wait_s": timeout_s}})

    def run(self) -> None:
        next_periodic = 0
        # the first round waits one poll interval, so a short-lived command that installed alerts
        # (``ledger init``) exits before the worker touches the database
        self._wake_event.wait(self.config.poll_s)
        self._wake_event.clear()
        while not self._stop_event.is_set():
            now = self.clock()
            try:
                if self.periodic is not None and now >= next_periodic:
                    next_periodic = now + self.periodic_s * 1000
                    self.periodic(now)
                interval_jobs.run_due(now)  # the ledger's other jobs on an interval (ledger.periodic)
                deliver_pending(now, self.config)
            except Exception:  # keep the worker alive; the outbox keeps what was not sent
                log.exception("alert delivery round failed")
            finally:
                if not store.db.is_closed():
                    store.db.close()  # this thread's connection; reopened next round
            self._wake_event.wait(self.config.poll_s)
            self._wake_event.clear()


def _digest_due(channel: str, digest_s: int, max_per_hour: int, now_ms: int,
                report: DeliveryReport) -> list[AlertOutbox]:
    """The rows of a digest channel (mail, SMS) to send now, claimed: none while the digest is still gathering
    (its oldest row younger than ``digest_s`` and nothing retried yet) or the hourly limit of messages is reached
    (those rows are counted as waiting in ``report``)."""
    rows = _due(channel, now_ms)
    if not rows:
        return []
    oldest = min(r.created_ms for r in rows)
    if now_ms - oldest < digest_s * 1000 and all(r.attempts == 0 for r in rows):
        report.waiting += len(rows)  # still gathering the digest
        return []
    recent = (AlertOutbox.select(AlertOutbox.message_id).distinct()
              .where((AlertOutbox.channel == channel) & (AlertOutbox.sent_ms > now_ms - HOUR_MS)
                     & AlertOutbox.message_id.is_null(False)).count())
    if max_per_hour and recent >= max_per_hour:
        report.waiting += len(rows)
        return []
    return _claim(rows, now_ms)
