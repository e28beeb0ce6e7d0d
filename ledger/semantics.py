"""What a journal entry means, checked before the ledger applies it.

A terminal's signature proves which terminal sent an entry, not that the entry makes sense: a stolen terminal key
signs whatever its holder wants (a top-up for another store's member, a void of a sale that never happened). So
every entry that passed the signature and the hash chain is judged here, and one that fails is *quarantined*:
journaled (the chain advances over it) but without any effect on balances, points or coupons.

The rules (docs/security.md, "Semantic checks and quarantine"), each with the code a quarantined entry records:

- ``integer_range``: every integer of the entry (``wall_ms``, ``mono_ns``, the payload at any depth) fits in a
  signed 64-bit integer, as the ledger's columns and every consumer assume.
- ``bad_time``: ``wall_ms`` is not more than ``clock_ahead_ms`` ahead of the ledger's clock when it arrives, and
  not earlier than the terminal's enrollment (less ``before_enrollment_ms`` of clock tolerance).
- ``unknown_kind``, ``bad_id``: the kind is one of ``EntryKind``; a member id is text of 1 to 40 printable
  characters, a card id 1 to 40, a cashier id at most 64 (they are stored in bounded columns).
- ``negative_amount``, ``amount_too_large``: money fields that must not be negative are not; every amount is at
  most ``max_amount_minor`` and every points figure at most ``max_points``.
- ``inconsistent``: a sale's figures agree (stored value ≤ net ≤ gross); a top-up's bonus is at most its amount.
- ``unknown_member``: a money entry or a member edit names a member the ledger knows. Members belong to the
  program and are served at every store of it (docs/sync-protocol.md, "Members at every store"); what binds an
  entry to its member is the card, checked next.
- ``unknown_card``, ``not_members_card``: the card of a money entry is a card the ledger issued, to that member.
- ``unknown_original``, ``original_mismatch``, ``already_voided``, ``already_refunded``, ``refund_exceeds``,
  ``void_mismatch``: a refund names an applied sale, a void an applied sale or top-up, of the same member and
  currency; a refund never returns more than is left of the sale (partial refunds add up: amount, stored value and
  redeemed points each), a void returns exactly what the original took and only while nothing was refunded.
- ``bad_entry``: the payload otherwise does not fold (``cardkit.core.state.apply_entry`` refuses it).
- ``coupon_not_accepted``: a sale uses only coupons the merchant of the terminal's store accepts, by that
  merchant's rules (the ones its terminals pull), for entries stamped after those rules took effect at the ledger.

Pure: callers load the facts (``TerminalFacts``, ``MemberFacts``, ``CardFacts``, ``Original``) and hand them in.
The ingest loads just what one batch names; ``ledger verify`` loads everything and re-checks all of history.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cardkit.core.rules import PROGRAM_FUNDER, MerchantRules
from cardkit.core.state import MONEY_KINDS, MemberState, apply_entry
from cardkit.errors import DomainError
from cardkit.journal import EntryKind, JournalEntry

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_MEMBER_ID = 40
MAX_CARD_ID = 40
MAX_CASHIER_ID = 64
MAX_REASON = 300
"""A reason is our own sentence with at most a few short ids in it; this bounds what is stored."""

KINDS = frozenset(k.value for k in EntryKind)
MEMBER_KINDS = MONEY_KINDS | {EntryKind.MEMBER_UPDATE.value}
"""Kinds that act on one member: the member must exist and be served at the terminal's store."""
CARD_KINDS = frozenset({EntryKind.SALE, EntryKind.TOPUP, EntryKind.REDEEM, EntryKind.MEMBERSHIP_FEE,
                        EntryKind.TIER_UPGRADE})
"""Kinds made with the member's card in hand; a refund or void may name the original's card instead."""

