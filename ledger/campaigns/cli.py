"""cardpos ledger campaigns ...: create, list, preview, test-send, schedule, plan, run-daily, deliver, results;
and ``cardpos ledger member facts``. Wiring only: parse, open the ledger, call ``ledger.campaigns``, print."""

from __future__ import annotations

import argparse
import datetime
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cardkit.cliutil import Subparsers, emit
from cardkit.core.money import Money
from ledger.errors import LedgerError

CHANNELS = ("sms", "mail")


def _clock(args: argparse.Namespace) -> Callable[[], int]:
    """The job's clock: the system's, or one that starts at ``--at`` and runs on from there."""
    from ledger.home import system_clock

    if not getattr(args, "at", None):
        return system_clock
    offset = _instant(args.at) - system_clock()
    return lambda: system_clock() + offset


def _instant(text: str) -> int:
    """ISO 8601 with a zone (2026-11-30T10:00+08:00, ...Z), or epoch milliseconds."""
    if text.isdigit():
        return int(text)
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LedgerError(f"{text[:40]!r} is not a time; write it like 2026-11-30T10:00+08:00") from None
    if when.tzinfo is None:
        raise LedgerError(f"{text[:40]!r} needs a zone (like +08:00 or Z)")
    return int(when.timestamp() * 1000)


def _open(args: argparse.Namespace) -> Path:
    from ledger.campaigns import tables
    from ledger.cli import _ledger_dir, open_checked

    ledger_dir = _ledger_dir(args)
    open_checked(ledger_dir, args.db)
    tables.create_tables()
    return ledger_dir


def _sender(ledger_dir: Path) -> Any:
    from ledger.campaigns import config
    from ledger.campaigns.send import Sender

    return Sender.from_config(config.load(ledger_dir), ledger_dir)


def _create(args: argparse.Namespace) -> int:
    from ledger.campaigns import plan
    from ledger.campaigns.model import Kind

    _open(args)
    currency = args.currency
    spec = plan.CampaignSpec(
        name=args.name, kind=Kind(args.kind), channel=args.channel, text_zh=args.text_zh, text_en=args.text_en,
        subject_zh=args.subject_zh or "", subject_en=args.subject_en or "", occasion=args.occasion or "",
        holiday=args.date or "", segment=args.segment or "",
        coupon_amount_off=Money.parse(args.coupon_amount, currency).minor if args.coupon_amount else None,
        coupon_percent_bp=_basis_points(args.coupon_percent) if args.coupon_percent else None,
        coupon_min_spend=Money.parse(args.coupon_min_spend, currency).minor if args.coupon_min_spend else None,
        coupon_days=args.coupon_days, holdout_bp=_basis_points(args.holdout), seed=args.seed or "")
    campaign_id = plan.create_campaign(spec, actor=args.actor, now_ms=_clock(args)())
    emit({"campaign_id": campaign_id}, args.json, campaign_id)
    return 0


def _basis_points(text: str) -> int:
    from ledger.cli import _basis_points as parse

    return parse(text)


def _list(args: argparse.Namespace) -> int:
    from ledger.campaigns.tables import Campaign

    _open(args)
    rows = [{"campaign_id": c.campaign_id, "name": c.name, "kind": c.kind, "occasion": c.occasion,
             "segment": c.segment, "channel": c.channel, "status": c.status, "scheduled_ms": c.scheduled_ms}
            for c in Campaign.select().order_by(Campaign.created_ms)]
    text = "\n".join(f"{r['campaign_id']}  {r['kind']:9} {r['channel']:4} {r['status']:9} "
                     f"{r['occasion'] or r['segment']}  {r['name']}" for r in rows) or "no campaigns"
    emit({"campaigns": rows}, args.json, text)
    return 0


def _preview(args: argparse.Namespace) -> int:
    from ledger.campaigns import config, send

    ledger_dir = _open(args)
    shown = send.preview(args.campaign_id, args.member, config.load(ledger_dir), _clock(args)())
    text = (f"subject: {shown['subject']}\n" if "subject" in shown else "") + shown["text"]
    emit(shown, args.json, text)
    return 0


def _test_send(args: argparse.Namespace) -> int:
    from ledger.campaigns import send

    ledger_dir = _open(args)
    target = send.test_send(_sender(ledger_dir), args.campaign_id, args.member, _clock(args)(), actor=args.actor)
    emit({"sent_to": target}, args.json, f"test sent to {target}")
    return 0


def _schedule(args: argparse.Namespace) -> int:
    from ledger.campaigns import plan

    _open(args)
    now = _clock(args)()
    at = _instant(args.when) if args.when != "now" else now
    plan.schedule(args.campaign_id, at, actor=args.actor, now_ms=now)
    emit({"campaign_id": args.campaign_id, "scheduled_ms": at}, args.json, f"campaign {args.campaign_id} scheduled")
    return 0


