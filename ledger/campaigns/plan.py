"""Creating campaigns and planning their messages: the daily greetings and a promotion to a segment.

Planning only inserts ``CampaignMessage`` rows, each under its idempotency key (campaign + member + occasion +
channel, a unique index) with ``INSERT ... ON CONFLICT DO NOTHING``: the
daily job run twice, or restarted in the middle, plans nothing twice. Members drawn into the holdout get a row
with status ``holdout`` that is never sent, so results compare the two groups. Sending is ``ledger.campaigns.send``.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import peewee

from ledger import member_facts, store
from ledger.campaigns import model
from ledger.campaigns.config import CampaignConfig
from ledger.campaigns.model import Kind, MessageStatus, Occasion
from ledger.campaigns.segments import DefaultSegments, SegmentSource
from ledger.campaigns.tables import KEY_COLUMNS, Campaign, CampaignMessage
from ledger.errors import LedgerError

INSERT_ROWS = 20_000
"""Message rows per transaction (one commit, so one fsync, per this many; the write lock is held for one chunk)."""
MEMBER_PAGE = 5_000


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    name: str
    kind: Kind
    channel: str
    text_zh: str
    text_en: str
    subject_zh: str = ""
    subject_en: str = ""
    occasion: str = ""
    holiday: str = ""
    segment: str = ""
    coupon_amount_off: int | None = None
    coupon_percent_bp: int | None = None
    coupon_min_spend: int | None = None
    coupon_days: int = 30
    holdout_bp: int = 0
    seed: str = ""


def create_campaign(spec: CampaignSpec, *, actor: str, now_ms: int) -> str:
    """Check and store a campaign (a draft; greetings are active at once). Audited. Returns its id."""
    if not spec.name.strip() or len(spec.name) > 200:
        raise LedgerError("a campaign needs a name of 1 to 200 characters")
    if spec.channel not in member_facts.CHANNELS:
        raise LedgerError(f"a campaign's channel is sms or mail, not {spec.channel!r}")
    for text in (spec.text_zh, spec.text_en):
        if not text.strip():
            raise LedgerError("a campaign needs its text in zh and in en")
        model.check_template(text)
    if spec.channel == "mail":
        for subject in (spec.subject_zh, spec.subject_en):
            if not subject.strip():
                raise LedgerError("a mail campaign needs a subject in zh and in en")
            model.check_template(subject)
    if spec.kind is Kind.GREETING:
        try:
            occasion = Occasion(spec.occasion)
        except ValueError:
            names = ", ".join(o.value for o in Occasion)
            raise LedgerError(f"a greeting's occasion is one of {names}, not {spec.occasion!r}") from None
        if occasion is Occasion.HOLIDAY:
            model.parse_month_day(spec.holiday)
        elif spec.holiday:
            raise LedgerError("only a holiday greeting takes a date")
    elif not spec.segment:
        raise LedgerError("a promotion needs a segment")
    if (spec.coupon_amount_off is not None) and (spec.coupon_percent_bp is not None):
        raise LedgerError("a coupon takes either an amount off or a percentage off, not both")
    if spec.coupon_amount_off is not None and spec.coupon_amount_off <= 0:
        raise LedgerError("a coupon's amount off must be more than zero")
    if spec.coupon_percent_bp is not None and not 0 < spec.coupon_percent_bp <= 10_000:
        raise LedgerError("a coupon's percentage off is between 0.01% and 100%")
    if not 0 <= spec.holdout_bp <= 5_000:
        raise LedgerError("the holdout share is from 0% to 50%")
    if not 1 <= spec.coupon_days <= 3650:
        raise LedgerError("a coupon is valid for 1 to 3650 days")
    campaign_id = "cmp-" + os.urandom(5).hex()
    with store.atomic_write():
        Campaign.create(
            campaign_id=campaign_id, name=spec.name, kind=spec.kind.value, occasion=spec.occasion,
            holiday=spec.holiday, segment=spec.segment, channel=spec.channel, subject_zh=spec.subject_zh,
            subject_en=spec.subject_en, text_zh=spec.text_zh, text_en=spec.text_en,
            coupon_amount_off=spec.coupon_amount_off, coupon_percent_bp=spec.coupon_percent_bp,
            coupon_min_spend=spec.coupon_min_spend, coupon_days=spec.coupon_days, holdout_bp=spec.holdout_bp,
            seed=spec.seed or os.urandom(8).hex(), status="active" if spec.kind is Kind.GREETING else "draft",
            created_ms=now_ms, created_by=actor)
        store.AuditLog.create(at_ms=now_ms, actor=actor, action="campaign_create", subject=campaign_id,
                              details={"name": spec.name, "kind": spec.kind.value, "channel": spec.channel,
                                       "segment": spec.segment, "occasion": spec.occasion})
    return campaign_id


def get_campaign(campaign_id: str) -> Campaign:
    campaign = Campaign.get_or_none(Campaign.campaign_id == campaign_id)
    if campaign is None:
        raise LedgerError(f"there is no campaign {campaign_id!r}")
    return campaign


def schedule(campaign_id: str, at_ms: int, *, actor: str, now_ms: int) -> None:
    """A promotion goes out at ``at_ms`` (the next ``run`` after it plans and sends it)."""
    campaign = get_campaign(campaign_id)
    if campaign.kind != Kind.PROMOTION.value:
        raise LedgerError("only a promotion is scheduled; greetings go out with the daily job")
    if campaign.status not in ("draft", "scheduled"):
        raise LedgerError(f"campaign {campaign_id} is already {campaign.status}")
    with store.atomic_write():
        campaign.status, campaign.scheduled_ms = "scheduled", at_ms
        campaign.save()
        store.AuditLog.create(at_ms=now_ms, actor=actor, action="campaign_schedule", subject=campaign_id,
                              details={"at_ms": at_ms})


# -- rows -------------------------------------------------------------------------------------------------------
Row = tuple[str, str, str, str, str, int, int, int, str]

ROW_FIELDS = ("campaign_id", "member_id", "channel", "occasion", "status", "attempts", "next_attempt_ms",
              "created_ms", "last_error")


def _row(campaign: Campaign, member_id: str, occasion: str, status: MessageStatus, now_ms: int) -> Row:
    """One message row, in ``ROW_FIELDS`` order."""
    return (str(campaign.campaign_id), member_id, str(campaign.channel), occasion, status.value, 0, now_ms,
            now_ms, "")


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def _insert_head() -> str:
    return f'INSERT INTO "{CampaignMessage._meta.table_name}" ({_quoted(ROW_FIELDS)}) '


def _on_conflict() -> str:
    return f" ON CONFLICT ({_quoted(KEY_COLUMNS)}) DO NOTHING"


def _insert(rows: list[Row]) -> None:
    """Insert message rows, skipping keys already there. Plain ``executemany`` rather than the query builder:
    building a 20,000-value query object cost several times what SQLite takes to store the rows."""
    if not rows:
        return
    p = store.db.param
    sql = _insert_head() + f'VALUES ({", ".join(p for _ in ROW_FIELDS)})' + _on_conflict()
    with store.atomic_write():
        store.db.cursor().executemany(sql, rows)


@dataclass(slots=True)
class PlanReport:
    planned: int = 0
    holdout: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"planned": self.planned, "holdout": self.holdout}


# -- a promotion, set-based -------------------------------------------------------------------------------------
HOLDOUT_FUNCTION = "cardpos_holdout_bucket"


def _status_sql(seed: str, share_bp: int, member_column: str) -> tuple[str, list[Any]]:
    """SQL for a planned row's status, ``holdout`` or ``pending``: ``model.holdout_bucket`` computed by the
    database. PostgreSQL hashes in SQL (``sha256``); SQLite calls the Python function registered on its
    connection (no SHA-256 of its own), which still spares building and binding a Python row per member."""
    pending, holdout = MessageStatus.PENDING.value, MessageStatus.HOLDOUT.value
    if share_bp <= 0:
        return f"'{pending}'", []
    if store.is_postgres():
        # the first 8 bytes of the digest as an unsigned 64-bit number (bit(64) → bigint is signed), mod 10,000
        bucket = (f"mod(mod(('x' || substr(encode(sha256(%s::bytea || convert_to({member_column}, 'UTF8')), "
                  f"'hex'), 1, 16))::bit(64)::bigint::numeric + 18446744073709551616, 18446744073709551616), "
                  f"{model.HOLDOUT_BUCKETS})")
        params: list[Any] = [seed.encode() + b"\x00"]
    else:
        # on this thread's connection too when it is open already (idempotent)
        store.db.obj.register_function(model.holdout_bucket, HOLDOUT_FUNCTION, 2, deterministic=True)
        bucket = f"{HOLDOUT_FUNCTION}(?, {member_column})"
        params = [seed]
    p = store.db.param
    return f"CASE WHEN {bucket} < {p} THEN '{holdout}' ELSE '{pending}' END", [*params, share_bp]


def _select_head(campaign: Campaign, now_ms: int, member_column: str) -> tuple[str, list[Any]]:
    """``SELECT <one message row per member>``, in ``ROW_FIELDS`` order, reading ``member_column``."""
    status, status_params = _status_sql(str(campaign.seed), int(campaign.holdout_bp), member_column)
    p = store.db.param
    sql = f"SELECT {p}, {member_column}, {p}, '', {status}, 0, {p}, {p}, '' "
    return sql, [str(campaign.campaign_id), str(campaign.channel), *status_params, now_ms, now_ms]


def _lock_campaign(campaign: Campaign) -> None:
    """PostgreSQL: hold the campaign's planning lock until this transaction ends; planners are the only writers of
    a campaign's rows, so while it is held nobody adds one (see ``_plan_all``)."""
    key = int.from_bytes(hashlib.sha256(f"campaign-plan:{campaign.campaign_id}".encode()).digest()[:8], "big",
                         signed=True)
    store.db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (key,))


