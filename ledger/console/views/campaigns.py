"""Campaigns (marketing): the list and a create form; one campaign with its texts, a preview with a real member,
a test send to the admin's own phone or mail, scheduling, and its results against the holdout."""

from __future__ import annotations

import datetime
import zoneinfo

from fastapi.responses import Response

from cardkit.core.money import Money
from cardkit.errors import CardposError
from ledger import admin
from ledger.campaigns import config, plan, results, send, tables
from ledger.campaigns.model import Kind, Occasion
from ledger.campaigns.tables import Campaign
from ledger.console.web import NotFound, Page

KINDS = [k.value for k in Kind]
OCCASIONS = [o.value for o in Occasion]
CHANNELS = ["sms", "mail"]


def _campaign(page: Page) -> Campaign:
    tables.create_tables()
    found = Campaign.get_or_none(Campaign.campaign_id == page.param("campaign_id")[:40])
    if found is None:
        raise NotFound(f"there is no campaign {page.param('campaign_id')[:40]!r}")
    return found


def _list(page: Page, status: int = 200, error: str | None = None) -> Response:
    tables.create_tables()
    rows = list(Campaign.select().order_by(Campaign.created_ms.desc()).limit(200))
    return page.render("campaigns.html", status, campaigns=rows, kinds=KINDS, occasions=OCCASIONS,
                       channels=CHANNELS, error=error, form=page.form)


def campaigns(page: Page) -> Response:
    return _list(page)


def _percent_bp(text: str) -> int:
    from ledger.cli import _basis_points

    return _basis_points(text) if text.strip() else 0


def campaign_create(page: Page) -> Response:
    tables.create_tables()
    try:
        kind = page.field("kind")
        if kind not in KINDS:
            raise admin.LedgerError("choose greeting or promotion")
        coupon = page.field("coupon_amount", limit=20).strip()
        spec = plan.CampaignSpec(
            name=page.field("name", limit=200).strip(), kind=Kind(kind), channel=page.field("channel"),
            text_zh=page.field("text_zh"), text_en=page.field("text_en"), subject_zh=page.field("subject_zh"),
            subject_en=page.field("subject_en"), occasion=page.field("occasion") if kind == "greeting" else "",
            holiday=page.field("date", limit=10).strip(), segment=page.field("segment", limit=64).strip(),
            coupon_amount_off=Money.parse(coupon, "CNY").minor if coupon else None,
            holdout_bp=_percent_bp(page.field("holdout", limit=6)))
        campaign_id = plan.create_campaign(spec, actor=page.actor, now_ms=page.now_ms)
    except CardposError as exc:
        return _list(page, 400, error=exc.message)
    return page.redirect(f"/campaigns/{campaign_id}", message="campaign_created")


def _detail(page: Page, campaign: Campaign, status: int = 200, **extra: object) -> Response:
    settings = config.load(page.console.ledger_dir)
    shown = None
    member = page.query("member").strip()[:40]
    error = extra.pop("error", None)
    if member:
        try:
            shown = send.preview(str(campaign.campaign_id), member, settings, page.now_ms)
            admin.record_member_read([member], actor=page.actor, via="console", origin=page.origin,
                                     action="campaign_preview")
        except CardposError as exc:
            error = exc.message
    found = results.results(str(campaign.campaign_id), days=settings.results_days).as_dict()
    return page.render("campaign.html", status, campaign=campaign, preview=shown, member=member, error=error,
                       results=found, money=lambda minor, currency: str(Money(minor, currency)),
                       test_target=settings.test_phone if campaign.channel == "sms" else settings.test_email,
                       **extra)


def campaign(page: Page) -> Response:
    return _detail(page, _campaign(page))


def campaign_test_send(page: Page) -> Response:
    found = _campaign(page)
    member = page.field("member", limit=40).strip()
    try:
        sender = send.Sender.from_config(config.load(page.console.ledger_dir), page.console.ledger_dir)
        target = send.test_send(sender, str(found.campaign_id), member, page.now_ms, actor=page.actor)
    except CardposError as exc:
        return _detail(page, found, 400, error=exc.message)
    return _detail(page, found, sent_to=target)


def campaign_schedule(page: Page) -> Response:
    found = _campaign(page)
    text = page.field("when", limit=40).strip()
    try:
        at = page.now_ms if text in ("", "now") else _local_ms(text, page.console.settings.time_zone)
        plan.schedule(str(found.campaign_id), at, actor=page.actor, now_ms=page.now_ms)
    except CardposError as exc:
        return _detail(page, found, 400, error=exc.message)
    return page.redirect(f"/campaigns/{found.campaign_id}", message="campaign_scheduled")


def _local_ms(text: str, zone: zoneinfo.ZoneInfo) -> int:
    """A ``datetime-local`` value (2026-12-01T10:00) in the console's zone."""
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise admin.LedgerError(f"{text!r} is not a date and time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    return int(when.timestamp() * 1000)


HANDLERS = {"campaigns": campaigns, "campaign_create": campaign_create, "campaign": campaign,
            "campaign_test_send": campaign_test_send, "campaign_schedule": campaign_schedule}
