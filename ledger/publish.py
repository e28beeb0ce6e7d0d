"""The signed documents terminals pull: trust list, revocation deltas, rules, member snapshots.

All are COSE_Sign1 by the ledger root key, signed by the kernel's one implementation of each format (the
terminal checks them with the same modules):
- trust list: ``cardkit.cards.trust`` (version = the ``trust`` counter);
- revocation delta: ``cardkit.cards.revocation`` from version V to the ``revocations`` counter;
- rules: ``cardkit.pulldocs.sign_rules_document`` of the program's rules with the overrides of the terminal's
  store's merchant applied (``rules_for_store``), whose ``version`` is that store's rules version
  (``ledger.merchants.rules``);
- member snapshots: ``cardkit.pulldocs.sign_member_snapshot`` of a ``MemberSnapshot`` holding every member of
  the store changed after S (S = 0: all), plus ``{"member_id": id, "deleted": true}`` for members who moved to
  another store after S. Each snapshot: ``member_id, name, phone, email, notes, prefs, tier, balance,
  points, currency, yearly_spend, coupons, card_ids, state`` — amounts in minor units, ``state`` the
  ``MemberState.to_mapping()`` the terminal folds its unsynced entries over, ``coupons`` the unused ones (each
  ``cardkit.pulldocs.coupon_to_mapping``).
A terminal gets its member snapshots sealed to the HPKE key it registered at enrollment, then signed
(``members_document``, ``cardkit.pulldocs.seal_member_snapshot``); ``ledger.enroll.members_document`` chooses.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from peewee import SQL, fn

from cardkit.cards.revocation import RevocationDelta, sign_revocation_delta
from cardkit.cards.trust import TrustList, sign_trust_list
from cardkit.core.members import Coupon
from cardkit.core.money import Money
from cardkit.core.rules import DEFAULT_RULES, Rules
from cardkit.pulldocs import (
    MemberSnapshot,
    coupon_to_mapping,
    seal_member_snapshot,
    sign_member_snapshot,
    sign_rules_document,
)
from ledger import keys as ledger_keys
from ledger import pii, projection, store
from ledger.home import Ledger
from ledger.merchants import rules as merchant_rules
from ledger.merchants.overrides import rules_for_merchant


def trust_version() -> int:
    return store.current("trust")


def trust_list(ledger: Ledger) -> TrustList:
    return TrustList(version=trust_version(), issuer=ledger.issuer,
                     keys=tuple(ledger_keys.issuer_keys(ledger.issuer)))


def signed_trust_list(ledger: Ledger) -> bytes:
    return sign_trust_list(trust_list(ledger), ledger.keys.root())


# -- revocations ----------------------------------------------------------------------------------------------
def revocation_version() -> int:
    return store.current("revocations")


def revocation_delta(since: int) -> RevocationDelta:
    """Each card changed after ``since`` with its latest status. A version past ours means a stranger's list:
    the delta then starts from 0 (the terminal rebuilds)."""
    to_version = revocation_version()
    if since > to_version:
        since = 0
    latest: dict[str, store.Revocation] = {}
    query = store.Revocation.select().where(store.Revocation.version > since).order_by(store.Revocation.version)
    for row in query.iterator():
        latest[str(row.card_id)] = row
    revoked: list[tuple[str, str]] = []
    held: list[str] = []
    unheld: list[str] = []
    for card_id, row in latest.items():
        if row.status == "revoked":
            revoked.append((card_id, str(row.reason) or "revoked"))
        elif row.status == "on_hold":
            held.append(card_id)
        elif since:  # lifting a hold the terminal never had is pointless from version 0
            unheld.append(card_id)
    return RevocationDelta(from_version=since, to_version=to_version, revoked=tuple(revoked), held=tuple(held),
                           unheld=tuple(unheld))


def signed_revocation_delta(ledger: Ledger, since: int) -> bytes:
    return sign_revocation_delta(revocation_delta(since), ledger.keys.root())


# -- rules ----------------------------------------------------------------------------------------------------
def rules_version() -> int:
    row = store.RulesVersion.select().order_by(store.RulesVersion.version.desc()).first()
    return int(row.version) if row else 0


def current_rules() -> Rules:
    """The latest loaded rules with the ledger's version number (the defaults as version 1 before any load)."""
    row = store.RulesVersion.select().order_by(store.RulesVersion.version.desc()).first()
    if row is None:
        return Rules.from_mapping({**DEFAULT_RULES, "version": 1})
    return Rules.from_mapping({**row.mapping, "version": int(row.version)})