def _plan_all(campaign: Campaign, now_ms: int) -> None:
    """Every member: one ``INSERT ... SELECT`` per ``INSERT_ROWS`` members (a range of member ids found first),
    each its own transaction, so other writers wait for one chunk at most.

    On PostgreSQL ``ON CONFLICT`` makes every row a speculative insertion (1.6 times a plain insert of a million
    rows here), so a range in which the campaign has no row yet (one probe of the unique key, under the
    campaign's planning lock) is inserted plainly; a range planned before (a re-plan) keeps ``ON CONFLICT``."""
    member = store.Member._meta.table_name
    table = CampaignMessage._meta.table_name
    p = store.db.param
    select, params = _select_head(campaign, now_ms, '"member_id"')
    boundary_sql = (f'SELECT "member_id" FROM "{member}" WHERE "member_id" > {p} ORDER BY "member_id" '
                    f"LIMIT 1 OFFSET {INSERT_ROWS - 1}")
    planned_sql = (f'SELECT 1 FROM "{table}" WHERE "campaign_id" = {p} AND "member_id" > {p} '
                   f'AND ({p} IS NULL OR "member_id" <= {p}) LIMIT 1')
    insert = _insert_head() + select + f'FROM "{member}" WHERE "member_id" > {p}'
    postgres = store.is_postgres()
    last = ""
    while True:
        found = store.db.execute_sql(boundary_sql, (last,)).fetchone()
        end = None if found is None else str(found[0])
        with store.atomic_write():
            tail = _on_conflict()
            if postgres:
                _lock_campaign(campaign)
                seen = store.db.execute_sql(planned_sql, (str(campaign.campaign_id), last, end, end)).fetchone()
                tail = _on_conflict() if seen else ""
            if end is None:
                store.db.execute_sql(insert + tail, (*params, last))
                return
            store.db.execute_sql(insert + f' AND "member_id" <= {p}' + tail, (*params, last, end))
        last = end


