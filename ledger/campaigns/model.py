"""Campaign rules as pure functions: which occasion a member has today, quiet hours in the member's time zone,
templates with member fields, the refusal hint, idempotency keys, the holdout draw and the frequency cap.

No I/O here: every rule is tested with plain values (tests/unit/test_campaigns_model.py).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import re
import string
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ledger.errors import LedgerError

DAY_MS = 86_400_000


class Occasion(StrEnum):
    BIRTHDAY = "birthday"
    ANNIVERSARY = "anniversary"
    TIER_UPGRADE = "tier_upgrade"
    WE_MISS_YOU = "we_miss_you"
    HOLIDAY = "holiday"


class Kind(StrEnum):
    GREETING = "greeting"
    PROMOTION = "promotion"


class MessageStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"  # taken by the gateway / the mail relay
    DELIVERED = "delivered"  # the gateway's receipt said so (SMS)
    FAILED = "failed"  # permanently, or after the last attempt
    OPTED_OUT = "opted_out"  # no consent at send time
    CAPPED = "capped"  # the member had their share of messages (frequency cap)
    NO_CONTACT = "no_contact"  # no phone / email on file
    HOLDOUT = "holdout"  # in the control group: never sent


REFUSAL_HINT = {"zh": "拒收请回复R", "en": "Reply STOP to opt out"}
"""Appended to every SMS (MIIT Order 31: every commercial SMS carries a way to refuse; TCPA: STOP)."""

FIELDS = ("name", "points", "balance", "tier", "coupon", "member_id", "years")
"""Fields a template may use, as ``{name}``."""


# -- occasions --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MemberMoment:
    """What a greeting needs to know about one member on one day."""

    member_id: str
    birthday: str | None  # YYYY-MM-DD
    join_day: datetime.date | None
    tier: str
    greeted_tier: str  # the tier the member started at (or was last congratulated for)
    last_visit_day: datetime.date | None


TIER_ORDER = ("standard", "preferred", "gold", "platinum")


def _same_day(month: int, day: int, today: datetime.date) -> bool:
    if (month, day) == (today.month, today.day):
        return True
    # born on 29 February: greeted on 28 February in a common year
    leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
    return (month, day) == (2, 29) and not leap and (today.month, today.day) == (2, 28)


def occasion_key(occasion: Occasion, member: MemberMoment, today: datetime.date, *, lapsed_days: int = 90,
                 holiday: str = "") -> str | None:
    """The occasion's identity when the member has it today, else None. The key names the occasion once
    (birthday 2026, the gold tier, the lapse that began on a given day), so one greeting per occasion."""
    if occasion is Occasion.BIRTHDAY:
        if member.birthday:
            born = datetime.date.fromisoformat(member.birthday)
            if _same_day(born.month, born.day, today):
                return f"birthday-{today.year}"
        return None
    if occasion is Occasion.ANNIVERSARY:
        join = member.join_day
        if join is not None and today.year > join.year and _same_day(join.month, join.day, today):
            return f"anniversary-{today.year}"
        return None
    if occasion is Occasion.TIER_UPGRADE:
        if _rank(member.tier) > _rank(member.greeted_tier):
            return f"tier-{member.tier}"
        return None
    if occasion is Occasion.WE_MISS_YOU:
        last = member.last_visit_day
        if last is not None and (today - last).days >= lapsed_days:
            return f"lapsed-since-{last.isoformat()}"
        return None
    if occasion is Occasion.HOLIDAY:
        month, day = parse_month_day(holiday)
        return f"holiday-{today.year}-{month:02d}-{day:02d}" if _same_day(month, day, today) else None
    raise LedgerError(f"unknown occasion {occasion!r}")


def _rank(tier: str) -> int:
    return TIER_ORDER.index(tier) if tier in TIER_ORDER else -1


def parse_month_day(text: str) -> tuple[int, int]:
    """``MM-DD`` (a holiday on a configured date, every year) or ``YYYY-MM-DD`` (one year only, month-day kept)."""
    match = re.fullmatch(r"(?:\d{4}-)?(\d{2})-(\d{2})", text.strip())
    if not match:
        raise LedgerError(f"a holiday date is written MM-DD or YYYY-MM-DD, not {text[:20]!r}")
    month, day = int(match.group(1)), int(match.group(2))
    try:
        datetime.date(2000, month, day)  # a leap year: 02-29 is a date
    except ValueError:
        raise LedgerError(f"{text[:20]!r} is not a day of the year") from None
    return month, day


def message_key(campaign_id: str, member_id: str, occasion: str, channel: str) -> str:
    """The idempotency key of one message: one row per campaign + member + occasion + channel, whatever restarts
    or retries happen (a unique column)."""
    return f"{campaign_id}:{member_id}:{occasion}:{channel}"


def gateway_reference(key: str) -> str:
    """The reference sent to the SMS gateway (64 printable ASCII at most): the same key always gives the same
    reference, so a gateway that de-duplicates takes a resend after a crash as the same message."""
    return "cp-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]  # 96 bits: no collision in practice


def sms_number(phone: str) -> str:
    """A phone number as gateways take it: its digits, with the leading ``+`` kept ("+86 138-0000-0021" →
    "+8613800000021"); full-width digits count."""
    import unicodedata

    text = unicodedata.normalize("NFKC", phone).strip()
    digits = "".join(ch for ch in text if "0" <= ch <= "9")
    return ("+" if text.startswith("+") else "") + digits if digits else ""


# -- holdout ----------------------------------------------------------------------------------------------------
def in_holdout(member_id: str, seed: str, share_bp: int) -> bool:
    """A stable random draw: the member is in the control group when the hash of seed + member falls in the
    first ``share_bp`` of 10,000 buckets. Deterministic for a given seed (tests inject it)."""
    return holdout_draw(seed, share_bp)(member_id)


def holdout_draw(seed: str, share_bp: int) -> Callable[[str], bool]:
    """``in_holdout`` for one campaign, fast: the seed's part of the hash is computed once (a million draws)."""
    if share_bp <= 0:
        return lambda member_id: False
    return lambda member_id: holdout_bucket(seed, member_id) < share_bp


