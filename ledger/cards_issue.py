"""New cards for tier upgrades asked by terminals: issued online, or listed for admins while they wait.

Online (``POST /v1/cards/new``, ``cardkit.card_issue``): the terminal has journaled a ``tier_upgrade`` entry and
pushed it; it asks for the new card naming that entry's uuid as the request. The ledger issues the card only for
an upgrade it has applied (that entry, from that terminal, for that card, at a tier above the card's), revokes the
old card as ``replaced`` (terminals learn it at their next pull) and moves no money: balances, points, coupons and
history belong to the member, so the new card shows them all. One card per request: the same request asked
again (a lost answer, a card write that failed) gets the same card back, so there are never two live new cards.

Offline: the entry reaches the ledger at the next sync and waits here, listed by ``pending_requests``
(``cardpos ledger card requests``, the console's member page) until the terminal asks again online or an admin
replaces the card (``cardpos ledger card replace``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cbor2
import peewee

from cardkit.card_issue import NewCard, new_card_fields, seal_card_key
from cardkit.core.members import CardStatus, Tier
from cardkit.journal import EntryKind
from ledger import admin, signup, store
from ledger.apply import LEDGER_TERMINAL_ID
from ledger.enroll import Caller, RequestRefused
from ledger.home import Ledger


class CardRequest(store.BaseModel):
    """A new card issued for a terminal's upgrade entry (``request_id``, its uuid). ``token`` is kept so a retry
    gets the very same card; ``sealed_key`` is a challenge card's key sealed to that terminal (unreadable here)."""

    id = peewee.BigAutoField()
    request_id = peewee.CharField(max_length=36)
    terminal_id = peewee.CharField(max_length=40)
    member_id = peewee.CharField(max_length=40, index=True)
    old_card = peewee.CharField(max_length=40, index=True)
    new_card = peewee.CharField(max_length=40)
    tier = peewee.CharField(max_length=16)
    token = peewee.BlobField()
    sealed_key = peewee.BlobField(null=True)
    issued_ms = peewee.BigIntegerField()

    class Meta:
        indexes = ((("terminal_id", "request_id"), True),)  # an entry's uuid is unique within its terminal


store.register_models(CardRequest)


def create_tables() -> None:
    store.db.create_tables([CardRequest], safe=True)
    signup.create_tables()


@dataclass(frozen=True)
class UpgradeEntry:
    """A ``tier_upgrade`` entry a terminal journaled (an upgrade at the counter asks for a new card)."""

    uuid: str
    terminal_id: str
    seq: int
    wall_ms: int
    member_id: str
    card_id: str
    from_tier: str
    to_tier: str


def _upgrade_entries(where: Any) -> list[UpgradeEntry]:
    rows = (store.AppliedEntry.select()
            .where((store.AppliedEntry.kind == EntryKind.TIER_UPGRADE.value)
                   & (store.AppliedEntry.terminal_id != LEDGER_TERMINAL_ID) & where)
            .order_by(store.AppliedEntry.id))
    out = []
    for row in rows:
        payload = cbor2.loads(bytes(row.payload))  # tier_upgrade carries no personal fields
        out.append(UpgradeEntry(uuid=str(row.uuid), terminal_id=str(row.terminal_id), seq=int(row.seq),
                                wall_ms=int(row.wall_ms), member_id=str(payload.get("member", "")),
                                card_id=str(payload.get("card", "")), from_tier=str(payload.get("from", "")),
                                to_tier=str(payload.get("to", ""))))
    return out


def new_card_answer(ledger: Ledger, caller: Caller, *, request_id: str, card_id: str, nonce: bytes) -> dict[str, Any]:
    """The signed answer to a terminal's new-card request; ``RequestRefused`` with a reason otherwise."""
    with store.atomic_write():
        card = _issue_once(ledger, caller, request_id, card_id)
    admin.audit_event("card_upgrade_issue", card.card_id, actor=f"terminal:{caller.terminal_id}",
                      request=request_id, replaced=card_id, tier=card.tier)
    return new_card_fields(card, caller.terminal_id, nonce, ledger.keys.root())


