"""A member's money state and the fold that moves it, one journal entry at a time.

``apply_entry`` is the single definition of what an entry does to a member (payload schema: docs/internals.md).
The terminal folds its unsynced entries over the cached snapshot with it, and the ledger folds every applied
entry with it, so the two cannot disagree. It is exact: it records what the entries say and never clamps
(a balance driven below zero by offline spending at two terminals must show up as such at the ledger).
It is total: kinds that do not move money, points, tier or coupons return the state unchanged; a malformed
payload of a money kind raises ``DomainError(code="bad_entry")``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from cardkit.core.members import Tier
from cardkit.core.money import Money
from cardkit.errors import DomainError
from cardkit.journal import EntryKind

MONEY_KINDS = frozenset({EntryKind.SALE, EntryKind.TOPUP, EntryKind.REFUND, EntryKind.VOID, EntryKind.REDEEM,
                         EntryKind.TIER_UPGRADE, EntryKind.MEMBERSHIP_FEE})
"""Entry kinds that change a member's state; every other kind leaves it as it is."""


@dataclass(frozen=True, slots=True)
class MemberState:
    """Balance and points of one member, in integer minor units of ``currency`` and integer points."""

    member_id: str
    currency: str
    balance: int = 0
    points: int = 0
    tier: Tier = Tier.STANDARD
    yearly_spend: int = 0
    used_coupons: frozenset[str] = frozenset()
    fee_paid_until: int = 0
    """Epoch seconds until which a paid membership (``membership_fee``) runs; 0 when never paid."""

    @property
    def balance_money(self) -> Money:
        return Money(self.balance, self.currency)

    @property
    def yearly_spend_money(self) -> Money:
        return Money(self.yearly_spend, self.currency)

    def to_mapping(self) -> dict[str, Any]:
        return {
            "member": self.member_id, "cur": self.currency, "balance": self.balance, "points": self.points,
            "tier": self.tier.value, "yearly_spend": self.yearly_spend,
            "used_coupons": sorted(self.used_coupons), "fee_paid_until": self.fee_paid_until,
        }

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> MemberState:
        """The inverse of :meth:`to_mapping` (member snapshots travel in this form)."""
        p = _Payload("snapshot", data)
        return cls(
            member_id=p.text("member"), currency=p.text("cur"), balance=p.integer("balance"),
            points=p.integer("points"), tier=p.tier("tier"), yearly_spend=p.integer("yearly_spend"),
            used_coupons=frozenset(p.texts("used_coupons")),
            fee_paid_until=p.integer("fee_paid_until") if "fee_paid_until" in data else 0,
        )


PROBLEMS = {"not_integer": "is missing or not a whole number", "negative": "is negative",
            "not_text": "is missing or not text", "not_ids": "is missing or not a list of ids",
            "not_tier": "is not a tier"}
"""What can be wrong with one field of an entry (the ``problem`` of a ``bad_entry`` decline)."""


class _Payload:
    """Typed access to payload fields; anything missing or of the wrong type is a bad entry."""

    def __init__(self, kind: str, payload: Mapping[str, Any]) -> None:
        if type(payload) is not dict and not isinstance(payload, Mapping):  # dict first: the ABC check is slow
            raise DomainError(f"{kind} entry has no payload table", code="bad_entry", sentence="entry_no_payload",
                              params={"kind": kind})
        self.kind = kind
        self.payload = payload

    def bad(self, key: str, problem: str) -> DomainError:
        """``problem``: a key of ``PROBLEMS``, which says it in the English message."""
        return DomainError(f"{self.kind} entry field {key!r} {PROBLEMS[problem]}", code="bad_entry",
                           sentence="entry_field", params={"kind": self.kind, "field": key, "problem": problem})

    def integer(self, key: str, *, non_negative: bool = False) -> int:
        value = self.payload.get(key)
        if type(value) is not int:
            raise self.bad(key, "not_integer")
        if non_negative and value < 0:
            raise self.bad(key, "negative")
        return value

    def optional_integer(self, key: str) -> int:
        """A non-negative whole number that older payloads may lack (then 0)."""
        if key not in self.payload:
            return 0
        return self.integer(key, non_negative=True)

    def text(self, key: str) -> str:
        value = self.payload.get(key)
        if type(value) is not str and not isinstance(value, str):
            raise self.bad(key, "not_text")
        return value

    def texts(self, key: str) -> list[str]:
        value = self.payload.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.bad(key, "not_ids")
        return list(value)

    def tier(self, key: str) -> Tier:
        try:
            return Tier(self.text(key))
        except ValueError:
            raise self.bad(key, "not_tier") from None


