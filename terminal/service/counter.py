"""The counter: the one object the cashier's app and ``cardpos terminal op`` work through.

Both go through the same rules and the same journal: one cashier operation = verify / quote (pure core) ->
offline limits -> journal append -> receipt. The counter holds what the operations share (store, verifier, rules,
clock, the operation lock and the cached member figures) and hands each call to the module that does that job:
  taps        a presented card: verify, challenge, journal a reject
  lookups     member view and history (records nothing)
  operations  sale, top-up, points for a gift, tier upgrade, membership fee, member details
  reversals   refund and void, with a supervisor
  people      cashier sign-in, supervisor approval
  shifts      shift open / close and the Z-report
What a receipt says is in ``receipt_lines`` and ``receipt``; ``receipt_copy`` rebuilds one from the journal.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cardkit.cards.verdict import CardClaims
from cardkit.cards.verify import CardVerifier
from cardkit.core import loyalty
from cardkit.core.members import Tier
from cardkit.core.money import Money
from cardkit.core.rules import Rules
from cardkit.journal import JournalEntry
from terminal.offline.cashiers import Cashier
from terminal.offline.store import TerminalStore
from terminal.service import lookups, operations, people, receipt_copy, reversals, shifts, taps
from terminal.service import signup as signups
from terminal.service.authorization import Authorizer
from terminal.service.figures import SNAPSHOT_SYNCED_SEQ, MemberFigures
from terminal.service.lookups import HISTORY_LINES
from terminal.service.oplock import OperationLock
from terminal.service.receipt import Receipt
from terminal.service.remote import LedgerLookups
from terminal.service.views import MemberView, OperationView, TapResult
from terminal.service.zreport import ZReport

__all__ = ["HISTORY_LINES", "SNAPSHOT_SYNCED_SEQ", "Counter"]


class Counter:
    """A terminal's counter (a ``terminal.service.desk.Desk``); close it, or use it as a context manager."""

    def __init__(
        self,
        store: TerminalStore,
        verifier: CardVerifier,
        rules: Rules,
        *,
        terminal_id: str,
        clock: Callable[[], int] = lambda: int(time.time()),
        online: Callable[[], bool] = lambda: False,
        randbytes: Callable[[int], bytes] = os.urandom,
        lookups: LedgerLookups | None = None,
        store_id: str | None = None,
        authorizer: Authorizer | None = None,
    ) -> None:
        self.store = store
        self.verifier = verifier
        """Replace with a new CardVerifier when the trust or revocation list changes."""
        self.rules = rules
        """Replace when the ledger sends new rules."""
        self.terminal_id = terminal_id
        self.store_id = store_id
        """The store the terminal is enrolled in: picks its part of the gift catalogue (None: all of it)."""
        self.clock = clock
        """Epoch seconds."""
        self.online = online
        self.randbytes = randbytes
        self.operation_lock = OperationLock(store.data_dir)
        self.figures = MemberFigures(store)
        self.lookups = lookups
        """Set by the composition root when the terminal can ask the ledger (``terminal.sync.lookup``)."""
        self.authorizer = authorizer
        """Asks the ledger before stored value, points or a coupon are used (None: decide offline only)."""

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Counter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def offline(self) -> bool:
        return not self.online()

    # -- cards and members ----------------------------------------------------------------------------------
    def tap(self, token: bytes, *, manual: bool = False,
            challenge: Callable[[bytes], bytes] | None = None) -> TapResult:
        """Verify a presented card; run the challenge for a card with its own key; journal any reject.

        ``challenge`` sends a nonce to the card (through the reader) and returns its signature. A card that needs
        a challenge fails with ``challenge_failed`` when there is no ``challenge`` or it raises.
        """
        return taps.tap(self, token, manual=manual, challenge=challenge)

    def member_view(self, card: CardClaims) -> MemberView:
        return lookups.member_view(self, card)

    def history(self, card_id: str, n: int = HISTORY_LINES) -> list[OperationView]:
        """This terminal's last ``n`` operations with the card, newest first."""
        return lookups.history(self, card_id, n)

    def member_history(self, member_id: str, n: int = HISTORY_LINES) -> list[OperationView]:
        """This terminal's last ``n`` operations for the member, with any of their cards (an upgrade's old and new
        card alike), newest first."""
        return lookups.member_history(self, member_id, n)

    # -- operations -----------------------------------------------------------------------------------------
    def preview_sale(self, card: CardClaims, amount: Money, *, tender: str, coupon_ids: Sequence[str] = (),
                     redeem_points: int = 0) -> loyalty.SaleQuote:
        """The sale's figures for the confirm screen, without recording anything (raises DomainError)."""
        return operations.preview_sale(self, card, amount, tender=tender, coupon_ids=coupon_ids,
                                       redeem_points=redeem_points)

    def sale(self, card: CardClaims, amount: Money, *, tender: str, coupon_ids: Sequence[str] = (),
             redeem_points: int = 0, cashier_id: str | None = None,
             manual: bool = False) -> Receipt:
        return operations.sale(self, card, amount, tender=tender, coupon_ids=coupon_ids,
                               redeem_points=redeem_points, cashier_id=cashier_id, manual=manual)

    def topup(self, card: CardClaims, amount: Money, *, tender: str, cashier_id: str | None = None,
              manual: bool = False) -> Receipt:
        return operations.topup(self, card, amount, tender=tender, cashier_id=cashier_id, manual=manual)

    def redeem(self, card: CardClaims, points: int, item: str, *, cashier_id: str | None = None,
               manual: bool = False) -> Receipt:
        """Points for a gift item."""
        return operations.redeem(self, card, points, item, cashier_id=cashier_id, manual=manual)

    def redeem_gift(self, card: CardClaims, item_id: str, *, cashier_id: str | None = None,
                    manual: bool = False) -> Receipt:
        """Points for an item of this store's gift catalogue, at the points the rules set for it."""
        return operations.redeem_gift(self, card, item_id, cashier_id=cashier_id, manual=manual)

    def upgrade_tier(self, card: CardClaims, *, cashier_id: str | None = None,
                     manual: bool = False) -> Receipt:
        """Move the member to the tier their yearly spend reached (the ledger then issues a replacement card)."""
        return operations.upgrade_tier(self, card, cashier_id=cashier_id, manual=manual)

    def pay_membership_fee(self, card: CardClaims, tier: Tier, *, tender: str,
                           cashier_id: str | None = None,
                           manual: bool = False) -> Receipt:
        return operations.pay_membership_fee(self, card, tier, tender=tender, cashier_id=cashier_id, manual=manual)

    def update_member(self, member_id: str, *, notes: str | None = None, prefs: Mapping[str, Any] | None = None,
                      cashier_id: str | None = None) -> Receipt:
        """Record new notes and/or preferences (encrypted at rest; synced so every store sees them)."""
        return operations.update_member(self, member_id, notes=notes, prefs=prefs, cashier_id=cashier_id)

    def signup(self, form: signups.SignupForm, *, store_id: str, cashier_id: str | None = None) -> Receipt:
        """Register a new member under a provisional id (the ledger confirms it, or merges it, at sync)."""
        return signups.signup(self, form, store_id=store_id, cashier_id=cashier_id)

    def refund(self, orig_uuid: str, amount: Money, *, supervisor: Cashier,
               cashier_id: str | None = None) -> Receipt:
        """Refund part or all of a sale recorded here, approved by a signed-in supervisor."""
        return reversals.refund(self, orig_uuid, amount, supervisor=supervisor, cashier_id=cashier_id)

    def void(self, orig_uuid: str, *, supervisor: Cashier, cashier_id: str | None = None) -> Receipt:
        """Cancel a whole sale or top-up recorded here, approved by a signed-in supervisor."""
        return reversals.void(self, orig_uuid, supervisor=supervisor, cashier_id=cashier_id)

    def receipt_copy(self, uuid: str) -> Receipt:
        """A copy of the receipt of an operation recorded here, rebuilt from its journal entry (a reprint)."""
        return receipt_copy.receipt_copy(self, uuid)

    # -- people ---------------------------------------------------------------------------------------------
    def sign_in(self, cashier_id: str, pin: str) -> Cashier:
        """Check a cashier's PIN; journal the sign-in, or the lockout when this attempt caused one."""
        return people.sign_in(self, cashier_id, pin)

    def authorize_supervisor(self, cashier_id: str, pin: str) -> Cashier:
        """A supervisor's approval (PIN checked, role required) for a refund or void."""
        return people.authorize_supervisor(self, cashier_id, pin)

    # -- shifts ---------------------------------------------------------------------------------------------
    def z_report(self, since_ms: int, until_ms: int | None = None) -> ZReport:
        return shifts.z_report(self, since_ms, until_ms)

    def open_shift(self, shift_id: str, *, cashier_id: str | None = None) -> JournalEntry:
        return shifts.open_shift(self, shift_id, cashier_id=cashier_id)

    def close_shift(self, shift_id: str, since_ms: int, *, cashier_id: str | None = None) -> ZReport:
        """Journal the shift's Z-report totals as ``shift_close`` and return the report."""
        return shifts.close_shift(self, shift_id, since_ms, cashier_id=cashier_id)