def _deliver(sender: Any, clock: Callable[[], int], follow_s: float) -> dict[str, int]:
    """Send what is due; with ``follow_s``, wait out a gateway's Retry-After (up to that long) and go on."""
    from ledger.campaigns import send

    deadline = time.monotonic() + follow_s
    total = send.SendReport()
    while True:
        report = send.deliver_all(sender, clock())
        total.add(report)
        wait_ms = report.throttle_until_ms - clock()
        if not report.throttle_until_ms or time.monotonic() + wait_ms / 1000 > deadline:
            return total.as_dict()
        time.sleep(max(0.0, wait_ms / 1000) + 0.05)


def _run_daily(args: argparse.Namespace) -> int:
    from ledger.campaigns import config, plan
    from ledger.campaigns.segments import default_source

    ledger_dir = _open(args)
    clock = _clock(args)
    settings = config.load(ledger_dir)
    greetings = plan.run_daily(settings, now_ms=clock(), actor=args.actor)
    promotions = {k: v.as_dict() for k, v in plan.plan_due_promotions(default_source(), now_ms=clock()).items()}
    sent = _deliver(_sender(ledger_dir), clock, args.follow_throttle) if not args.plan_only else {}
    result = {"greetings": greetings, "promotions": promotions, "delivery": sent}
    emit(result, args.json, f"greetings planned {sum(greetings.values())}, promotions planned "
         f"{sum(v['planned'] for v in promotions.values())}, " + ", ".join(f"{k} {v}" for k, v in sent.items()))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from ledger.campaigns import plan
    from ledger.campaigns.segments import default_source

    _open(args)
    report = plan.plan_promotion(args.campaign_id, default_source(), now_ms=_clock(args)(), actor=args.actor)
    emit(report.as_dict(), args.json, f"planned {report.planned}, holdout {report.holdout}")
    return 0


def _deliver_cmd(args: argparse.Namespace) -> int:
    ledger_dir = _open(args)
    sent = _deliver(_sender(ledger_dir), _clock(args), args.follow_throttle)
    emit(sent, args.json, ", ".join(f"{k} {v}" for k, v in sent.items()))
    return 0


def _results(args: argparse.Namespace) -> int:
    from ledger.campaigns import config, results

    ledger_dir = _open(args)
    days = args.days or config.load(ledger_dir).results_days
    found = results.results(args.campaign_id, days=days).as_dict()
    lines = [f"campaign {found['campaign_id']}: sent {found['sent']}, delivered {found['delivered']}, failed "
             f"{found['failed']}, opted out {found['opted_out']}, unsubscribed {found['unsubscribed']}",
             f"coupons issued {found['coupons_issued']}, redeemed {found['coupons_redeemed']}",
             f"sales in {days} days: target {found['target']['members']} members {found['target']['sales']}, "
             f"holdout {found['holdout']['members']} members {found['holdout']['sales']}",
             "uplift per member: " + (", ".join(f"{Money(v, c)}" for c, v in found["uplift_per_member"].items())
                                      or "no sales")]
    emit(found, args.json, "\n".join(lines))
    return 0