def _issue_once(ledger: Ledger, caller: Caller, request_id: str, card_id: str) -> NewCard:
    done = CardRequest.get_or_none((CardRequest.terminal_id == caller.terminal_id)
                                   & (CardRequest.request_id == request_id))
    if done is not None:
        if done.old_card != card_id:
            raise RequestRefused(409, "request_mismatch", f"request {request_id} was made for another card")
        return _answer(done)
    joined = signup.signup_of(caller.terminal_id, request_id)
    if joined is not None:
        return _issue_for_signup(ledger, caller, request_id, card_id, joined)
    entries = _upgrade_entries((store.AppliedEntry.uuid == request_id)
                               & (store.AppliedEntry.terminal_id == caller.terminal_id))
    entry = entries[0] if entries else None
    if entry is None:
        raise RequestRefused(409, "upgrade_not_synced",
                             f"the ledger has no tier upgrade or sign-up {request_id} from terminal "
                             f"{caller.terminal_id}; sync first, then ask again")
    if entry.card_id != card_id:
        raise RequestRefused(409, "request_mismatch", f"upgrade {request_id} was made with another card")
    old = store.Card.get_or_none(store.Card.card_id == card_id)
    if old is None or str(old.member_id) != entry.member_id:
        raise RequestRefused(409, "unknown_card", f"card {card_id} is not a card of member {entry.member_id}")
    if old.status not in (CardStatus.ACTIVE.value, CardStatus.ON_HOLD.value):
        raise RequestRefused(409, "card_not_active",
                             f"card {card_id} is {old.status}; an admin can issue a new card at the ledger")
    tier = Tier(entry.to_tier)
    if tier.rank <= Tier(str(old.tier)).rank:
        raise RequestRefused(409, "tier_not_higher", f"card {card_id} is already of tier {old.tier}")
    issued = admin.replace_card(card_id, tier, f"terminal:{caller.terminal_id}")
    sealed = None
    if issued.card_private_key is not None:
        seal = store.TerminalSealKey.get_or_none(store.TerminalSealKey.terminal_id == caller.terminal_id)
        if seal is None:
            raise RequestRefused(409, "no_member_key", f"terminal {caller.terminal_id} has no member key to seal "
                                                       "the new card's key to; re-enroll it")
        sealed = seal_card_key(issued.card_private_key, terminal_id=caller.terminal_id, request=request_id,
                               suite=str(seal.suite), terminal_public_key=bytes(seal.public_key))
    row = CardRequest.create(request_id=request_id, terminal_id=caller.terminal_id, member_id=entry.member_id,
                             old_card=card_id, new_card=issued.card_id, tier=tier.value, token=issued.token,
                             sealed_key=sealed, issued_ms=ledger.now_ms())
    return _answer(row)


def _issue_for_signup(ledger: Ledger, caller: Caller, request_id: str, card_id: str,
                      joined: signup.SignupRecord) -> NewCard:
    """The first card of a member signed up at the till (attached to the member a merge resolved to)."""
    if card_id:
        raise RequestRefused(409, "request_mismatch", f"sign-up {request_id} replaces no card")
    issued = admin.issue_card(str(joined.member_id), actor=f"terminal:{caller.terminal_id}")
    row = CardRequest.create(request_id=request_id, terminal_id=caller.terminal_id, member_id=str(joined.member_id),
                             old_card="", new_card=issued.card_id, tier=issued.tier.value, token=issued.token,
                             sealed_key=None, issued_ms=ledger.now_ms())
    return _answer(row)


def _answer(row: CardRequest) -> NewCard:
    return NewCard(request=str(row.request_id), old_card=str(row.old_card), card_id=str(row.new_card),
                   member_id=str(row.member_id), tier=str(row.tier), token=bytes(row.token),
                   sealed_key=bytes(row.sealed_key) if row.sealed_key is not None else None)


def pending_requests(member_id: str | None = None) -> list[dict[str, Any]]:
    """Upgrades journaled at terminals whose new card is not issued yet: the entry, the old card still active
    and below the tier asked for, and no card issued for it online. Oldest first."""
    where = store.AppliedEntry.member_id == member_id if member_id is not None else peewee.SQL("1 = 1")
    issued = {(str(r.terminal_id), str(r.request_id))
              for r in CardRequest.select(CardRequest.terminal_id, CardRequest.request_id)}
    out = []
    for entry in _upgrade_entries(where):
        if (entry.terminal_id, entry.uuid) in issued:
            continue
        card = store.Card.get_or_none(store.Card.card_id == entry.card_id)
        if card is None or card.status not in (CardStatus.ACTIVE.value, CardStatus.ON_HOLD.value):
            continue
        try:
            if Tier(str(card.tier)).rank >= Tier(entry.to_tier).rank:
                continue
        except ValueError:
            continue
        out.append({"kind": "upgrade", "request": entry.uuid, "terminal_id": entry.terminal_id, "seq": entry.seq,
                    "asked_ms": entry.wall_ms, "member_id": entry.member_id, "card_id": entry.card_id,
                    "card_tier": str(card.tier), "tier": entry.to_tier})
    for joined in signup.signups():
        if ((joined["terminal_id"], joined["entry"]) in issued
                or (member_id is not None and joined["member_id"] != member_id)):
            continue
        out.append({"kind": "signup", "request": joined["entry"], "terminal_id": joined["terminal_id"], "seq": None,
                    "asked_ms": joined["at_ms"], "member_id": joined["member_id"], "card_id": "",
                    "card_tier": "", "tier": Tier.STANDARD.value})
    return out


def issued_requests(member_id: str | None = None) -> list[dict[str, Any]]:
    """New cards issued online for terminals' upgrades (newest first)."""
    query = CardRequest.select().order_by(CardRequest.issued_ms.desc())
    if member_id is not None:
        query = query.where(CardRequest.member_id == member_id)
    return [{"request": str(r.request_id), "terminal_id": str(r.terminal_id), "member_id": str(r.member_id),
             "old_card": str(r.old_card), "new_card": str(r.new_card), "tier": str(r.tier),
             "issued_ms": int(r.issued_ms)} for r in query]
