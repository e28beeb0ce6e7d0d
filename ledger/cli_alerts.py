"""cardpos ledger alerts ...: list, show, ack, resolve, deliver."""

from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path
from typing import Any

from cardkit import locations
from cardkit.cliutil import Subparsers, add_common, emit, settings_from_args
from ledger import alert_store, delivery
from ledger.anomaly.model import Severity
from ledger.cli import at_least, db_arg, open_checked, storage_guarded
from ledger.errors import LedgerError

STATUSES = [s.value for s in alert_store.AlertStatus]


def register(subparsers: Subparsers) -> None:
    alerts = subparsers.add_parser("alerts", help="anomaly alerts: list, show, acknowledge, resolve, deliver",
                                   description="Anomaly alerts raised by the ledger's detectors.")
    sub = alerts.add_subparsers(dest="alerts_command", metavar="COMMAND", parser_class=type(alerts))

    def show_help(_: argparse.Namespace) -> int:
        alerts.print_help()
        return 2

    alerts.set_defaults(handler=show_help)

    p = sub.add_parser("list", help="list alerts, newest first", description="List alerts, newest first.")
    _common(p)
    p.add_argument("--severity", choices=[s.value for s in Severity], help="only this severity")
    p.add_argument("--rule", help="only this rule (forged_burst, double_spend, velocity, ...)")
    p.add_argument("--terminal", help="only alerts about or seen at this terminal id")
    p.add_argument("--since", help="only alerts seen since this time: ISO 8601 (2026-11-23T10:00Z) or epoch s/ms")
    p.add_argument("--status", choices=STATUSES, help="only alerts in this state")
    p.add_argument("--limit", type=at_least(1), default=200, help="most alerts shown (default 200)")
    p.set_defaults(handler=storage_guarded(_list))

    p = sub.add_parser("show", help="one alert with its evidence", description="Show one alert with its evidence.")
    _common(p)
    p.add_argument("alert_id", type=int, metavar="ID")
    p.set_defaults(handler=storage_guarded(_show))

    p = sub.add_parser("ack", help="acknowledge an open alert", description="Acknowledge an open alert.")
    _common(p)
    p.add_argument("alert_id", type=int, metavar="ID")
    p.add_argument("--by", required=True, metavar="NAME", help="who acknowledges (recorded in the audit log)")
    p.set_defaults(handler=storage_guarded(_ack))

    p = sub.add_parser("resolve", help="resolve an alert", description="Resolve an alert.")
    _common(p)
    p.add_argument("alert_id", type=int, metavar="ID")
    p.add_argument("--by", required=True, metavar="NAME", help="who resolves (recorded in the audit log)")
    p.add_argument("--note", default="", help="what was done")
    p.set_defaults(handler=storage_guarded(_resolve))

    p = sub.add_parser("deliver", help="send pending alert notifications once",
                       description="Send every due notification (webhook, mail) once, per <ledger_dir>/alerts.toml.")
    _common(p)
    p.set_defaults(handler=storage_guarded(_deliver))


def _common(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    parser.add_argument("--ledger-dir", type=Path, default=None,
                        help="the ledger directory (default: <data dir>/ledger)")
    parser.add_argument("--db", type=db_arg, default=None, help="database URL overriding the one recorded at init")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _open(args: argparse.Namespace) -> Path:
    ledger_dir = args.ledger_dir or locations.ledger_dir(settings_from_args(args).data_dir)
    open_checked(ledger_dir, args.db)
    alert_store.create_tables()
    return Path(ledger_dir)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_since(text: str) -> int:
    """ISO 8601 (naive means UTC) or epoch seconds / milliseconds → epoch ms."""
    text = text.strip()
    if text.isdigit():
        value = int(text)
        return value if value >= 10**11 else value * 1000  # 11+ digits can only be milliseconds
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LedgerError(f"--since {text!r} is not a time; write 2026-11-23T10:00Z or epoch seconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return int(when.timestamp() * 1000)


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _line(a: alert_store.Alert) -> str:
    return (f"#{a.id:<5} {a.severity:<8} {a.status:<12} {a.rule:<22} {a.subject_type}:{a.subject_id}  "
            f"count {a.count}  last {_iso(a.last_seen_ms)}")


def _list(args: argparse.Namespace) -> int:
    _open(args)
    rows = alert_store.list_alerts(severity=args.severity, rule=args.rule, terminal=args.terminal,
                                   since_ms=parse_since(args.since) if args.since else None, status=args.status,
                                   limit=args.limit)
    text = "\n".join(f"{_line(a)}\n  {a.summary}" for a in rows) if rows else "no alerts"
    emit({"alerts": [a.as_dict() for a in rows]}, args.json, text)
    return 0


def _detail(a: alert_store.Alert) -> str:
    lines = [
        _line(a), f"  {a.summary}",
        f"  first seen {_iso(a.first_seen_ms)}, last seen {_iso(a.last_seen_ms)}, raised {_iso(a.created_ms)}",
        f"  terminal {a.terminal_id or '-'}, window {a.dedup_window or '-'}",
        f"  evidence: {', '.join(a.evidence or []) or '-'}",
    ]
    if a.acked_by:
        lines.append(f"  acknowledged by {a.acked_by} at {_iso(a.acked_ms)}")
    if a.resolved_by:
        lines.append(f"  resolved by {a.resolved_by} at {_iso(a.resolved_ms)}" + (f": {a.note}" if a.note else ""))
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    _open(args)
    alert = alert_store.get_alert(args.alert_id)
    result: dict[str, Any] = alert.as_dict()
    result["deliveries"] = [
        {"channel": o.channel, "status": o.status, "attempts": o.attempts, "sent_ms": o.sent_ms,
         "last_error": o.last_error}
        for o in alert_store.AlertOutbox.select().where(alert_store.AlertOutbox.alert_id == alert.id)
        .order_by(alert_store.AlertOutbox.id)]
    text = _detail(alert)
    for d in result["deliveries"]:
        text += (f"\n  {d['channel']}: {d['status']} after {d['attempts']} attempt(s)"
                 + (f", sent {_iso(d['sent_ms'])}" if d["sent_ms"] else "")
                 + (f", last error: {d['last_error']}" if d["last_error"] else ""))
    emit(result, args.json, text)
    return 0


def _ack(args: argparse.Namespace) -> int:
    _open(args)
    alert = alert_store.acknowledge(args.alert_id, args.by, _now_ms())
    emit(alert.as_dict(), args.json, f"alert #{alert.id} acknowledged by {alert.acked_by}")
    return 0


def _resolve(args: argparse.Namespace) -> int:
    _open(args)
    alert = alert_store.resolve(args.alert_id, args.by, _now_ms(), args.note)
    emit(alert.as_dict(), args.json, f"alert #{alert.id} resolved by {alert.resolved_by}")
    return 0


def _deliver(args: argparse.Namespace) -> int:
    ledger_dir = _open(args)
    report = delivery.deliver_pending(_now_ms(), delivery.load_config(ledger_dir))
    dead = len(delivery.dead_letters())
    result = {**report.as_dict(), "dead_total": dead}
    emit(result, args.json, f"sent {report.sent} ({report.mails} mails), failed {report.failed} (will retry), "
                            f"waiting {report.waiting}, gave up {report.dead} (dead letters in total: {dead})")
    return 0 if report.failed == 0 and report.dead == 0 else 1