HOLDOUT_BUCKETS = 10_000


def holdout_bucket(seed: str, member_id: str) -> int:
    """The member's bucket (0 to 9,999) in the campaign's draw: the first 8 bytes of SHA-256(seed, NUL, member id),
    big-endian, modulo 10,000. The holdout is the buckets below its share in basis points. Planning computes the
    same in SQL (``ledger.campaigns.plan``); tests hold the two to agreeing."""
    h = _seed_hash(seed).copy()
    h.update(member_id.encode())
    return int.from_bytes(h.digest()[:8], "big") % HOLDOUT_BUCKETS


@functools.lru_cache(maxsize=64)
def _seed_hash(seed: str) -> Any:
    return hashlib.sha256(f"{seed}\x00".encode())


def reference_maker(campaign_id: str, occasion: str, channel: str) -> Callable[[str], str]:
    """``gateway_reference(message_key(campaign_id, member, occasion, channel))`` per member, fast."""
    base = hashlib.sha256(f"{campaign_id}:".encode())
    tail = f":{occasion}:{channel}".encode()

    def reference(member_id: str) -> str:
        h = base.copy()
        h.update(member_id.encode())
        h.update(tail)
        return "cp-" + h.hexdigest()[:24]

    return reference


# -- quiet hours ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local times when nothing is sent: from ``start`` up to ``end`` (minutes after midnight; may wrap midnight).
    Equal start and end: no quiet hours."""

    start_min: int = 21 * 60
    end_min: int = 8 * 60

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*", text)
        if not match:
            raise LedgerError(f"quiet hours are written HH:MM-HH:MM (like 21:00-08:00), not {text[:30]!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise LedgerError(f"{text[:30]!r} is not a time of day range")
        return cls(h1 * 60 + m1, h2 * 60 + m2)

    def is_quiet(self, minute_of_day: int) -> bool:
        if self.start_min == self.end_min:
            return False
        if self.start_min < self.end_min:
            return self.start_min <= minute_of_day < self.end_min
        return minute_of_day >= self.start_min or minute_of_day < self.end_min

    def next_allowed_ms(self, now_ms: int, zone: str) -> int:
        """``now_ms`` when sending is allowed now in ``zone``, else the end of the quiet hours (epoch ms)."""
        tz = zoneinfo.ZoneInfo(zone)
        local = datetime.datetime.fromtimestamp(now_ms / 1000, tz)
        minute = local.hour * 60 + local.minute
        if not self.is_quiet(minute):
            return now_ms
        end_day = local.date() if minute < self.end_min else local.date() + datetime.timedelta(days=1)
        end = datetime.datetime.combine(end_day, datetime.time(0), tz) + datetime.timedelta(minutes=self.end_min)
        # wall time in the zone (a DST change inside the quiet hours moves the end by its hour, as it should)
        end = end.replace(tzinfo=None).replace(tzinfo=tz)
        return max(now_ms, int(end.timestamp() * 1000))


# -- frequency cap ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FrequencyCap:
    """At most ``count`` marketing messages per member in any ``days`` (0 count: no cap)."""

    count: int = 2
    days: int = 7

    def allows(self, sent_times_ms: Sequence[int], now_ms: int) -> bool:
        if self.count <= 0:
            return True
        since = now_ms - self.days * DAY_MS
        return sum(1 for t in sent_times_ms if t > since) < self.count


# -- templates --------------------------------------------------------------------------------------------------
def check_template(text: str) -> str:
    """A template uses only ``FIELDS`` (``{name}``, ``{points}`` ...); ``{{`` is a brace."""
    try:
        names = [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]
    except ValueError as exc:
        raise LedgerError(f"the template is not well formed ({exc}); write a brace as {{{{") from None
    for name in names:
        if name not in FIELDS:
            known = ", ".join("{" + f + "}" for f in FIELDS)
            raise LedgerError(f"the template uses {{{name}}}; the fields are {known}")
    return text


def render(template: str, fields: Mapping[str, str]) -> str:
    check_template(template)
    return template.format_map({name: fields.get(name, "") for name in FIELDS})


def sms_text(body: str, language: str) -> str:
    """The SMS as sent: the body, then the refusal hint in the member's language (always present)."""
    hint = REFUSAL_HINT.get(language, REFUSAL_HINT["en"])
    return body if body.rstrip().endswith(hint) else f"{body.rstrip()} {hint}"
