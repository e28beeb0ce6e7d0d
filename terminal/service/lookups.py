"""What the counter shows of a member and of a card without recording anything: the member view and history."""

from __future__ import annotations

from typing import Any

from cardkit.cards.verdict import CardClaims
from cardkit.core import loyalty
from cardkit.core.members import Coupon
from cardkit.pulldocs import coupon_from_mapping
from terminal.offline.cache import CachedMember
from terminal.offline.journal import Journal
from terminal.service.desk import Desk
from terminal.service.views import MemberView, OperationView, summarize, summary_phrase

HISTORY_LINES = 10


def held_coupons(cached: CachedMember | None) -> list[Coupon]:
    """The coupons in the member's last snapshot (used or not)."""
    return [coupon_from_mapping(c) for c in cached.coupons] if cached is not None else []


def member_view(desk: Desk, card: CardClaims) -> MemberView:
    """The member's figures, usable coupons, details and recent operations at this terminal."""
    fold, cached = desk.figures.fold(card.member_id, currency=desk.rules.currency, tier_hint=card.tier)
    state = fold.state
    now = desk.clock()
    usable = tuple(c for c in held_coupons(cached) if c.coupon_id not in state.used_coupons
                   and c.valid_from <= now <= c.valid_until
                   and (c.amount_off is None or c.amount_off.currency == state.currency))
    notes = fold.notes if fold.notes is not None else (cached.notes if cached is not None else "")
    prefs: dict[str, Any] = (dict(fold.prefs) if fold.prefs is not None
                             else dict(cached.prefs) if cached is not None else {})
    return MemberView(
        member_id=card.member_id, card_id=card.card_id, name=cached.name if cached else "", state=state,
        coupons=usable, prefs=prefs, notes=notes,
        recent=tuple(_lines(desk.store.journal, member_id=card.member_id)),
        offline_estimate=cached is None or fold.folded_any or desk.offline, known=cached is not None,
        pending=cached is None or fold.folded_any,
        upgrade_due=loyalty.tier_upgrade_due(state, desk.rules),
        phone=cached.phone if cached else "", email=cached.email if cached else "",
    )


def history(desk: Desk, card_id: str, n: int = HISTORY_LINES) -> list[OperationView]:
    """This terminal's last ``n`` operations with the card, newest first."""
    return _lines(desk.store.journal, card_id=card_id, n=n)


def member_history(desk: Desk, member_id: str, n: int = HISTORY_LINES) -> list[OperationView]:
    """This terminal's last ``n`` operations for the member, whatever card they were made with, newest first."""
    return _lines(desk.store.journal, member_id=member_id, n=n)


def _lines(journal: Journal, *, member_id: str | None = None, card_id: str | None = None,
           n: int = HISTORY_LINES) -> list[OperationView]:
    if member_id is not None:
        entries = journal.entries_for_member(member_id, limit=n)
    else:
        assert card_id is not None
        entries = journal.entries_for_card(card_id, limit=n)
    synced = journal.synced_seq
    return [OperationView(uuid=e.uuid, seq=e.seq, kind=e.kind, wall_ms=e.wall_ms,
                          summary=summarize(e.kind, e.payload), synced=e.seq <= synced, cashier_id=e.cashier_id,
                          phrase=summary_phrase(e.kind, e.payload))
            for e in entries]
