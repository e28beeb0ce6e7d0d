"""Alert delivery: the outbox drained to a webhook and to email, with retries, backoff and mail digests.

``deliver_pending(now_ms, config)`` sends what is due once (tests and ``cardpos ledger alerts deliver``);
``DeliveryWorker`` runs it in a background thread inside ``ledger serve``. Messages are rendered from the alert
as it is at sending time, so a burst that kept counting while the digest window was open is mailed with its
final count.

Channel settings come from ``<ledger_dir>/alerts.toml`` (see docs/alerts.md).
"""

from __future__ import annotations

import hashlib
import hmac
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

import requests

from cardkit.errors import ConfigError
from ledger import store
from ledger.alert_store import Alert, AlertOutbox, Channel, OutboxStatus
from ledger.anomaly.model import Severity
from ledger.errors import LedgerError

log = logging.getLogger("cardpos.ledger.delivery")

CONFIG_NAME = "alerts.toml"
SIGNATURE_HEADER = "X-Cardpos-Signature"
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
    secret: str = ""
    """HMAC-SHA256 key; the body's signature goes in ``X-Cardpos-Signature: sha256=<hex>``."""
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
    """Upgrade the connection with STARTTLS (the server's certificate is verified)."""
    cafile: str = ""
    """Extra CA certificate file to trust for STARTTLS (a private mail relay's own CA)."""
    username: str = ""
    password: str = ""
    min_severity: Severity = Severity.WARNING
    digest_s: int = 60
    """Alerts are gathered this long after the first one waiting, then mailed together."""
    max_per_hour: int = 12
    """Most mails in any hour; more alerts wait and go out in the next digest."""
    timeout_s: int = 10
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    webhook: WebhookConfig | None = None
    email: EmailConfig | None = None
    poll_s: int = 2
    """How often the background worker looks for due notifications."""

    def channels(self) -> list[Channel]:
        out = []
        if self.webhook:
            out.append(Channel("webhook", self.webhook.min_severity))
        if self.email:
            out.append(Channel("email", self.email.min_severity))
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
    has_secret = (config.webhook is not None and config.webhook.secret) or (config.email is not None
                                                                          and config.email.password)
    if has_secret and path.stat().st_mode & 0o077:
        log.warning("alert settings file holds a secret and is readable by others; chmod 600 it",
                    extra={"fields": {"path": str(path)}})
    return config


def parse_config(data: dict[str, Any], where: str = CONFIG_NAME) -> DeliveryConfig:
    default_sev = _severity(data.get("min_severity", "warning"), f"{where}: min_severity")
    webhook = email = None
    if isinstance(data.get("webhook"), dict):
        w = data["webhook"]
        if not isinstance(w.get("url"), str) or not w["url"].startswith(("http://", "https://")):
            raise ConfigError(f"{where}: webhook.url must be an http:// or https:// address")
        webhook = WebhookConfig(
            url=w["url"], secret=str(w.get("secret", "")),
            min_severity=_severity(w.get("min_severity", default_sev), f"{where}: webhook.min_severity"),
            timeout_s=_int(w, "timeout_s", 5, where, "webhook"), retry=_retry(w, where, "webhook"))
    if isinstance(data.get("email"), dict):
        e = data["email"]
        to = e.get("to", [])
        to = [to] if isinstance(to, str) else to
        if not isinstance(e.get("host"), str) or not to or not all(isinstance(a, str) for a in to):
            raise ConfigError(f"{where}: email needs host and to (one address or a list)")
        email = EmailConfig(
            host=e["host"], port=_int(e, "port", 25, where, "email"), sender=str(e.get("from", "cardpos@localhost")),
            to=tuple(to), starttls=bool(e.get("starttls", False)), cafile=str(e.get("cafile", "")),
            username=str(e.get("username", "")),
            password=str(e.get("password", "")),
            min_severity=_severity(e.get("min_severity", default_sev), f"{where}: email.min_severity"),
            digest_s=_int(e, "digest_s", 60, where, "email"), max_per_hour=_int(e, "max_per_hour", 12, where, "email"),
            timeout_s=_int(e, "timeout_s", 10, where, "email"), retry=_retry(e, where, "email"))
    return DeliveryConfig(webhook=webhook, email=email, poll_s=max(1, _int(data, "poll_s", 2, where, "")))


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


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """For receivers: constant-time check of ``X-Cardpos-Signature``."""
    return hmac.compare_digest(sign(secret, body), header)


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
        if cfg.secret:
            headers[SIGNATURE_HEADER] = sign(cfg.secret, body)
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
    rows = _due("email", now_ms)
    if not rows:
        return
    oldest = min(r.created_ms for r in rows)
    if now_ms - oldest < cfg.digest_s * 1000 and all(r.attempts == 0 for r in rows):
        report.waiting += len(rows)  # still gathering the digest
        return
    recent_mails = (AlertOutbox.select(AlertOutbox.message_id).distinct()
                    .where((AlertOutbox.channel == "email") & (AlertOutbox.sent_ms > now_ms - HOUR_MS)
                           & AlertOutbox.message_id.is_null(False)).count())
    if cfg.max_per_hour and recent_mails >= cfg.max_per_hour:
        report.waiting += len(rows)
        return
    rows = _claim(rows, now_ms)
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
    try:
        with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s) as smtp:
            if cfg.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=cfg.cafile or None))
            if cfg.username:
                smtp.login(cfg.username, cfg.password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise LedgerError(f"the alert mail could not be sent through {cfg.host}:{cfg.port}", orig=exc) from exc


_deliver_lock = threading.Lock()


def deliver_pending(now_ms: int, config: DeliveryConfig, post: Poster = http_post) -> DeliveryReport:
    """Send every due notification once. Safe to call from several threads (one runs at a time)."""
    report = DeliveryReport()
    with _deliver_lock:
        if config.webhook:
            deliver_webhooks(config.webhook, now_ms, report, post)
        if config.email:
            deliver_email(config.email, now_ms, report)
    return report


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
                deliver_pending(now, self.config)
            except Exception:  # keep the worker alive; the outbox keeps what was not sent
                log.exception("alert delivery round failed")
            finally:
                if not store.db.is_closed():
                    store.db.close()  # this thread's connection; reopened next round
            self._wake_event.wait(self.config.poll_s)
            self._wake_event.clear()