LISTED_PER_STATEMENT = 500


def _plan_listed(campaign: Campaign, member_ids: Iterable[str], now_ms: int) -> None:
    """Members a segment listed: ``INSERT ... SELECT`` from a ``VALUES`` list of ``LISTED_PER_STATEMENT`` ids,
    ``INSERT_ROWS`` per transaction; the same rows and the same holdout draw as ``_plan_all``."""
    select, params = _select_head(campaign, now_ms, "listed.column1")
    p = store.db.param
    rows: list[str] = []

    def flush(ids: list[str]) -> None:
        with store.atomic_write():
            for start in range(0, len(ids), LISTED_PER_STATEMENT):
                part = ids[start:start + LISTED_PER_STATEMENT]
                values = ", ".join(f"({p})" for _ in part)
                store.db.execute_sql(_insert_head() + select + f"FROM (VALUES {values}) AS listed WHERE TRUE"
                                     + _on_conflict(), (*params, *part))

    for member_id in member_ids:
        rows.append(member_id)
        if len(rows) >= INSERT_ROWS:
            flush(rows)
            rows = []
    if rows:
        flush(rows)


def plan_promotion(campaign_id: str, segments: SegmentSource, *, now_ms: int, actor: str = "scheduler") -> PlanReport:
    """Every member of the segment gets a message row (or a holdout row), written by the database from the
    member table (``all``) or from the segment's list, in chunks: bounded memory, no Python object per member for
    ``all``. Planning again adds only members who are new to the campaign."""
    campaign = get_campaign(campaign_id)
    if campaign.kind != Kind.PROMOTION.value:
        raise LedgerError("only a promotion is planned to a segment")
    if str(campaign.segment) == "all" and isinstance(segments, DefaultSegments):
        _plan_all(campaign, now_ms)
    else:
        _plan_listed(campaign, segments.members(str(campaign.segment), now_ms), now_ms)
    report = PlanReport()
    M = CampaignMessage
    for status, count in tuples(M.select(M.status, peewee.fn.COUNT(M.id)).where(M.campaign_id == campaign_id)
                                .group_by(M.status)):
        if status == MessageStatus.HOLDOUT.value:
            report.holdout += int(count)
        else:
            report.planned += int(count)
    with store.atomic_write():
        campaign.status, campaign.planned_ms = "planned", campaign.planned_ms or now_ms
        campaign.save()
        store.AuditLog.create(at_ms=now_ms, actor=actor, action="campaign_plan", subject=campaign_id,
                              details=report.as_dict())
    return report


