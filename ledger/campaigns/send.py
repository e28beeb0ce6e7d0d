"""Sending due campaign messages: consent at send time, quiet hours in the member's zone, the frequency cap, the
e-coupon, then SMS through the gateway or mail over SMTP; every outcome written back to the message row.

Rules, in the order they are checked for each message:

- no consent for the channel now (the latest statement) → ``opted_out``, never sent;
- no phone / email on file → ``no_contact``;
- inside the quiet hours of the channel in the member's zone → postponed to their end (no attempt counted);
- a promotion past the member's frequency cap → ``capped``;
- otherwise the coupon (if the campaign has one) is issued under an id derived from the message key (issued once
  however often the message is retried; a round's coupons in one transaction), and the message goes out.

Throttling: a gateway answering 429 / ``Retry-After`` postpones this message and every other SMS of the round to
the time it asked for, without counting an attempt: nothing is lost and nothing is sent twice. A failure that may
pass is retried with the outbox's backoff (``RetryPolicy``); a permanent one, or the last attempt, is ``failed``.

Crash safety: rows are claimed with a lease before sending and each outcome is committed on its own. An SMS
resent after a crash between the gateway's answer and our commit carries the same gateway reference, which the
gateway de-duplicates; a mail carries a Message-ID derived from the key, so a receiver can tell it is the same.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

from cardkit.core.money import Money
from ledger import member_facts, pii, store
from ledger.campaigns import model, unsubscribe
from ledger.campaigns.config import CampaignConfig
from ledger.campaigns.model import Kind, MessageStatus
from ledger.campaigns.tables import Campaign, CampaignMessage
from ledger.delivery import EmailConfig, send_mail
from ledger.errors import LedgerError
from ledger.sms.provider import SendOutcome, SmsProvider

log = logging.getLogger("cardpos.ledger.campaigns")

LEASE_MS = 60_000
"""A claimed message is not due for anyone else for this long."""
DAY_S = 86_400

Mailer = Callable[[EmailMessage], None]
"""Sends one mail; raises LedgerError when it could not."""


def smtp_mailer(cfg: EmailConfig) -> Mailer:
    def send(message: EmailMessage) -> None:
        send_mail(cfg, message)

    return send


@dataclass(slots=True)
class SendReport:
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    opted_out: int = 0
    capped: int = 0
    no_contact: int = 0
    postponed: int = 0  # quiet hours
    throttled: int = 0  # postponed by the gateway's Retry-After
    throttle_until_ms: int = 0

    def add(self, other: SendReport) -> None:
        for name in ("sent", "failed", "retrying", "opted_out", "capped", "no_contact", "postponed", "throttled"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.throttle_until_ms = max(self.throttle_until_ms, other.throttle_until_ms)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in (
            "sent", "failed", "retrying", "opted_out", "capped", "no_contact", "postponed", "throttled")}


@dataclass
class Sender:
    """What sending needs: settings, channels (None: not configured) and the unsubscribe key."""

    config: CampaignConfig
    ledger_dir: Path
    sms: SmsProvider | None = None
    mailer: Mailer | None = None
    unsubscribe_key: bytes = field(default=b"")

    @classmethod
    def from_config(cls, config: CampaignConfig, ledger_dir: Path) -> Sender:
        from ledger.sms.provider import HttpSmsProvider

        return cls(config, ledger_dir, sms=HttpSmsProvider(config.sms) if config.sms else None,
                   mailer=smtp_mailer(config.mail) if config.mail else None,
                   unsubscribe_key=unsubscribe.load_key(ledger_dir))


# -- reading what a round needs ---------------------------------------------------------------------------------
def _due(now_ms: int, limit: int) -> list[CampaignMessage]:
    return list(CampaignMessage.select().where(
        (CampaignMessage.status == MessageStatus.PENDING.value) & (CampaignMessage.next_attempt_ms <= now_ms))
        .order_by(CampaignMessage.next_attempt_ms, CampaignMessage.id).limit(limit))


def _claim(rows: Sequence[CampaignMessage], now_ms: int) -> list[CampaignMessage]:
    claimed = []
    with store.atomic_write():
        for row in rows:
            # the gateway reference is written with the claim, before anything is sent: a receipt can only
            # come for a row that has it, and a resend after a crash carries the same one (it is the key's hash)
            reference = model.gateway_reference(str(row.key))
            taken = (CampaignMessage.update(next_attempt_ms=now_ms + LEASE_MS, reference=reference)
                     .where((CampaignMessage.id == row.id) & (CampaignMessage.status == MessageStatus.PENDING.value)
                            & (CampaignMessage.next_attempt_ms == row.next_attempt_ms)).execute())
            if taken:
                row.next_attempt_ms, row.reference = now_ms + LEASE_MS, reference
                claimed.append(row)
    return claimed


def _recent_sends(member_ids: list[str], since_ms: int) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for start in range(0, len(member_ids), 400):
        chunk = member_ids[start:start + 400]
        query: Any = (CampaignMessage.select(CampaignMessage.member_id, CampaignMessage.sent_ms)
                      .where(CampaignMessage.member_id.in_(chunk) & (CampaignMessage.sent_ms > since_ms)))
        for member_id, sent_ms in query.tuples():
            out.setdefault(str(member_id), []).append(int(sent_ms))
    return out


@dataclass(frozen=True, slots=True)
class Recipient:
    member_id: str
    name: str
    phone: str
    email: str
    language: str
    zone: str
    currency: str
    tier: str
    points: int
    balance: int
    join_ms: int


def recipients(member_ids: list[str], config: CampaignConfig) -> dict[str, Recipient]:
    """The members' contact details (decrypted here, in memory only) and the fields templates use."""
    out: dict[str, Recipient] = {}
    facts = {str(f.member_id): f for f in member_facts.facts_rows(member_ids)}
    for start in range(0, len(member_ids), 400):
        chunk = member_ids[start:start + 400]
        projections = {str(p.member_id): p for p in
                       store.MemberProjection.select().where(store.MemberProjection.member_id.in_(chunk))}
        for member in store.Member.select().where(store.Member.member_id.in_(chunk)):
            member_id = str(member.member_id)
            details = pii.details_of(member)
            fact = facts.get(member_id)
            projection = projections.get(member_id)
            out[member_id] = Recipient(
                member_id=member_id, name=details.name, phone=details.phone, email=details.email,
                language=(fact.language if fact and fact.language else config.language),
                zone=(fact.time_zone if fact and fact.time_zone else config.time_zone), currency=str(member.currency),
                tier=str(projection.tier if projection else member.opening_tier),
                points=int(projection.points if projection else member.opening_points),
                balance=int(projection.balance if projection else member.opening_balance),
                join_ms=int(fact.join_ms if fact and fact.join_ms else member.created_ms))
    return out


