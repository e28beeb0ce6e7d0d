"""Member facts the programme greets and messages by: birthday, language, join date, time zone, and consent per
channel (sms, mail) kept as a history of statements (granted or withdrawn, when, where).

Consent is the latest statement per channel; no statement means no consent (ePrivacy Art. 13: prior consent for
marketing mail and SMS). Withdrawals are never overwritten by an older grant: statements are ordered by their time,
and at equal times a withdrawal wins. Every change is written to the audit log with who and where.

``record_facts`` (the sign-up at the till calls it inside its own transaction) and ``set_facts`` /
``set_consent`` (the CLI, the console, an unsubscribe, an SMS STOP) are the only writers.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import peewee

from ledger import pii, store
from ledger.errors import LedgerError

CHANNELS = ("sms", "mail")
LANGUAGES = ("zh", "en")
MAX_SOURCE = 64
CHUNK = 400


class MemberFactsRow(store.BaseModel):
    """One member's facts (absent: nothing known beyond the member row)."""

    member_id = peewee.CharField(primary_key=True, max_length=40)
    birthday = peewee.CharField(max_length=10, null=True)  # YYYY-MM-DD
    language = peewee.CharField(max_length=8, null=True)
    time_zone = peewee.CharField(max_length=64, null=True)  # IANA name; None: the programme's zone
    join_ms = peewee.BigIntegerField(null=True)  # None: the member row's created_ms
    updated_ms = peewee.BigIntegerField()

    class Meta:
        table_name = "member_facts"


class ConsentEvent(store.BaseModel):
    """One statement of consent for one channel: append-only history."""

    id = peewee.BigAutoField()
    member_id = peewee.CharField(max_length=40, index=True)
    channel = peewee.CharField(max_length=8)
    granted = peewee.BooleanField()
    at_ms = peewee.BigIntegerField()
    source = peewee.CharField(max_length=MAX_SOURCE)
    actor = peewee.TextField(default="")

    class Meta:
        table_name = "member_consent"
        indexes = ((("member_id", "channel", "at_ms"), False),)


MODELS: list[type[peewee.Model]] = [MemberFactsRow, ConsentEvent]


def register() -> None:
    store.register_models(*MODELS)


def create_tables() -> None:
    register()
    store.db.create_tables(MODELS, safe=True)


register()  # a ledger created after this module is imported gets the tables with create_schema


# -- checks (pure) ----------------------------------------------------------------------------------------------
def check_birthday(text: str) -> str:
    """``YYYY-MM-DD``, a real date not in the future of year 9999 and not before 1900."""
    try:
        day = datetime.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise LedgerError(f"a birthday is written YYYY-MM-DD, not {str(text)[:40]!r}") from None
    if len(text) != 10 or day.year < 1900:
        raise LedgerError(f"a birthday is written YYYY-MM-DD from 1900 on, not {text[:40]!r}")
    return text


def check_language(text: str) -> str:
    value = text.strip().lower()
    if value not in LANGUAGES:
        raise LedgerError(f"a language is one of {', '.join(LANGUAGES)}, not {text[:20]!r}")
    return value


def check_time_zone(text: str) -> str:
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise LedgerError(f"{text[:64]!r} is not a time zone name (like Asia/Shanghai)") from None
    return text


def check_channel(text: str) -> str:
    if text not in CHANNELS:
        raise LedgerError(f"a consent channel is one of {', '.join(CHANNELS)}, not {text[:20]!r}")
    return text


def check_source(text: str) -> str:
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_SOURCE or not text.isprintable():
        raise LedgerError(f"a consent source is printable text of 1 to {MAX_SOURCE} characters")
    return text


# -- reading ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ConsentStatement:
    channel: str
    granted: bool
    at_ms: int
    source: str
    actor: str

    def as_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "granted": self.granted, "at_ms": self.at_ms, "source": self.source,
                "actor": self.actor}


@dataclass(frozen=True, slots=True)
class MemberFacts:
    member_id: str
    birthday: str | None
    language: str | None
    time_zone: str | None
    join_ms: int | None
    consent: dict[str, bool]
    history: tuple[ConsentStatement, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"member_id": self.member_id, "birthday": self.birthday, "language": self.language,
                "time_zone": self.time_zone, "join_ms": self.join_ms, "consent": dict(self.consent),
                "history": [s.as_dict() for s in self.history]}


