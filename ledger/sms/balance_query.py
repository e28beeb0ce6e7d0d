"""Members' texts to us that ask for something (issue 18): ``BAL`` / ``余额`` is answered with the balance and
points, by SMS, to the phone on file, and only when the text came from that phone.

The gateway's inbound callback has already been verified (``callbacks.read_callback``): the sender is the
gateway's word, signed. A text from a number no member (or more than one member) has on file gets no answer at
all, so texting us tells nobody who is a member. Each inbound message id is answered once (the gateway
retries a callback whose answer it did not see). Every answer is a read of the member's account: audited as
``member_view`` through ``sms``. Opt-out keywords are the campaigns' part and are left alone here.
"""

from __future__ import annotations

from enum import StrEnum

import peewee

from cardkit.core.money import Money
from ledger import admin, pii, projection, store
from ledger.sms.callbacks import InboundMessage
from ledger.sms.provider import SmsProvider


class InboundSeen(store.BaseModel):
    message_id = peewee.CharField(primary_key=True, max_length=128)
    at_ms = peewee.BigIntegerField()
    outcome = peewee.CharField(max_length=16)

    class Meta:
        table_name = "sms_inbound_seen"


def create_tables() -> None:
    store.register_models(InboundSeen)
    with store.atomic_write():
        store.db.create_tables([InboundSeen], safe=True)


class Outcome(StrEnum):
    ANSWERED = "answered"
    NOT_ON_FILE = "not_on_file"  # no member, or several, have that phone: no answer
    DUPLICATE = "duplicate"  # this message id was handled already
    NOT_A_QUERY = "not_a_query"
    SEND_FAILED = "send_failed"


def phone_variants(digits: str) -> list[str]:
    """The digits as given, and with or without China's country code: a member types 139…, the gateway says
    +86 139…; the longest is the canonical form."""
    out = [digits]
    if len(digits) == 11 and digits.startswith("1"):
        out.append("86" + digits)
    elif len(digits) == 13 and digits.startswith("861"):
        out.append(digits[2:])
    return out


def members_with_phone(phone: str) -> list[store.Member]:
    digits = pii.normal_phone(phone)
    if not 6 <= len(digits) <= 15:
        return []
    keys = pii.active()
    hashes = [keys.lookup_hash("phone", v) for v in phone_variants(digits)]
    return list(store.Member.select().where(store.Member.phone_hash.in_(hashes)).limit(2))


def phone_on_file(member: store.Member) -> str:
    """The member's phone as the gateway takes it: digits, with a + when the file has a country code."""
    phone = pii.details_of(member).phone.strip()
    digits = pii.normal_phone(phone)
    return ("+" + digits) if phone.startswith("+") or len(digits) > 11 else digits


def balance_text(member: store.Member) -> str:
    state = projection.projected_state(member)
    money = Money(state.balance, state.currency)
    return f"余额 {money}，积分 {state.points} / Balance {money}, points {state.points}"


def handle(message: InboundMessage, provider: SmsProvider | None, *, now_ms: int) -> Outcome:
    """Answer a balance query (once per message id); anything else is not ours."""
    if not message.balance_query:
        return Outcome.NOT_A_QUERY
    with store.atomic_write():
        inserted = InboundSeen.insert(message_id=message.message_id, at_ms=now_ms, outcome="taken") \
            .on_conflict_ignore().execute()
        if not inserted or InboundSeen.get_by_id(message.message_id).outcome != "taken":
            return Outcome.DUPLICATE
    members = members_with_phone(message.sender)
    outcome = Outcome.NOT_ON_FILE
    if len(members) == 1 and provider is not None:
        member = members[0]
        to = phone_on_file(member)
        admin.record_member_read([str(member.member_id)], actor=f"member:{member.member_id}", via="sms",
                                 origin=message.sender[-4:].rjust(len(message.sender), "*"))
        result = provider.send(to, balance_text(member), f"bal-{message.message_id}"[:64])
        outcome = Outcome.ANSWERED if result.ok else Outcome.SEND_FAILED
    InboundSeen.update(outcome=outcome.value).where(InboundSeen.message_id == message.message_id).execute()
    return outcome