def rules_for_store(store_id: str | None) -> Rules:
    """The rules ``store_id``'s terminals get: the program's with the overrides of the store's merchant applied,
    under the store's rules version (``ledger.merchants.rules``); the program's own for a store of no merchant."""
    program = current_rules()
    if store_id is None:
        return program
    part = merchant_rules.store_rules(store_id)
    if part.merchant_id is None:
        return program
    return dataclasses.replace(rules_for_merchant(program, part.overrides, part.merchant_id),
                               version=program.version + part.stamp)


def store_rules_version(store_id: str | None) -> int:
    """The version of the rules ``store_id``'s terminals get (the defaults count as program version 1)."""
    program = max(rules_version(), 1)
    if store_id is None:
        return program
    return program + merchant_rules.store_rules(store_id).stamp


def signed_rules(ledger: Ledger, store_id: str | None = None) -> bytes:
    """The signed rules for ``store_id``'s terminals (None: the program's own)."""
    return sign_rules_document(rules_for_store(store_id), ledger.keys.root())


# -- member snapshots -----------------------------------------------------------------------------------------
def members_version() -> int:
    return store.current("members")


SNAPSHOT_CHUNK = 500  # members per round of bulk queries


def member_snapshots(members: list[store.Member], now_s: int) -> list[dict[str, Any]]:
    """Snapshots of ``members`` with three queries per chunk (projections, coupons, cards), not three each."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(members), SNAPSHOT_CHUNK):
        chunk = members[start:start + SNAPSHOT_CHUNK]
        ids = [m.member_id for m in chunk]
        states = {row.member_id: projection.state_from_row(row) for row in
                  store.MemberProjection.select().where(store.MemberProjection.member_id.in_(ids))}
        coupons: dict[str, list[store.Coupon]] = {}
        for c in store.Coupon.select().where(store.Coupon.member_id.in_(ids)).order_by(store.Coupon.coupon_id):
            coupons.setdefault(c.member_id, []).append(c)
        funders = merchant_rules.merchant_funders([c.coupon_id for rows in coupons.values() for c in rows])
        cards: dict[str, list[str]] = {}
        for card in (store.Card.select(store.Card.card_id, store.Card.member_id)
                     .where(store.Card.member_id.in_(ids) & store.Card.status.in_(["active", "on_hold"]))
                     .order_by(store.Card.issued_at, store.Card.card_id)):
            cards.setdefault(card.member_id, []).append(card.card_id)
        for member in chunk:
            state = states.get(member.member_id) or projection.opening_state(member)
            details = pii.details_of(member)  # decrypted only to be signed (and sealed) for the member's store
            out.append({
                "member_id": member.member_id, "name": details.name, "phone": details.phone,
                "email": details.email, "notes": details.notes, "prefs": dict(details.prefs), "tier": state.tier.value,
                "balance": state.balance, "points": state.points, "currency": state.currency,
                "yearly_spend": state.yearly_spend,
                "coupons": [coupon_mapping(c, funders.get(c.coupon_id)) for c in coupons.get(member.member_id, [])
                            if c.coupon_id not in state.used_coupons and int(c.valid_until) > now_s],
                "card_ids": cards.get(member.member_id, []),
                "state": state.to_mapping(),
            })
    return out


def member_snapshot(member: store.Member, now_s: int) -> dict[str, Any]:
    return member_snapshots([member], now_s)[0]


def coupon_of(row: store.Coupon, funder: str | None = None) -> Coupon:
    """The kernel's coupon for a stored row (amounts in the row's currency), funded by ``funder`` (a merchant id;
    None: the program)."""
    currency = str(row.currency)
    return Coupon(
        coupon_id=str(row.coupon_id),
        amount_off=Money(int(row.amount_off), currency) if row.amount_off is not None else None,
        percent_off_bp=int(row.percent_off_bp) if row.percent_off_bp is not None else None,
        min_spend=Money(int(row.min_spend), currency) if row.min_spend is not None else None,
        valid_from=int(row.valid_from), valid_until=int(row.valid_until), stackable=bool(row.stackable),
        funder=funder,
    )


def coupon_mapping(row: store.Coupon, funder: str | None = None) -> dict[str, Any]:
    """A stored coupon as member snapshots carry it (with the merchant funding it, when one does)."""
    return coupon_to_mapping(coupon_of(row, funder), str(row.currency))


VISITOR_DAYS = 30
"""A member of another store who used a card at a store in the last this many days is in that store's pulls."""
DAY_MS = 86_400_000