def _ordered(query: Any) -> Any:
    # a withdrawal at the same instant as a grant wins (granted False sorts first, so it is taken last: desc)
    return query.order_by(ConsentEvent.at_ms.desc(), ConsentEvent.granted.asc(), ConsentEvent.id.desc())


def has_consent(member_id: str, channel: str) -> bool:
    """The member's latest statement for the channel says yes (no statement: no)."""
    latest = _ordered(ConsentEvent.select(ConsentEvent.granted).where(
        (ConsentEvent.member_id == member_id) & (ConsentEvent.channel == channel))).first()
    return bool(latest.granted) if latest is not None else False


def consenting(member_ids: Iterable[str], channel: str) -> set[str]:
    """Those of ``member_ids`` whose latest statement for ``channel`` grants consent (a few queries per 400)."""
    ids = sorted(set(member_ids))
    out: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        latest: dict[str, tuple[int, int, int, bool]] = {}
        rows: Iterable[tuple[str, int, bool, int]] = cast(Any, (
            ConsentEvent.select(ConsentEvent.member_id, ConsentEvent.at_ms, ConsentEvent.granted, ConsentEvent.id)
            .where(ConsentEvent.member_id.in_(chunk) & (ConsentEvent.channel == channel)).tuples()))
        for member_id, at_ms, granted, row_id in rows:
            # later time wins; at the same time a withdrawal wins; then the later row
            rank = (int(at_ms), 0 if granted else 1, int(row_id), bool(granted))
            if member_id not in latest or rank[:3] > latest[member_id][:3]:
                latest[member_id] = rank
        out.update(m for m, rank in latest.items() if rank[3])
    return out


def facts_of(member_id: str) -> MemberFacts:
    row = MemberFactsRow.get_or_none(MemberFactsRow.member_id == member_id)
    member = store.Member.get_or_none(store.Member.member_id == member_id)
    if row is None and member is None:
        raise LedgerError(f"there is no member {member_id!r}")
    history = tuple(ConsentStatement(str(e.channel), bool(e.granted), int(e.at_ms), str(e.source), str(e.actor))
                    for e in ConsentEvent.select().where(ConsentEvent.member_id == member_id)
                    .order_by(ConsentEvent.at_ms, ConsentEvent.id))
    consent = {channel: has_consent(member_id, channel) for channel in CHANNELS}
    join_ms = row.join_ms if row is not None and row.join_ms is not None else (
        int(member.created_ms) if member is not None else None)
    return MemberFacts(member_id, row.birthday if row else None, row.language if row else None,
                       row.time_zone if row else None, join_ms, consent, history)


def facts_rows(member_ids: Iterable[str]) -> Iterator[MemberFactsRow]:
    ids = sorted(set(member_ids))
    for start in range(0, len(ids), CHUNK):
        yield from MemberFactsRow.select().where(MemberFactsRow.member_id.in_(ids[start:start + CHUNK]))


# -- writing ----------------------------------------------------------------------------------------------------
def _audit(at_ms: int, actor: str, action: str, member_id: str, **details: Any) -> None:
    store.AuditLog.create(at_ms=at_ms, actor=actor, action=action, subject=member_id, details=details)


def _upsert(member_id: str, at_ms: int, **values: Any) -> None:
    row = MemberFactsRow.get_or_none(MemberFactsRow.member_id == member_id)
    if row is None:
        MemberFactsRow.create(member_id=member_id, updated_ms=at_ms, **values)
        return
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_ms = at_ms
    row.save()


def _state_now(member_id: str, channel: str) -> bool | None:
    latest = _ordered(ConsentEvent.select(ConsentEvent.granted).where(
        (ConsentEvent.member_id == member_id) & (ConsentEvent.channel == channel))).first()
    return None if latest is None else bool(latest.granted)


def _consent(member_id: str, channel: str, granted: bool, at_ms: int, source: str, actor: str) -> bool:
    """Append a statement when it changes the member's consent; True when it did."""
    if _state_now(member_id, channel) is granted:
        return False
    ConsentEvent.create(member_id=member_id, channel=channel, granted=granted, at_ms=at_ms, source=source,
                        actor=actor)
    return True