def _check_member(state: MemberState, p: _Payload) -> None:
    if p.text("member") != state.member_id:
        raise DomainError(
            f"{p.kind} entry is for member {p.payload.get('member')!r}, not {state.member_id!r}", code="bad_entry",
            sentence="entry_member", params={"kind": p.kind, "member": str(p.payload.get("member")),
                                             "expected": state.member_id},
        )


def _check_currency(state: MemberState, p: _Payload) -> None:
    if p.text("cur") != state.currency:
        raise DomainError(
            f"{p.kind} entry is in {p.payload.get('cur')!r} but the member's account is in {state.currency}",
            code="bad_entry", sentence="entry_currency",
            params={"kind": p.kind, "given": str(p.payload.get("cur")), "currency": state.currency},
        )


def apply_entry(state: MemberState, kind: str, payload: Mapping[str, Any]) -> MemberState:
    """The member state after one entry. Pure and exact; see the module docstring."""
    if kind not in MONEY_KINDS:
        return state
    p = _Payload(kind, payload)
    _check_member(state, p)
    if kind == EntryKind.SALE:
        # The commonest entry by far: the state is built field by field (``replace`` introspects the dataclass
        # each call, a third of the fold's time at the ledger).
        _check_currency(state, p)
        net = p.integer("net", non_negative=True)
        coupons = p.texts("coupons")
        return MemberState(
            state.member_id, state.currency,
            state.balance - p.integer("sv", non_negative=True),
            state.points + p.integer("pts_earn", non_negative=True) - p.integer("pts_redeem", non_negative=True),
            state.tier, state.yearly_spend + net,
            state.used_coupons.union(coupons) if coupons else state.used_coupons,
            state.fee_paid_until,
        )
    if kind == EntryKind.TOPUP:
        _check_currency(state, p)
        return MemberState(
            state.member_id, state.currency,
            state.balance + p.integer("amount", non_negative=True) + p.integer("bonus", non_negative=True),
            state.points, state.tier, state.yearly_spend, state.used_coupons, state.fee_paid_until,
        )
    if kind == EntryKind.REFUND:
        _check_currency(state, p)
        return replace(
            state,
            balance=state.balance + p.integer("sv", non_negative=True),
            points=state.points + p.integer("pts_back", non_negative=True)
            - p.integer("pts_rev", non_negative=True),
            yearly_spend=state.yearly_spend - p.integer("amount", non_negative=True),
        )
    if kind == EntryKind.VOID:
        _check_currency(state, p)
        return replace(
            state,
            balance=state.balance + p.integer("sv"),  # signed: + for a voided sale, - for a voided top-up
            points=state.points + p.integer("pts_back", non_negative=True)
            - p.integer("pts_rev", non_negative=True),
            yearly_spend=state.yearly_spend - p.optional_integer("spend"),
            used_coupons=state.used_coupons - frozenset(p.texts("coupons_back")),
        )
    if kind == EntryKind.REDEEM:
        return replace(state, points=state.points - p.integer("pts", non_negative=True))
    if kind == EntryKind.TIER_UPGRADE:
        return replace(state, tier=p.tier("to"))
    # membership_fee: a paid year of a tier; paid from stored value when the tender says so.
    _check_currency(state, p)
    amount = p.integer("amount", non_negative=True)
    tier = p.tier("tier")
    return replace(
        state,
        balance=state.balance - (amount if p.text("tender") == "sv" else 0),
        tier=tier if tier.rank > state.tier.rank else state.tier,
        fee_paid_until=max(state.fee_paid_until, p.integer("until", non_negative=True)),
    )


def fold(state: MemberState, entries: Iterable[tuple[str, Mapping[str, Any]]]) -> MemberState:
    """Apply ``(kind, payload)`` pairs in order."""
    for kind, payload in entries:
        state = apply_entry(state, kind, payload)
    return state