# Payload fields by kind: money that must not be negative, money that may be (a void of a top-up takes value back),
# and points figures.
_MONEY: dict[str, tuple[str, ...]] = {
    EntryKind.SALE: ("gross", "tier_disc", "coupon_disc", "pts_disc", "net", "sv"),
    EntryKind.TOPUP: ("amount", "bonus"),
    EntryKind.REFUND: ("amount", "sv"),
    EntryKind.VOID: ("spend",),
    EntryKind.MEMBERSHIP_FEE: ("amount",),
}
_SIGNED_MONEY: dict[str, tuple[str, ...]] = {EntryKind.VOID: ("sv",)}
_POINTS: dict[str, tuple[str, ...]] = {
    EntryKind.SALE: ("pts_earn", "pts_redeem"),
    EntryKind.REFUND: ("pts_back", "pts_rev"),
    EntryKind.VOID: ("pts_back", "pts_rev"),
    EntryKind.REDEEM: ("pts",),
}
_BOUNDS: dict[str, tuple[tuple[str, bool, bool], ...]] = {
    kind: tuple((name, False, False) for name in _MONEY.get(kind, ()))
    + tuple((name, True, False) for name in _SIGNED_MONEY.get(kind, ()))
    + tuple((name, False, True) for name in _POINTS.get(kind, ()))
    for kind in KINDS
}
"""Per kind: (field, may be negative, is points) of every figure ``_amounts`` bounds."""
_PRINTABLE_ID = re.compile(r"[!-~]+")
_MAX_WALK = 100_000
"""Most values looked at in one payload (the batch decoder bounds payloads long before this)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one entry may say. The defaults can be changed in the rules' ``[anomalies]`` table under the
    same names (``entry_max_amount_minor`` ...; ``ledger.anomaly.thresholds``)."""

    max_amount_minor: int = 10_000_000
    """Most minor units one entry may move (100,000.00 in a two-decimal currency)."""
    max_points: int = 100_000_000
    """Most points one entry may earn, redeem or return."""
    clock_ahead_ms: int = 86_400_000
    """How far ahead of the ledger's clock an entry's ``wall_ms`` may be when it arrives."""
    before_enrollment_ms: int = 86_400_000
    """How far before the terminal's enrollment an entry's ``wall_ms`` may be (clock tolerance)."""


@dataclass(frozen=True, slots=True)
class TerminalFacts:
    terminal_id: str
    store_id: str
    enrolled_ms: int | None
    merchant: MerchantRules | None = None
    """The coupon policy of the merchant the terminal's store belongs to (None: no merchant, or not needed)."""
    merchant_since_ms: int = 0
    """When that policy took effect at the ledger: entries stamped earlier were made under an older one."""


@dataclass(frozen=True, slots=True)
class MemberFacts:
    member_id: str
    currency: str


@dataclass(frozen=True, slots=True)
class CardFacts:
    card_id: str
    member_id: str