def record_facts(member_id: str, *, birthday: str | None, language: str | None, consents: dict[str, bool],
                 at_ms: int, source: str) -> None:
    """Facts and consents collected at sign-up (or anywhere a member states them). ``None`` leaves a fact as it
    is; each consent given is a statement at ``at_ms`` from ``source`` (recorded only when it changes the
    member's consent). Runs in the caller's transaction when there is one; audited."""
    check_source(source)
    values: dict[str, Any] = {}
    if birthday is not None:
        values["birthday"] = check_birthday(birthday)
    if language is not None:
        values["language"] = check_language(language)
    for channel, granted in consents.items():
        check_channel(channel)
        if not isinstance(granted, bool):
            raise LedgerError(f"consent for {channel} must be true or false")
    with store.atomic_write() if not store.db.in_transaction() else _nested():
        if values or not MemberFactsRow.get_or_none(MemberFactsRow.member_id == member_id):
            _upsert(member_id, at_ms, **values)
        changed = {c: g for c, g in sorted(consents.items()) if _consent(member_id, c, g, at_ms, source, source)}
        _audit(at_ms, source, "member_facts", member_id, via=source, **values,
               **{f"consent_{c}": g for c, g in changed.items()})


def record_new_members_consents(consents: dict[str, dict[str, bool]], *, at_ms: int, source: str) -> int:
    """Consent statements of members just created with no history (``ledger import``), in bulk: one statement per
    member and channel, one audit entry with the counts (the import's rows are its own record). Returns the
    statements written. Runs in the caller's transaction."""
    check_source(source)
    events = [{"member_id": member_id, "channel": check_channel(channel), "granted": bool(granted), "at_ms": at_ms,
               "source": source, "actor": source}
              for member_id, given in sorted(consents.items()) for channel, granted in sorted(given.items())]
    facts = [{"member_id": member_id, "updated_ms": at_ms} for member_id in sorted(consents)]
    store.bulk_insert(ConsentEvent, events)
    store.bulk_insert(MemberFactsRow, facts, ignore_conflicts=True)
    if events:
        _audit(at_ms, source, "member_consents_imported", "*", members=len(facts), statements=len(events))
    return len(events)


class _nested:
    """No new transaction: the caller's is used (sign-up applies inside the ingest's transaction)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def set_facts(member_id: str, *, at_ms: int, actor: str, birthday: str | None = None, language: str | None = None,
              time_zone: str | None = None, join_date: str | None = None) -> None:
    """Change facts by hand (CLI, console); an empty string clears a fact. Audited."""
    if store.Member.get_or_none(store.Member.member_id == member_id) is None:
        raise LedgerError(f"there is no member {member_id!r}")
    values: dict[str, Any] = {}
    if birthday is not None:
        values["birthday"] = check_birthday(birthday) if birthday else None
    if language is not None:
        values["language"] = check_language(language) if language else None
    if time_zone is not None:
        values["time_zone"] = check_time_zone(time_zone) if time_zone else None
    if join_date is not None:
        values["join_ms"] = _day_ms(join_date) if join_date else None
    if not values:
        return
    with store.atomic_write():
        _upsert(member_id, at_ms, **values)
        _audit(at_ms, actor, "member_facts", member_id, via="admin", **values)


def _day_ms(text: str) -> int:
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        raise LedgerError(f"a join date is written YYYY-MM-DD, not {text[:40]!r}") from None
    return int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp() * 1000)


def set_consent(member_id: str, channel: str, granted: bool, *, at_ms: int, source: str, actor: str) -> bool:
    """One consent statement (CLI, console, unsubscribe, SMS STOP); True when it changed the consent. Audited
    (also when it changed nothing: a member who asked twice asked twice)."""
    check_channel(channel)
    check_source(source)
    if store.Member.get_or_none(store.Member.member_id == member_id) is None:
        raise LedgerError(f"there is no member {member_id!r}")
    with store.atomic_write():
        changed = _consent(member_id, channel, granted, at_ms, source, actor)
        _audit(at_ms, actor, "consent_grant" if granted else "consent_withdraw", member_id, channel=channel,
               source=source, changed=changed)
    return changed


def withdraw_sms_by_phone(phone: str, *, at_ms: int, source: str) -> list[str]:
    """An SMS refusal (STOP, 退订, R ...) from ``phone``: every member with that phone on file loses SMS consent.
    Returns their ids (none: the number is not a member's, and nothing is recorded about it)."""
    if not pii.normal_phone(phone):
        return []
    members = pii.find_members(phone=phone)
    for member in members:
        set_consent(str(member.member_id), "sms", False, at_ms=at_ms, source=source, actor="member")
    return [str(m.member_id) for m in members]