# -- rendering --------------------------------------------------------------------------------------------------
def template_fields(recipient: Recipient, coupon_id: str, now_ms: int) -> dict[str, str]:
    years = max(0, (now_ms - recipient.join_ms) // (365 * DAY_S * 1000))
    return {"name": recipient.name, "points": str(recipient.points), "balance": _fmt_minor(recipient.balance,
                                                                                           recipient.currency),
            "tier": recipient.tier, "coupon": coupon_id, "member_id": recipient.member_id, "years": str(years)}


def _fmt_minor(minor: int, currency: str) -> str:
    return str(Money(minor, currency))


def render_sms(campaign: Campaign, recipient: Recipient, coupon_id: str, now_ms: int) -> str:
    template = campaign.text_zh if recipient.language == "zh" else campaign.text_en
    return model.sms_text(model.render(str(template), template_fields(recipient, coupon_id, now_ms)),
                          recipient.language)


def render_mail(campaign: Campaign, recipient: Recipient, coupon_id: str, now_ms: int, *, sender: str,
                unsubscribe_url: str, reference: str) -> EmailMessage:
    fields = template_fields(recipient, coupon_id, now_ms)
    zh = recipient.language == "zh"
    message = EmailMessage()
    message["Subject"] = model.render(str(campaign.subject_zh if zh else campaign.subject_en), fields)
    message["From"] = sender
    message["To"] = recipient.email
    message["Date"] = formatdate(now_ms / 1000, usegmt=True)
    message["Message-ID"] = f"<{reference}@campaigns.cardpos>"
    # RFC 8058 one-click unsubscribe: the HTTPS URI and the POST marker, in every mail
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    footer = ("不想再收到此类邮件？退订：" if zh else "Don't want these mails? Unsubscribe: ") + unsubscribe_url
    body = model.render(str(campaign.text_zh if zh else campaign.text_en), fields)
    message.set_content(f"{body}\n\n-- \n{footer}\n")
    return message


def unsubscribe_url(sender: Sender, member_id: str, channel: str, campaign_id: str) -> str:
    token = unsubscribe.make_token(sender.unsubscribe_key, unsubscribe.Unsubscribe(member_id, channel, campaign_id))
    return f"{sender.config.unsubscribe_url}/{token}"


# -- coupons ----------------------------------------------------------------------------------------------------
def coupon_id_for(key: str) -> str:
    return "cc" + hashlib.sha256(b"coupon\x00" + key.encode("utf-8")).hexdigest()[:14]


def has_coupon(campaign: Campaign) -> bool:
    return campaign.coupon_amount_off is not None or campaign.coupon_percent_bp is not None


def issue_coupons(wanted: Sequence[tuple[Campaign, CampaignMessage, str]], now_ms: int) -> None:
    """The coupons of a round's messages about to go out, (campaign, message, the member's currency) each, issued
    in one transaction: each coupon's id is derived from its message's key, so a coupon is issued once however
    often its message is retried; one version bump pushes them all to terminals with the members' next pull; one
    audit entry per campaign lists them. Sets ``coupon_id`` on each message (row and object)."""
    wanted = [(c, r, currency) for c, r, currency in wanted if has_coupon(c)]
    if not wanted:
        return
    by_id = {coupon_id_for(str(r.key)): (c, r, currency) for c, r, currency in wanted}
    with store.atomic_write():
        existing: set[str] = set()
        ids = sorted(by_id)
        for start in range(0, len(ids), 400):
            query: Any = store.Coupon.select(store.Coupon.coupon_id).where(
                store.Coupon.coupon_id.in_(ids[start:start + 400]))
            existing.update(str(found) for (found,) in query.tuples())
        now_s = now_ms // 1000
        fresh = [{"coupon_id": coupon_id, "member_id": r.member_id, "currency": currency,
                  "amount_off": c.coupon_amount_off, "percent_off_bp": c.coupon_percent_bp,
                  "min_spend": c.coupon_min_spend, "valid_from": now_s,
                  "valid_until": now_s + int(c.coupon_days) * DAY_S, "stackable": False, "issued_ms": now_ms}
                 for coupon_id, (c, r, currency) in sorted(by_id.items()) if coupon_id not in existing]
        for start in range(0, len(fresh), 400):
            store.Coupon.insert_many(fresh[start:start + 400]).execute()
        if fresh:
            version = store.bump("members")
            members = sorted({str(coupon["member_id"]) for coupon in fresh})
            for start in range(0, len(members), 400):
                store.Member.update(version=version).where(
                    store.Member.member_id.in_(members[start:start + 400])).execute()
            per_campaign: dict[str, list[str]] = {}
            for coupon in fresh:
                per_campaign.setdefault(str(by_id[str(coupon["coupon_id"])][0].campaign_id), []).append(
                    str(coupon["coupon_id"]))
            for campaign_id, coupon_ids in sorted(per_campaign.items()):
                store.AuditLog.create(at_ms=now_ms, actor="campaign", action="campaign_coupons_issue",
                                      subject=campaign_id, details={"count": len(coupon_ids), "coupons": coupon_ids})
        for coupon_id, (_, message, _) in by_id.items():
            CampaignMessage.update(coupon_id=coupon_id).where(CampaignMessage.id == message.id).execute()
            message.coupon_id = coupon_id


# -- outcomes ---------------------------------------------------------------------------------------------------
def _finish(row: CampaignMessage, status: MessageStatus, **values: Any) -> None:
    with store.atomic_write():
        CampaignMessage.update(status=status.value, **values).where(CampaignMessage.id == row.id).execute()


def _postpone(row: CampaignMessage, until_ms: int, *, attempt: bool = False, error: str = "") -> None:
    values: dict[str, Any] = {"next_attempt_ms": until_ms}
    if attempt:
        values["attempts"] = CampaignMessage.attempts + 1
    if error:
        values["last_error"] = error[:500]
    with store.atomic_write():
        CampaignMessage.update(**values).where(CampaignMessage.id == row.id).execute()


def _failed_attempt(row: CampaignMessage, sender: Sender, now_ms: int, error: str, permanent: bool,
                    report: SendReport) -> None:
    attempts = int(row.attempts) + 1
    if permanent or attempts >= sender.config.retry.max_attempts:
        _finish(row, MessageStatus.FAILED, attempts=attempts, last_error=error[:500])
        report.failed += 1
        log.warning("campaign message failed", extra={"fields": {"message": row.id, "error": error[:200]}})
    else:
        _postpone(row, now_ms + sender.config.retry.delay_ms(attempts), attempt=True, error=error)
        report.retrying += 1


# -- one round --------------------------------------------------------------------------------------------------
def deliver_due(sender: Sender, now_ms: int) -> SendReport:
    """Send the due messages once (at most ``config.batch``); returns what happened.

    First every claimed message is decided (the rules above, in order); the outcomes that send nothing are
    written together in one transaction, and the coupons of the messages about to go out are issued together in
    another. Then each message goes out, its outcome committed on its own (it follows something the gateway or
    the relay did, which a crash must not forget)."""
    report = SendReport()
    rows = _claim(_due(now_ms, sender.config.batch), now_ms)
    if not rows:
        return report
    member_ids = sorted({str(r.member_id) for r in rows})
    campaigns = {str(c.campaign_id): c for c in
                 Campaign.select().where(Campaign.campaign_id.in_(sorted({str(r.campaign_id) for r in rows})))}
    consent = {channel: member_facts.consenting(member_ids, channel) for channel in member_facts.CHANNELS}
    people = recipients(member_ids, sender.config)
    cap = sender.config.frequency_cap
    recent = _recent_sends(member_ids, now_ms - cap.days * model.DAY_MS)
    settled: list[tuple[CampaignMessage, MessageStatus, str]] = []  # final without sending
    postponed: list[tuple[CampaignMessage, int]] = []  # quiet hours
    going: list[tuple[Campaign, CampaignMessage, Recipient]] = []
    for row in rows:
        campaign = campaigns.get(str(row.campaign_id))
        person = people.get(str(row.member_id))
        channel = str(row.channel)
        if campaign is None or person is None:
            settled.append((row, MessageStatus.FAILED, "the campaign or the member no longer exists"))
            report.failed += 1
        elif str(row.member_id) not in consent[channel]:
            settled.append((row, MessageStatus.OPTED_OUT, ""))
            report.opted_out += 1
        elif not (model.sms_number(person.phone) if channel == "sms" else person.email):
            settled.append((row, MessageStatus.NO_CONTACT, ""))
            report.no_contact += 1
        elif (allowed := sender.config.quiet_hours[channel].next_allowed_ms(now_ms, person.zone)) > now_ms:
            postponed.append((row, allowed))
            report.postponed += 1
        elif campaign.kind == Kind.PROMOTION.value and not cap.allows(recent.get(person.member_id, []), now_ms):
            settled.append((row, MessageStatus.CAPPED, ""))
            report.capped += 1
        else:
            going.append((campaign, row, person))
            recent.setdefault(person.member_id, []).append(now_ms)
    if settled or postponed:
        with store.atomic_write():
            for row, status, error in settled:
                CampaignMessage.update(status=status.value, last_error=error).where(
                    CampaignMessage.id == row.id).execute()
            for row, until_ms in postponed:
                CampaignMessage.update(next_attempt_ms=until_ms).where(CampaignMessage.id == row.id).execute()
    issue_coupons([(campaign, row, person.currency) for campaign, row, person in going], now_ms)
    sms_blocked_until = 0
    for campaign, row, person in going:
        if str(row.channel) == "sms":
            if sms_blocked_until:
                _postpone(row, sms_blocked_until)
                report.throttled += 1
                continue
            sms_blocked_until = _send_sms(sender, campaign, row, person, now_ms, report)
        else:
            _send_mail(sender, campaign, row, person, now_ms, report)
    report.throttle_until_ms = sms_blocked_until
    return report


def _send_sms(sender: Sender, campaign: Campaign, row: CampaignMessage, person: Recipient, now_ms: int,
              report: SendReport) -> int:
    """Send one SMS; returns the time until which the gateway asked us to wait (0: no throttling)."""
    if sender.sms is None:
        _failed_attempt(row, sender, now_ms, "no SMS gateway is configured ([sms] in campaigns.toml)", False, report)
        return 0
    text = render_sms(campaign, person, str(row.coupon_id or ""), now_ms)
    result = sender.sms.send(model.sms_number(person.phone), text, str(row.reference))
    if result.outcome is SendOutcome.ACCEPTED:
        _finish(row, MessageStatus.SENT, sent_ms=now_ms, provider_id=result.message_id,
                attempts=int(row.attempts) + 1, last_error="")
        report.sent += 1
        return 0
    if result.outcome is SendOutcome.RETRY_AFTER:
        until = now_ms + max(1, result.retry_after_s) * 1000
        _postpone(row, until, error=result.reason)
        report.throttled += 1
        return until
    _failed_attempt(row, sender, now_ms, result.reason, result.permanent, report)
    return 0


def _send_mail(sender: Sender, campaign: Campaign, row: CampaignMessage, person: Recipient, now_ms: int,
               report: SendReport) -> None:
    if sender.mailer is None or sender.config.mail is None:
        _failed_attempt(row, sender, now_ms, "no mail relay is configured ([mail] in campaigns.toml)", False, report)
        return
    coupon = str(row.coupon_id or "")
    url = unsubscribe_url(sender, person.member_id, "mail", str(campaign.campaign_id))
    message = render_mail(campaign, person, coupon, now_ms, sender=sender.config.mail.sender, unsubscribe_url=url,
                          reference=str(row.reference))
    try:
        sender.mailer(message)
    except LedgerError as exc:
        _failed_attempt(row, sender, now_ms, exc.message, False, report)
        return
    _finish(row, MessageStatus.SENT, sent_ms=now_ms, attempts=int(row.attempts) + 1, last_error="")
    report.sent += 1


def deliver_all(sender: Sender, now_ms: int, *, max_rounds: int = 10_000) -> SendReport:
    """Rounds of ``deliver_due`` until nothing due is left at ``now_ms`` (messages postponed past it stay)."""
    total = SendReport()
    for _ in range(max_rounds):
        report = deliver_due(sender, now_ms)
        total.add(report)
        if not (report.sent or report.failed or report.retrying or report.opted_out or report.capped
                or report.no_contact or report.postponed or report.throttled):
            break
    return total


# -- previews and test sends ------------------------------------------------------------------------------------
def preview(campaign_id: str, member_id: str, config: CampaignConfig, now_ms: int) -> dict[str, str]:
    """The message as this member would receive it (the coupon shown as a placeholder id)."""
    campaign = Campaign.get_or_none(Campaign.campaign_id == campaign_id)
    if campaign is None:
        raise LedgerError(f"there is no campaign {campaign_id!r}")
    person = recipients([member_id], config).get(member_id)
    if person is None:
        raise LedgerError(f"there is no member {member_id!r}")
    coupon = "cc-preview" if campaign.coupon_amount_off is not None or campaign.coupon_percent_bp is not None else ""
    fields = template_fields(person, coupon, now_ms)
    zh = person.language == "zh"
    if campaign.channel == "sms":
        return {"channel": "sms", "language": person.language, "text": render_sms(campaign, person, coupon, now_ms)}
    return {"channel": "mail", "language": person.language,
            "subject": model.render(str(campaign.subject_zh if zh else campaign.subject_en), fields),
            "text": model.render(str(campaign.text_zh if zh else campaign.text_en), fields)}


def test_send(sender: Sender, campaign_id: str, member_id: str, now_ms: int, *, actor: str) -> str:
    """Send the campaign as ``member_id`` would get it, to the admin's test phone or mail (campaigns.toml), not
    to the member. Audited. Returns where it went."""
    campaign = Campaign.get_or_none(Campaign.campaign_id == campaign_id)
    if campaign is None:
        raise LedgerError(f"there is no campaign {campaign_id!r}")
    person = recipients([member_id], sender.config).get(member_id)
    if person is None:
        raise LedgerError(f"there is no member {member_id!r}")
    reference = f"test-{campaign_id}-{now_ms}"
    if campaign.channel == "sms":
        if sender.sms is None or not sender.config.test_phone:
            raise LedgerError("a test SMS needs [sms] and test_phone in campaigns.toml")
        text = "[TEST] " + render_sms(campaign, person, "cc-test", now_ms)
        result = sender.sms.send(model.sms_number(sender.config.test_phone), text, reference)
        if not result.ok:
            raise LedgerError(f"the test SMS was not sent: {result.reason}")
        target = sender.config.test_phone
    else:
        if sender.mailer is None or sender.config.mail is None or not sender.config.test_email:
            raise LedgerError("a test mail needs [mail] and test_email in campaigns.toml")
        message = render_mail(campaign, person, "cc-test", now_ms, sender=sender.config.mail.sender,
                              unsubscribe_url=f"{sender.config.unsubscribe_url}/test", reference=reference)
        subject = str(message["Subject"])
        del message["Subject"], message["To"]
        message["Subject"], message["To"] = "[TEST] " + subject, sender.config.test_email
        sender.mailer(message)
        target = sender.config.test_email
    with store.atomic_write():
        store.AuditLog.create(at_ms=now_ms, actor=actor, action="campaign_test_send", subject=campaign_id,
                              details={"as_member": member_id, "to": target})
    return target
