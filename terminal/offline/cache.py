"""Member snapshots from the ledger, cached on the terminal with PII encrypted.

The cache holds what the ledger last said. The current picture -- snapshot plus this terminal's entries the
ledger has not folded in yet -- is computed by the counter with ``cardkit.core.state.apply_entry`` over
``Journal.entries_for_member(..., newest_first=False)``; this module only stores and returns snapshots.

Snapshots arrive as deltas (``GET /v1/pull?members=V``): members present in the list are replaced, others are
left alone, and a member dict with ``"deleted": True`` is removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cbor2
from peewee import SqliteDatabase

from cardkit.core.money import Money
from cardkit.errors import JournalError
from terminal.offline.db import db_path, guard
from terminal.offline.models import MemberCardRow, MemberRow, SyncStateRow
from terminal.offline.pii import PiiCipher
from terminal.offline.state import MEMBERS_VERSION, SyncState

_TABLE = "member_cache"
LOOKED_UP_PREFIX = "members.looked_up."
"""+ a member id: this terminal's last entry the looked-up snapshot counts (``put_looked_up``); cleared when a pull
brings the member, whose snapshot then counts entries up to ``MEMBERS_SYNCED_SEQ`` like the others."""
_PII_TEXT = ("name", "phone", "email", "notes")


@dataclass(frozen=True, slots=True)
class CachedMember:
    """One member as of the last applied snapshot. Amounts are integer minor units of ``currency``."""

    member_id: str
    name: str
    phone: str
    email: str
    notes: str
    prefs: dict[str, Any]
    tier: str
    balance: int
    points: int
    currency: str
    coupons: list[dict[str, Any]]
    card_ids: tuple[str, ...]
    yearly_spend: int
    snapshot_version: int

    @property
    def balance_money(self) -> Money:
        return Money(self.balance, self.currency)

    @property
    def yearly_spend_money(self) -> Money:
        return Money(self.yearly_spend, self.currency)


def _int_field(member: dict[str, Any], name: str, default: int | None = None) -> int:
    value = member.get(name, default)
    if type(value) is not int:  # bool and float refused: amounts are integer minor units
        raise JournalError(f"member snapshot field {name!r} of {member.get('member_id')!r} must be an integer")
    return value


class MemberCache:
    def __init__(self, db: SqliteDatabase, pii: PiiCipher, state: SyncState) -> None:
        self._db = db
        self._pii = pii
        self._state = state
        self._path = db_path(db)

    @property
    def snapshot_version(self) -> int:
        """Version of the last applied member snapshot (0: none yet)."""
        return int(self._state.get(MEMBERS_VERSION, 0))

    def apply_snapshot(self, members: list[dict[str, Any]], version: int) -> bool:
        """Store a snapshot (delta) atomically; a version older than the one applied is ignored (returns False).

        Re-applying the current version is allowed (an interrupted pull may be retried).
        """
        if version < self.snapshot_version:
            return False
        latest: dict[str, dict[str, Any]] = {}
        for member in members:  # a member listed twice in one delta: the later entry wins
            member_id = member.get("member_id") if isinstance(member, dict) else None
            if not isinstance(member_id, str) or not member_id:
                raise JournalError("a member snapshot entry has no member_id; nothing was applied")
            latest[member_id] = member
        rows: list[dict[str, Any]] = []
        cards: list[dict[str, str]] = []
        deleted: list[str] = []
        for member_id, member in latest.items():
            if member.get("deleted"):
                deleted.append(member_id)
                continue
            rows.append(self._encode(member, member_id, version))
            card_ids = member.get("card_ids", [])
            if not isinstance(card_ids, (list, tuple)) or not all(isinstance(c, str) and c for c in card_ids):
                raise JournalError(f"member snapshot card_ids of {member_id!r} must be a list of card ids")
            cards.extend({"card_id": card, "member_id": member_id} for card in card_ids)
        touched = [row["member_id"] for row in rows] + deleted
        with guard(self._path, "saving member snapshots"), self._db.atomic("IMMEDIATE"):
            if version < self.snapshot_version:  # re-checked under the write lock: another pull may have won
                return False
            for start in range(0, len(touched), 500):  # SQLite caps bound parameters per statement
                ids = touched[start : start + 500]
                MemberCardRow.delete().where(MemberCardRow.member_id.in_(ids)).execute(self._db)
                MemberRow.delete().where(MemberRow.member_id.in_(ids)).execute(self._db)
            for start in range(0, len(rows), 50):
                MemberRow.insert_many(rows[start : start + 50]).execute(self._db)
            for start in range(0, len(cards), 200):
                # A card moved to another member in this delta: the newest snapshot wins.
                MemberCardRow.replace_many(cards[start : start + 200]).execute(self._db)
            self._forget_looked_up(touched)
            self._state.set(MEMBERS_VERSION, version)
        return True

    # -- members looked up online (members at every store) ---------------------------------------------------
    def put_looked_up(self, member: dict[str, Any], version: int, folded_seq: int) -> None:
        """Cache one member the ledger answered a look-up with; ``folded_seq`` is this terminal's last entry the
        snapshot counts (the counter folds only later ones). The pulled members' version is left alone."""
        member_id = member.get("member_id")
        if not isinstance(member_id, str) or not member_id or member.get("deleted"):
            raise JournalError("a looked-up member has no member_id; nothing was cached")
        row = self._encode(member, member_id, version)
        card_ids = member.get("card_ids", [])
        if not isinstance(card_ids, (list, tuple)) or not all(isinstance(c, str) and c for c in card_ids):
            raise JournalError(f"member snapshot card_ids of {member_id!r} must be a list of card ids")
        with guard(self._path, "saving a looked-up member"), self._db.atomic("IMMEDIATE"):
            MemberCardRow.delete().where(MemberCardRow.member_id == member_id).execute(self._db)
            MemberRow.delete().where(MemberRow.member_id == member_id).execute(self._db)
            MemberRow.insert(row).execute(self._db)
            if card_ids:
                MemberCardRow.replace_many([{"card_id": c, "member_id": member_id} for c in card_ids]
                                           ).execute(self._db)
            self._state.set(LOOKED_UP_PREFIX + member_id, folded_seq)

    def looked_up_seq(self, member_id: str) -> int | None:
        """The folded seq of a member cached by a look-up (None: not looked up, or a pull brought them since)."""
        value = self._state.get(LOOKED_UP_PREFIX + member_id)
        return value if type(value) is int else None

    def _forget_looked_up(self, member_ids: list[str]) -> None:
        with guard(self._path, "reading the member cache"):
            keys = [str(row.key) for row in SyncStateRow.select(SyncStateRow.key)
                    .where(SyncStateRow.key.startswith(LOOKED_UP_PREFIX)).bind(self._db)]
        gone = {LOOKED_UP_PREFIX + m for m in member_ids} & set(keys)
        for key in sorted(gone):
            self._state.delete(key)

    def _encode(self, member: dict[str, Any], member_id: str, version: int) -> dict[str, Any]:
        def enc_text(column: str) -> bytes:
            value = member.get(column) or ""
            if not isinstance(value, str):
                raise JournalError(f"member snapshot field {column!r} of {member_id!r} must be text")
            return self._pii.encrypt_text(value, table=_TABLE, column=f"{column}_enc", row_id=member_id)

        currency = str(member.get("currency", "CNY"))
        Money(0, currency)  # refuses unknown currencies before anything is stored
        prefs = member.get("prefs") or {}
        coupons = member.get("coupons") or []
        if not isinstance(prefs, dict):
            raise JournalError(f"member snapshot prefs of {member_id!r} must be a mapping")
        if not isinstance(coupons, (list, tuple)) or not all(isinstance(c, dict) for c in coupons):
            raise JournalError(f"member snapshot coupons of {member_id!r} must be a list of coupon records")
        return {
            "member_id": member_id,
            "tier": str(member.get("tier", "standard")),
            "balance": _int_field(member, "balance", 0),
            "points": _int_field(member, "points", 0),
            "currency": currency,
            "coupons": cbor2.dumps(list(coupons), canonical=True),
            "yearly_spend": _int_field(member, "yearly_spend", 0),
            "snapshot_version": version,
            **{f"{column}_enc": enc_text(column) for column in _PII_TEXT},
            "prefs_enc": self._pii.encrypt_value(dict(prefs), table=_TABLE,
                                                 column="prefs_enc", row_id=member_id),
        }

    def _decode(self, row: MemberRow, card_ids: tuple[str, ...]) -> CachedMember:
        member_id = str(row.member_id)

        def dec_text(column: str) -> str:
            return self._pii.decrypt_text(bytes(getattr(row, f"{column}_enc")), table=_TABLE,
                                          column=f"{column}_enc", row_id=member_id)

        return CachedMember(
            member_id=member_id, name=dec_text("name"), phone=dec_text("phone"), email=dec_text("email"),
            notes=dec_text("notes"),
            prefs=dict(self._pii.decrypt_value(bytes(row.prefs_enc), table=_TABLE, column="prefs_enc",
                                               row_id=member_id)),
            tier=str(row.tier), balance=int(row.balance), points=int(row.points), currency=str(row.currency),
            coupons=list(cbor2.loads(bytes(row.coupons))), card_ids=card_ids,
            yearly_spend=int(row.yearly_spend), snapshot_version=int(row.snapshot_version),
        )

    def get(self, member_id: str) -> CachedMember | None:
        with guard(self._path, "reading the member cache"):
            row = MemberRow.select().where(MemberRow.member_id == member_id).bind(self._db).first()
            if row is None:
                return None
            cards = tuple(sorted(
                str(card.card_id) for card in
                MemberCardRow.select().where(MemberCardRow.member_id == member_id).bind(self._db)
            ))
        return self._decode(row, cards)

    def by_card(self, card_id: str) -> CachedMember | None:
        with guard(self._path, "reading the member cache"):
            link = MemberCardRow.select().where(MemberCardRow.card_id == card_id).bind(self._db).first()
        return self.get(str(link.member_id)) if link is not None else None

    def member_ids(self) -> list[str]:
        with guard(self._path, "reading the member cache"):
            rows = MemberRow.select(MemberRow.member_id).order_by(MemberRow.member_id).bind(self._db)
            return [str(row.member_id) for row in rows]

    def count(self) -> int:
        with guard(self._path, "reading the member cache"):
            return int(MemberRow.select().bind(self._db).count())