@dataclass(slots=True)
class Original:
    """An applied sale or top-up that a refund or void may name, with what was already given back of it."""

    kind: str
    member_id: str
    currency: str
    net: int = 0
    sv: int = 0
    pts_redeem: int = 0
    pts_earn: int = 0
    amount: int = 0
    bonus: int = 0
    refunded: int = 0
    refunded_sv: int = 0
    refunded_pts_back: int = 0
    voided: bool = False
    ambiguous: bool = False
    """Two applied entries carry this uuid: a refund or void naming it cannot say which one it means."""

    @classmethod
    def of(cls, kind: str, payload: Mapping[str, Any]) -> Original:
        get = _int_or_zero
        return cls(kind=kind, member_id=str(payload.get("member")), currency=str(payload.get("cur")),
                   net=get(payload, "net"), sv=get(payload, "sv"), pts_redeem=get(payload, "pts_redeem"),
                   pts_earn=get(payload, "pts_earn"), amount=get(payload, "amount"), bonus=get(payload, "bonus"))

    def reverse(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Count a refund or void of this original that was applied."""
        if kind == EntryKind.REFUND:
            self.refunded += _int_or_zero(payload, "amount")
            self.refunded_sv += _int_or_zero(payload, "sv")
            self.refunded_pts_back += _int_or_zero(payload, "pts_back")
        elif kind == EntryKind.VOID:
            self.voided = True


@dataclass(frozen=True, slots=True)
class Quarantine:
    """Why an entry was not applied: a stable ``code`` and one sentence for people."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class References:
    """What a batch names, so a caller can load just those facts."""

    member_ids: frozenset[str]
    card_ids: frozenset[str]
    original_uuids: frozenset[str]


def references(entries: Iterable[JournalEntry]) -> References:
    members: set[str] = set()
    cards: set[str] = set()
    originals: set[str] = set()
    for entry in entries:
        payload = entry.payload
        member, card = payload.get("member"), payload.get("card")
        if type(member) is str:
            members.add(member)
        if type(card) is str:
            cards.add(card)
        if entry.kind in (EntryKind.REFUND, EntryKind.VOID):
            orig = payload.get("orig")
            if isinstance(orig, str) and len(orig) <= 36:
                originals.add(orig)
    return References(frozenset(m for m in members if valid_id(m, MAX_MEMBER_ID)),
                      frozenset(c for c in cards if valid_id(c, MAX_CARD_ID)), frozenset(originals))


def valid_id(value: object, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and _PRINTABLE_ID.fullmatch(value) is not None


def _int_or_zero(payload: Mapping[str, Any], name: str) -> int:
    value = payload.get(name, 0)
    return value if type(value) is int else 0


def _shown(value: object, limit: int = 40) -> str:
    """An id for a reason sentence: printable, and short however long the entry's own value was."""
    text = value if isinstance(value, str) else repr(value)
    text = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return text + ("…" if (len(value) if isinstance(value, str) else len(repr(value))) > limit else "")


_FLAT = (str, bool, type(None), bytes)


def _out_of_range(value: Any) -> bool:
    """True when an integer anywhere in ``value`` does not fit in signed 64 bits (iterative: no recursion limit)."""
    if type(value) is int:
        return not INT64_MIN <= value <= INT64_MAX
    if type(value) is dict:  # the common payload: ints, texts and lists of them, checked without a stack
        nested = False
        for item in value.values():
            kind = type(item)
            if kind is int:
                if not INT64_MIN <= item <= INT64_MAX:
                    return True
            elif kind is list:
                for inner in item:
                    if type(inner) is int:
                        if not INT64_MIN <= inner <= INT64_MAX:
                            return True
                    elif type(inner) not in _FLAT:
                        nested = True
            elif kind not in _FLAT:
                nested = True
        if not nested:
            return False
    stack = [value]
    seen = 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > _MAX_WALK:
            return True  # far beyond any real payload: treat as out of bounds rather than walk on
        if type(item) is int:
            if not INT64_MIN <= item <= INT64_MAX:
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


@dataclass
class Checker:
    """Judges entries in the order the ledger would apply them; ``applied`` records what an accepted entry did,
    so later entries of the same batch (a sale and its refund) see it."""

    limits: Limits
    members: Mapping[str, MemberFacts]
    cards: Mapping[str, CardFacts]
    originals: dict[str, Original] = field(default_factory=dict)
    funders: Mapping[str, str] = field(default_factory=dict)
    """The merchant funding each coupon a sale names that a merchant funds (the others: the program)."""
    track: frozenset[str] | None = None
    """When set, only sales and top-ups with these uuids are remembered as originals (``ledger verify`` passes
    the uuids refunds and voids name, so a long history does not fill memory)."""

    # -- the whole entry -----------------------------------------------------------------------------------------
    def check(self, entry: JournalEntry, terminal: TerminalFacts, now_ms: int) -> Quarantine | None:
        """None when ``entry`` may be applied, else why not."""
        found = (self._generic(entry, terminal, now_ms)
                 or (self._member_entry(entry, terminal) if entry.kind in MEMBER_KINDS else None))
        if found is None and entry.kind == EntryKind.SALE and terminal.merchant is not None \
                and entry.wall_ms >= terminal.merchant_since_ms:
            found = self._coupons_accepted(entry.payload, terminal.merchant)
        return found

    def applied(self, entry: JournalEntry) -> None:
        """Record an entry that was applied: a sale or top-up becomes an original, a refund or void counts."""
        kind, payload = entry.kind, entry.payload
        if kind in (EntryKind.SALE, EntryKind.TOPUP):
            if self.track is not None and entry.uuid not in self.track:
                return
            if entry.uuid in self.originals:
                self.originals[entry.uuid].ambiguous = True
            else:
                self.originals[entry.uuid] = Original.of(kind, payload)
        elif kind in (EntryKind.REFUND, EntryKind.VOID):
            original = self.originals.get(str(payload.get("orig")))
            if original is not None:
                original.reverse(kind, payload)

    # -- every kind ----------------------------------------------------------------------------------------------
    def _generic(self, entry: JournalEntry, terminal: TerminalFacts, now_ms: int) -> Quarantine | None:
        wall, mono = entry.wall_ms, entry.mono_ns
        times_fit = (type(wall) is int and INT64_MIN <= wall <= INT64_MAX  # the usual case, without the walk's calls
                     and type(mono) is int and INT64_MIN <= mono <= INT64_MAX)
        if (not times_fit and (_out_of_range(wall) or _out_of_range(mono))) or _out_of_range(entry.payload):
            return Quarantine("integer_range", "an integer in the entry does not fit in 64 bits")
        if entry.kind not in KINDS:
            return Quarantine("unknown_kind", f"{_shown(entry.kind, 24)!r} is not a kind of entry")
        if entry.cashier_id is not None and not (isinstance(entry.cashier_id, str)
                                                 and len(entry.cashier_id) <= MAX_CASHIER_ID):
            return Quarantine("bad_id", f"cashier id {_shown(entry.cashier_id)!r} is longer than {MAX_CASHIER_ID}")
        member = entry.payload.get("member")
        if member is not None and not (isinstance(member, str) and member in self.members) \
                and not valid_id(member, MAX_MEMBER_ID):
            return Quarantine("bad_id", f"member id {_shown(member)!r} is not 1 to {MAX_MEMBER_ID} printable "
                                        "characters")
        ahead = entry.wall_ms - now_ms
        if ahead > self.limits.clock_ahead_ms:
            return Quarantine("bad_time", f"the entry is stamped {ahead // 60_000} minutes ahead of the ledger's "
                                          "clock")
        if terminal.enrolled_ms is not None and entry.wall_ms < terminal.enrolled_ms - self.limits.before_enrollment_ms:
            return Quarantine("bad_time", f"the entry is stamped {(terminal.enrolled_ms - entry.wall_ms) // 60_000} "
                                          f"minutes before terminal {terminal.terminal_id} was enrolled")
        return None

    # -- entries about one member --------------------------------------------------------------------------------
    def _member_entry(self, entry: JournalEntry, terminal: TerminalFacts) -> Quarantine | None:
        kind, p = entry.kind, entry.payload
        member_id = p.get("member")
        if not isinstance(member_id, str):
            return Quarantine("bad_entry", f"the {kind} names no member")
        member = self.members.get(member_id)
        if member is None:
            return Quarantine("unknown_member", f"member {_shown(member_id)} is not known to the ledger")
        if kind == EntryKind.MEMBER_UPDATE:
            return None
        found = self._card(kind, p, member_id) or self._amounts(kind, p)
        if found is not None:
            return found
        if not folds_plainly(kind, p, member.currency):
            try:  # the fold's own field checks (types, currency, tiers) on a state of this member
                apply_entry(MemberState(member_id=member_id, currency=member.currency), kind, p)
            except DomainError as exc:
                return Quarantine("bad_entry", _shown(str(exc), MAX_REASON))
        if kind in (EntryKind.REFUND, EntryKind.VOID):
            return self._reversal(kind, p, member)
        return None

    def _coupons_accepted(self, p: Mapping[str, Any], merchant: MerchantRules) -> Quarantine | None:
        """A sale uses only coupons the merchant of the terminal's store accepts (its rules as the terminal pulled
        them refuse the others; docs/merchants.md, "Rules at the counter")."""
        for coupon_id in p.get("coupons") or ():
            if type(coupon_id) is str and not merchant.accepts_coupon(self.funders.get(coupon_id)):
                funder = self.funders.get(coupon_id, PROGRAM_FUNDER)
                return Quarantine("coupon_not_accepted", f"coupon {_shown(coupon_id)} (funded by {funder}) is not "
                                                         f"accepted at merchant {merchant.merchant_id}'s stores")
        return None

    def _card(self, kind: str, p: Mapping[str, Any], member_id: str) -> Quarantine | None:
        card_id = p.get("card")
        if card_id is None and kind not in CARD_KINDS:
            return None  # a refund or void may leave the card to the original
        card = self.cards.get(card_id) if type(card_id) is str else None
        if card is None:
            if not valid_id(card_id, MAX_CARD_ID):
                return Quarantine("bad_id", f"card id {_shown(card_id)!r} is not 1 to {MAX_CARD_ID} printable "
                                            "characters")
            return Quarantine("unknown_card", f"card {card_id} was not issued by this ledger")
        if card.member_id != member_id:
            return Quarantine("not_members_card", f"card {card_id} belongs to another member, not {member_id}")
        return None

    def _amounts(self, kind: str, p: Mapping[str, Any]) -> Quarantine | None:
        money_limit, points_limit = self.limits.max_amount_minor, self.limits.max_points
        get = p.get
        for name, signed, points in _BOUNDS.get(kind, ()):
            value = get(name)
            if type(value) is not int or 0 <= value <= (points_limit if points else money_limit):
                continue  # within bounds; a missing or mistyped field is the fold's to refuse (bad_entry)
            if value < 0 and not signed:
                return Quarantine("negative_amount", f"the {kind} {name} is negative ({value})")
            limit = points_limit if points else money_limit
            if (-value if value < 0 else value) > limit:
                unit = " points" if points else ""
                return Quarantine("amount_too_large", f"the {kind} {name} {value} is beyond the limit of {limit}{unit}")
        if kind == EntryKind.SALE:
            gross, net, sv = _int_or_zero(p, "gross"), _int_or_zero(p, "net"), _int_or_zero(p, "sv")
            if not sv <= net <= gross:
                return Quarantine("inconsistent", f"the sale's figures do not agree (gross {gross}, net {net}, "
                                                  f"stored value {sv})")
        elif kind == EntryKind.TOPUP:
            amount, bonus = _int_or_zero(p, "amount"), _int_or_zero(p, "bonus")
            if bonus > amount:
                return Quarantine("inconsistent", "the top-up's bonus is larger than the top-up itself")
            if amount + bonus > money_limit:
                return Quarantine("amount_too_large", f"the top-up with its bonus is above the limit of {money_limit}")
        return None

    def _reversal(self, kind: str, p: Mapping[str, Any], member: MemberFacts) -> Quarantine | None:
        orig_uuid = p.get("orig")
        original = self.originals.get(orig_uuid) if isinstance(orig_uuid, str) else None
        if original is None or original.ambiguous:
            why = "names no applied operation" if original is None else "names an operation id used twice"
            return Quarantine("unknown_original", f"the {kind} {why} ({_shown(orig_uuid)})")
        allowed = (EntryKind.SALE,) if kind == EntryKind.REFUND else (EntryKind.SALE, EntryKind.TOPUP)
        if original.kind not in allowed:
            return Quarantine("original_mismatch", f"a {kind} cannot reverse a {original.kind}")
        if original.member_id != member.member_id or original.currency != member.currency:
            return Quarantine("original_mismatch", f"the {original.kind} {orig_uuid} belongs to another member")
        if original.voided:
            return Quarantine("already_voided", f"the {original.kind} {orig_uuid} was voided already")
        if kind == EntryKind.REFUND:
            return self._refund(p, original, str(orig_uuid))
        if original.refunded or original.refunded_sv or original.refunded_pts_back:
            return Quarantine("already_refunded", f"the sale {orig_uuid} was partly refunded; it cannot be voided")
        sv, pts_back = _int_or_zero(p, "sv"), _int_or_zero(p, "pts_back")
        expected = ((original.sv, original.pts_redeem) if original.kind == EntryKind.SALE
                    else (-(original.amount + original.bonus), 0))
        if (sv, pts_back) != expected:
            return Quarantine("void_mismatch", f"the void gives back stored value {sv} and {pts_back} points but the "
                                               f"{original.kind} took {expected[0]} and {expected[1]}")
        return None

    @staticmethod
    def _refund(p: Mapping[str, Any], original: Original, orig_uuid: str) -> Quarantine | None:
        amount, sv, pts_back = (_int_or_zero(p, n) for n in ("amount", "sv", "pts_back"))
        left = original.net - original.refunded
        left_sv = original.sv - original.refunded_sv
        left_pts = original.pts_redeem - original.refunded_pts_back
        if amount > left or sv > left_sv or pts_back > left_pts:
            return Quarantine("refund_exceeds", f"the refund ({amount}, stored value {sv}, {pts_back} points) is more "
                                                f"than is left of sale {orig_uuid} ({left}, stored value {left_sv}, "
                                                f"{left_pts} points)")
        return None


_FOLD_FIELDS: dict[str, tuple[str, ...]] = {
    EntryKind.SALE: ("net", "sv", "pts_earn", "pts_redeem"),
    EntryKind.TOPUP: ("amount", "bonus"),
    EntryKind.REFUND: ("sv", "pts_back", "pts_rev", "amount"),
}
"""The whole numbers ``apply_entry`` requires (not negative) of the common kinds, for ``folds_plainly``."""


def folds_plainly(kind: str, p: Mapping[str, Any], currency: str) -> bool:
    """A fast yes for the common kinds when ``apply_entry`` would accept the payload (its currency, its whole
    numbers, a sale's coupon list); anything else (False) is left to ``apply_entry`` itself, which says why.
    Folding each entry on a throw-away state cost a quarter of the ingest; tests hold the two to agree."""
    fields = _FOLD_FIELDS.get(kind)
    if fields is None or p.get("cur") != currency:
        return False
    for name in fields:
        value = p.get(name)
        if type(value) is not int or value < 0:
            return False
    if kind == EntryKind.SALE:
        coupons = p.get("coupons")
        return type(coupons) is list and all(type(c) is str for c in coupons)
    return True


def check_batch(entries: Iterable[JournalEntry], terminal: TerminalFacts, checker: Checker,
                now_ms: int) -> dict[int, Quarantine]:
    """Judge a batch's new entries in order: {seq: why} for those to quarantine; the rest are recorded as applied
    in ``checker`` as they pass, so later entries see them."""
    out: dict[int, Quarantine] = {}
    for entry in entries:
        verdict = checker.check(entry, terminal, now_ms)
        if verdict is None:
            checker.applied(entry)
        else:
            out[entry.seq] = verdict
    return out
