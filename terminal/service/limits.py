"""What the counter refuses before it records an operation it cannot vouch for (issue 14).

- Offline limits (``cardkit.core.risk``), counted over all of a member's cards at this terminal: the journal
  knows every card the member used here, whatever the snapshot says.
- The offline cash top-up ceilings, per operation and per member per 24 hours.
- The unknown-balance path: a member the ledger never sent to this terminal (and who could not be looked up) has
  a verified card but no known balance, points or coupons. Cash and bank-card sales and top-ups go ahead (points
  are journaled and credited at the ledger); stored value, points redemption, gifts and coupons are refused with
  the reason, never against a silent balance of 0.00.
"""

from __future__ import annotations

from cardkit.cards.verdict import CardClaims
from cardkit.core.risk import OfflineUsage, check_offline_spend, check_offline_topup, member_offline_usage
from cardkit.errors import DomainError
from terminal.service.desk import Desk

UNKNOWN_BALANCE_CODE = "unknown_balance"


def _usage(desk: Desk, card: CardClaims) -> OfflineUsage:
    return member_offline_usage(desk.figures.member_use(card.member_id), card.member_id, card.card_id,
                                now_ms=desk.clock() * 1000, last_sync_ms=desk.store.sync_state.last_sync_ms)


def check_offline_limits(desk: Desk, card: CardClaims, sv_debit: int, offline: bool) -> None:
    """Raise ``OfflineLimitError`` if an offline stored-value payment of ``sv_debit`` is past a limit of the card
    or of the member's cards together."""
    if not offline or sv_debit <= 0:
        return
    check_offline_spend(desk.rules.offline, _usage(desk, card), sv_amount=desk.rules.money(sv_debit))


def check_offline_cash_topup(desk: Desk, card: CardClaims, amount: int, tender: str, offline: bool) -> None:
    """Raise ``OfflineLimitError`` if an offline cash top-up of ``amount`` is past a ceiling."""
    if not offline:
        return
    check_offline_topup(desk.rules.offline, _usage(desk, card), amount=desk.rules.money(amount), tender=tender)


def balance_known(desk: Desk, member_id: str) -> bool:
    """True when the ledger has sent this member (by a pull or a look-up): their figures are the ledger's."""
    return desk.store.cache.get(member_id) is not None


def check_known_balance(desk: Desk, member_id: str, *, sv_debit: int = 0, points: int = 0,
                        coupons: int = 0, what: str = "sale") -> None:
    """Refuse what needs the member's balance, points or coupons when the ledger never sent them here."""
    if (sv_debit <= 0 and points <= 0 and coupons <= 0) or balance_known(desk, member_id):
        return
    kind, uses = (("sv", "stored value") if sv_debit > 0 else ("points", "points") if points > 0
                  else ("coupons", "coupons"))
    raise DomainError(
        f"This member's balance is not known at this terminal (the ledger could not be reached to look them up), "
        f"so {uses} cannot be used; cash and bank card work and points are credited at the ledger",
        code=UNKNOWN_BALANCE_CODE, sentence=f"unknown_balance.{kind}", params={"what": what})