def register(subparsers: Subparsers) -> None:
    from ledger.cli import _command, _group, at_least

    group = _group(subparsers, "campaigns", "greetings and promotions by SMS and mail: create, preview, test-send, "
                   "schedule, run-daily, deliver, results")

    def timed(p: argparse.ArgumentParser) -> None:
        p.add_argument("--at", default=None, help="act as if it were this time (ISO 8601 with a zone); the clock "
                       "runs on from there")

    p = _command(group, "create", "create a greeting or a promotion (prints its id)", _create)
    p.add_argument("name")
    p.add_argument("--kind", choices=("greeting", "promotion"), required=True)
    p.add_argument("--channel", choices=CHANNELS, required=True)
    p.add_argument("--occasion", help="greetings: birthday, anniversary, tier_upgrade, we_miss_you or holiday")
    p.add_argument("--date", help="holiday greetings: MM-DD (every year)")
    p.add_argument("--segment", help="promotions: the segment (all, at_risk, champions, ...)")
    p.add_argument("--text-zh", required=True, help="template, fields like {name} {points} {coupon}")
    p.add_argument("--text-en", required=True)
    p.add_argument("--subject-zh", help="mail subject (template)")
    p.add_argument("--subject-en")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--coupon-amount", help="an e-coupon for each recipient: amount off, e.g. 20.00")
    what.add_argument("--coupon-percent", help="an e-coupon for each recipient: percent off, e.g. 10")
    p.add_argument("--coupon-min-spend", default=None)
    p.add_argument("--coupon-days", type=at_least(1, high=3650), default=30)
    p.add_argument("--currency", default="CNY", help="currency of the coupon amounts (default CNY)")
    p.add_argument("--holdout", default="0", help="share of members held out as a control group, e.g. 10 (%%)")
    p.add_argument("--seed", default=None, help="seed of the holdout draw (default: random)")
    timed(p)

    _command(group, "list", "list campaigns", _list)

    p = _command(group, "preview", "show the message as a real member would get it", _preview)
    p.add_argument("campaign_id")
    p.add_argument("--member", required=True)
    timed(p)

    p = _command(group, "test-send", "send the message as a member would get it to the admin's test_phone or "
                 "test_email", _test_send)
    p.add_argument("campaign_id")
    p.add_argument("--member", required=True)
    timed(p)

    p = _command(group, "schedule", "schedule a promotion (planned and sent by the next run-daily after then)",
                 _schedule)
    p.add_argument("campaign_id")
    p.add_argument("when", help="ISO 8601 time with a zone, or now")
    timed(p)

    p = _command(group, "plan", "plan a promotion's messages now (holdout drawn)", _plan)
    p.add_argument("campaign_id")
    timed(p)

    for name, handler, text in (
            ("run-daily", _run_daily, "plan today's greetings and due promotions, then send what is due"),
            ("deliver", _deliver_cmd, "send due campaign messages once")):
        p = _command(group, name, text, handler)
        p.add_argument("--follow-throttle", type=float, default=0.0, metavar="SECONDS",
                       help="wait out a gateway's Retry-After for up to this long (default 0: the next run)")
        if name == "run-daily":
            p.add_argument("--plan-only", action="store_true", help="plan, do not send")
        timed(p)

    p = _command(group, "results", "sent, delivered, failed, opted out, coupons redeemed, uplift vs holdout", _results)
    p.add_argument("campaign_id")
    p.add_argument("--days", type=at_least(1, high=366), default=None, help="sales window (default results_days)")


# -- cardpos ledger member facts --------------------------------------------------------------------------------
def _yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value in ("yes", "y", "true", "1", "granted"):
        return True
    if value in ("no", "n", "false", "0", "withdrawn"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not yes or no")


def _facts(args: argparse.Namespace) -> int:
    from ledger import member_facts
    from ledger.home import current

    _open(args)
    now = current().now_ms()
    member_facts.set_facts(args.member_id, at_ms=now, actor=args.actor, birthday=args.birthday,
                           language=args.language, time_zone=args.time_zone, join_date=args.join_date)
    for channel in member_facts.CHANNELS:
        granted = getattr(args, f"{channel}_consent")
        if granted is not None:
            member_facts.set_consent(args.member_id, channel, granted, at_ms=now, source=args.source,
                                     actor=args.actor)
    facts = member_facts.facts_of(args.member_id)
    lines = [f"member {facts.member_id}", f"birthday {facts.birthday or '-'}", f"language {facts.language or '-'}",
             f"time zone {facts.time_zone or '-'}",
             f"consent sms {'yes' if facts.consent['sms'] else 'no'}, mail {'yes' if facts.consent['mail'] else 'no'}"]
    lines += [f"  {datetime.datetime.fromtimestamp(s.at_ms / 1000, datetime.UTC):%Y-%m-%d %H:%M}Z {s.channel} "
              f"{'granted' if s.granted else 'withdrawn'} via {s.source} by {s.actor}" for s in facts.history]
    emit(facts.as_dict(), args.json, "\n".join(lines))
    return 0


def register_member_facts(members: Subparsers) -> None:
    """``cardpos ledger member facts`` (called by ``ledger.cli`` while it builds the member group)."""
    from ledger.cli import _command

    p = _command(members, "facts", "show or change a member's birthday, language, time zone and consent "
                 "(audited)", _facts)
    p.add_argument("member_id")
    p.add_argument("--birthday", help="YYYY-MM-DD ('' clears)")
    p.add_argument("--language", help="zh or en ('' clears)")
    p.add_argument("--time-zone", help="IANA zone like Asia/Shanghai ('' clears: the programme's)")
    p.add_argument("--join-date", help="YYYY-MM-DD (default: when the member was added)")
    p.add_argument("--sms-consent", type=_yes_no, default=None, help="yes or no: a consent statement for SMS")
    p.add_argument("--mail-consent", type=_yes_no, default=None, help="yes or no: a consent statement for mail")
    p.add_argument("--source", default="admin", help="where the member gave or withdrew consent (default admin)")