def _visited(store_id: str, since_ms: int | None) -> Any:
    """An EXISTS over the applied entries: the member (of the outer query) used a card at a terminal of
    ``store_id`` (since ``since_ms`` when given). Correlated on the member id, which is indexed, so a delta reads
    only the changed members' entries."""
    terminals = store.Terminal.select(store.Terminal.terminal_id).where(store.Terminal.store_id == store_id)
    condition = ((store.AppliedEntry.member_id == store.Member.member_id)
                 & store.AppliedEntry.terminal_id.in_(terminals))
    if since_ms is not None:
        condition &= store.AppliedEntry.wall_ms >= since_ms
    return fn.EXISTS(store.AppliedEntry.select(SQL("1")).where(condition))


def members_delta(store_id: str, since: int, now_s: int, *, visitor_days: int = VISITOR_DAYS) -> MemberSnapshot:
    """The members of ``store_id``'s regular pulls changed after version ``since``: the store's own members and
    its recent visitors (members of other stores who used a card here in the last ``visitor_days`` days), plus
    ``deleted`` marks for members who moved away and for visitors who have not come back within that time.
    docs/sync-protocol.md, "Which members a store receives"."""
    version = members_version()
    if since > version:
        since = 0
    recent_ms = now_s * 1000 - visitor_days * DAY_MS
    changed = store.Member.version > since
    home = store.Member.store_id == store_id
    query = (store.Member.select().where(changed & (home | ((~home) & _visited(store_id, recent_ms))))
             .order_by(store.Member.member_id))
    members = member_snapshots(list(query), now_s)
    present = {m["member_id"] for m in members}
    moved = (store.MemberMove.select(store.MemberMove.member_id)
             .where((store.MemberMove.from_store == store_id) & (store.MemberMove.version > since))
             .order_by(store.MemberMove.id))
    # A member who left this store (and did not come back) is dropped from its terminals' caches; so is a visitor
    # whose last visit here is older than the window (only once they change: until then the cache is right).
    gone: set[str] = set()
    if since:
        gone = {row.member_id for row in moved} - present
        aged_out = (store.Member.select(store.Member.member_id)
                    .where(changed & (~home) & _visited(store_id, None) & ~_visited(store_id, recent_ms)))
        gone |= {row.member_id for row in aged_out} - present
    return MemberSnapshot(version=version, since=since, store_id=store_id,
                          members=members + [{"member_id": member_id, "deleted": True} for member_id in sorted(gone)])


def members_document(ledger: Ledger, snapshot: MemberSnapshot, seal_to: tuple[str, str, bytes] | None) -> bytes:
    """A member snapshot as pulled: root-signed, and sealed to one terminal's HPKE key when ``seal_to`` is
    ``(terminal_id, suite, public_key)`` (the key it registered at enrollment)."""
    if seal_to is None:
        return sign_member_snapshot(snapshot, ledger.keys.root())
    terminal_id, suite, public_key = seal_to
    return seal_member_snapshot(snapshot, ledger.keys.root(), terminal_id=terminal_id, suite=suite,
                                terminal_public_key=public_key)


# -- the ledger's versions, as a signed pull answer states them ---------------------------------------------------
def current_versions(store_id: str | None = None) -> dict[str, int]:
    """The version of each kind a terminal of ``store_id`` pulls (rules: the store's, ``store_rules_version``),
    read once per pull so the answer's null documents and its signed ``versions`` agree."""
    return {"trust": trust_version(), "revocations": revocation_version(), "rules": store_rules_version(store_id),
            "members": members_version()}