def plan_due_promotions(segments: SegmentSource, *, now_ms: int) -> dict[str, PlanReport]:
    due = Campaign.select().where((Campaign.status == "scheduled") & (Campaign.scheduled_ms <= now_ms))
    return {str(c.campaign_id): plan_promotion(str(c.campaign_id), segments, now_ms=now_ms) for c in due}


def tuples(query: Any) -> list[tuple[Any, ...]]:
    """A query's rows as plain tuples (peewee's stubs type ``.tuples()`` as models)."""
    return list(query.tuples())


# -- greetings --------------------------------------------------------------------------------------------------
def local_day(now_ms: int, zone: str) -> datetime.date:
    return datetime.datetime.fromtimestamp(now_ms / 1000, zoneinfo.ZoneInfo(zone)).date()


def _moments(now_ms: int, zone: str, need_visits: bool) -> Iterator[model.MemberMoment]:
    """Every member as a ``MemberMoment``, in pages of ``MEMBER_PAGE``."""
    M, F, P = store.Member, member_facts.MemberFactsRow, store.MemberProjection
    last = ""
    tz = zoneinfo.ZoneInfo(zone)

    def day(ms: int | None) -> datetime.date | None:
        return None if ms is None else datetime.datetime.fromtimestamp(ms / 1000, tz).date()

    while True:
        rows = tuples(M.select(M.member_id, M.created_ms, M.opening_tier, F.birthday, F.join_ms, P.tier)
                    .join(F, peewee.JOIN.LEFT_OUTER, on=(F.member_id == M.member_id))
                    .join_from(M, P, peewee.JOIN.LEFT_OUTER, on=(P.member_id == M.member_id))
                    .where(M.member_id > last).order_by(M.member_id).limit(MEMBER_PAGE))
        if not rows:
            return
        visits: dict[str, int] = {}
        if need_visits:
            ids = [str(r[0]) for r in rows]
            for start in range(0, len(ids), 400):
                chunk = ids[start:start + 400]
                A = store.AppliedEntry
                for member_id, wall in tuples(A.select(A.member_id, peewee.fn.MAX(A.wall_ms))
                                              .where(A.member_id.in_(chunk)).group_by(A.member_id)):
                    visits[str(member_id)] = int(wall)
        for member_id, created_ms, opening_tier, birthday, join_ms, tier in rows:
            yield model.MemberMoment(
                member_id=str(member_id), birthday=birthday, join_day=day(join_ms or created_ms),
                tier=str(tier or opening_tier), greeted_tier=str(opening_tier),
                last_visit_day=day(visits.get(str(member_id))))
        last = str(rows[-1][0])


def run_daily(config: CampaignConfig, *, now_ms: int, actor: str = "daily") -> dict[str, int]:
    """Plan today's greetings of every active greeting campaign (today in the programme's zone). Returns the
    number of messages planned per campaign (0 for a campaign whose greetings were already planned today)."""
    greetings = list(Campaign.select().where((Campaign.kind == Kind.GREETING.value) & (Campaign.status == "active"))
                     .order_by(Campaign.created_ms))
    today = local_day(now_ms, config.time_zone)
    planned: dict[str, int] = {}
    if not greetings:
        return planned
    need_visits = any(c.occasion == Occasion.WE_MISS_YOU.value for c in greetings)
    rows: list[Row] = []
    existing = CampaignMessage.select().count()
    for moment in _moments(now_ms, config.time_zone, need_visits):
        for campaign in greetings:
            occasion = model.occasion_key(Occasion(campaign.occasion), moment, today,
                                          lapsed_days=config.lapsed_days, holiday=str(campaign.holiday))
            if occasion is None:
                continue
            held = model.in_holdout(moment.member_id, str(campaign.seed), int(campaign.holdout_bp))
            rows.append(_row(campaign, moment.member_id, occasion,
                             MessageStatus.HOLDOUT if held else MessageStatus.PENDING, now_ms))
            planned[str(campaign.campaign_id)] = planned.get(str(campaign.campaign_id), 0) + 1
        if len(rows) >= INSERT_ROWS:
            _insert(rows)
            rows = []
    _insert(rows)
    added = CampaignMessage.select().count() - existing
    with store.atomic_write():
        store.AuditLog.create(at_ms=now_ms, actor=actor, action="campaigns_daily", subject=today.isoformat(),
                              details={"due": planned, "new_messages": added})
    return planned
