"""Member facts and consents (minimal stand-in: the campaigns work owns the full module with consent history).

``record_facts`` keeps a member's birthday and language and every consent statement (channel, granted, when, from
where) in one small table; sign-up at the till calls it when it applies a ``member_signup`` entry. Runs in the
caller's transaction.
"""

from __future__ import annotations

import datetime
from typing import Any

import peewee

from cardkit.errors import CardposError
from ledger import store

CHANNELS = ("sms", "mail")
LANGUAGES = ("zh", "en")
MAX_SOURCE = 64


class MemberFactRow(store.BaseModel):
    """One statement about a member: a fact (``birthday``, ``language``) or a consent (``consent_sms``...)."""

    id = peewee.BigAutoField()
    member_id = peewee.CharField(max_length=40, index=True)
    name = peewee.CharField(max_length=32)
    value = peewee.TextField()
    at_ms = peewee.BigIntegerField()
    source = peewee.CharField(max_length=MAX_SOURCE)


store.register_models(MemberFactRow)


def create_tables() -> None:
    store.db.create_tables([MemberFactRow], safe=True)


def record_facts(member_id: str, *, birthday: str | None, language: str | None, consents: dict[str, bool],
                 at_ms: int, source: str) -> None:
    """Facts and consents a member stated (``None`` leaves a fact as it is)."""
    if not source or len(source) > MAX_SOURCE or not source.isprintable():
        raise CardposError(f"a facts source is printable text of 1 to {MAX_SOURCE} characters")
    rows: list[dict[str, Any]] = []
    if birthday is not None:
        datetime.date.fromisoformat(birthday)  # ValueError on a bad date: the caller validated it already
        rows.append({"name": "birthday", "value": birthday})
    if language is not None:
        if language not in LANGUAGES:
            raise CardposError(f"a language is one of {', '.join(LANGUAGES)}")
        rows.append({"name": "language", "value": language})
    for channel, granted in sorted(consents.items()):
        if channel not in CHANNELS or not isinstance(granted, bool):
            raise CardposError(f"a consent is for one of {', '.join(CHANNELS)}, true or false")
        rows.append({"name": f"consent_{channel}", "value": "yes" if granted else "no"})
    create_tables()
    for row in rows:
        MemberFactRow.create(member_id=member_id, at_ms=at_ms, source=source, **row)


def has_consent(member_id: str, channel: str) -> bool:
    """Did the member's latest statement for ``channel`` (``sms``, ``mail``) grant it?"""
    return facts_of(member_id).get(f"consent_{channel}") == "yes"


def facts_of(member_id: str) -> dict[str, str]:
    """The latest value of each fact and consent of a member."""
    create_tables()
    out: dict[str, str] = {}
    for row in MemberFactRow.select().where(MemberFactRow.member_id == member_id).order_by(MemberFactRow.id):
        out[str(row.name)] = str(row.value)
    return out
