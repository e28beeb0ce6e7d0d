"""Members signed up at the till: a ``member_signup`` entry becomes a member at the ledger, or joins one.

The terminal journals the sign-up under a provisional member id (``P`` + random hex) and pushes it like any
entry (sealed batch: name, phone and birthday are personal data, kept encrypted here as in the terminal's
journal). Applying it (``apply_signups``, inside the ingest's transaction):

- no member has that phone: a new member is created with a ledger id, at the terminal's store, and the
  provisional id is **confirmed** as that id;
- a member already has that phone (the same person signed up offline at one till and online at another, or
  twice): nothing new is created, the provisional id is **merged** onto that member, and the merge is listed
  for admins as a conflict resolved by the ledger (``cardpos ledger member signups``).

Either way the sign-up's birthday, language and consents (with the wording shown) go to
``ledger.member_facts.record_facts``, and the terminal can then ask for the member's card
(``POST /v1/cards/new`` naming the sign-up entry: ``ledger.cards_issue``), which is attached to the member the
provisional id resolved to, so both tills' cards work for the one member.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import peewee

from cardkit.core.members import Tier
from cardkit.journal import JournalEntry
from ledger import member_facts, pii, store
from ledger.home import current


class SignupRecord(store.BaseModel):
    """What became of one sign-up entry: ``created`` a member, or ``merged`` onto one with the same phone."""

    id = peewee.BigAutoField()
    entry_uuid = peewee.CharField(max_length=36)
    terminal_id = peewee.CharField(max_length=40)
    provisional_id = peewee.CharField(max_length=40, index=True)
    member_id = peewee.CharField(max_length=40, index=True)
    outcome = peewee.CharField(max_length=16)
    at_ms = peewee.BigIntegerField()

    class Meta:
        indexes = ((("terminal_id", "entry_uuid"), True),)  # an entry's uuid is unique within its terminal


store.register_models(SignupRecord)


def create_tables() -> None:
    store.db.create_tables([SignupRecord], safe=True)
    member_facts.create_tables()


def apply_signups(entries: Sequence[JournalEntry], *, now_ms: int) -> None:
    """Create or merge each sign-up's member (the caller holds the write transaction)."""
    create_tables()
    ledger = current()
    for entry in entries:
        if signup_of(entry.terminal_id, entry.uuid) is not None:
            continue
        p = entry.payload
        name, phone = str(p.get("name") or "").strip(), str(p.get("phone") or "")
        terminal = store.Terminal.get_or_none(store.Terminal.terminal_id == entry.terminal_id)
        same_phone = pii.find_members(phone=phone) if pii.normal_phone(phone) else []
        if same_phone:
            member_id, outcome = str(sorted(same_phone, key=lambda m: int(m.created_ms))[0].member_id), "merged"
        else:
            member_id, outcome = "m" + ledger.randbytes(5).hex(), "created"
            version = store.bump("members")
            pii.create_member(member_id, pii.MemberDetails(name=name or "?", phone=phone, email="", notes="",
                                                           prefs={}),
                              store_id=str(p.get("store") or (terminal.store_id if terminal else "store-1")),
                              opening_tier=Tier.STANDARD.value, currency=str(p.get("cur") or "CNY"),
                              opening_balance=0, opening_points=0, created_ms=now_ms, version=version)
        SignupRecord.create(entry_uuid=entry.uuid, terminal_id=entry.terminal_id,
                            provisional_id=str(p.get("member") or ""), member_id=member_id, outcome=outcome,
                            at_ms=now_ms)
        given = p.get("consent")
        consent: dict[str, Any] = given if isinstance(given, dict) else {}
        birthday = p.get("birthday")
        language = p.get("language")
        source = f"signup {entry.terminal_id} {consent.get('wording', '')}".strip()[: member_facts.MAX_SOURCE]
        member_facts.record_facts(member_id, birthday=birthday if isinstance(birthday, str) else None,
                                  language=language if language in member_facts.LANGUAGES else None,
                                  consents={c: bool(consent.get(c)) for c in ("sms", "mail") if c in consent},
                                  at_ms=entry.wall_ms, source=source)
        store.AuditLog.create(at_ms=now_ms, actor=f"terminal:{entry.terminal_id}", action=f"member_signup_{outcome}",
                              subject=member_id, details={"provisional": p.get("member"), "entry": entry.uuid})


def signup_of(terminal_id: str, entry_uuid: str) -> SignupRecord | None:
    """What became of terminal ``terminal_id``'s sign-up entry ``entry_uuid`` (None: not applied here)."""
    create_tables()
    return SignupRecord.get_or_none((SignupRecord.terminal_id == terminal_id)
                                    & (SignupRecord.entry_uuid == entry_uuid))


def signups(*, merged_only: bool = False) -> list[dict[str, Any]]:
    """Sign-ups applied, newest first; a ``merged`` one is a conflict (same phone twice) the ledger resolved."""
    create_tables()
    query = SignupRecord.select().order_by(SignupRecord.at_ms.desc())
    if merged_only:
        query = query.where(SignupRecord.outcome == "merged")
    return [{"entry": str(r.entry_uuid), "terminal_id": str(r.terminal_id), "provisional_id": str(r.provisional_id),
             "member_id": str(r.member_id), "outcome": str(r.outcome), "at_ms": int(r.at_ms),
             "conflict": "resolved: same phone as an existing member, merged" if r.outcome == "merged" else None}
            for r in query]
