"""The one place the app and its screens call the terminal's services: a typed facade over ``AppServices``.

Screens collect what the cashier chose and hand the facade's answer to a worker: a journaling ``Operation``
(its ``EntryKind`` and the counter call that returns the receipt) or a read-only ``Query`` (its ``QueryName`` and
the call that returns the message carrying the answer). The calls that block (serial, SQLite, HTTP) are made only
from Textual thread workers; the few made on the UI thread say so. The services are read from ``AppServices``
at each call, so a reader or sync service set on it after the app was built is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cardkit.core import loyalty
from cardkit.core.members import Tier
from cardkit.errors import CardposError
from cardkit.journal import EntryKind
from terminal.i18n import CASHIER_LANGUAGE_KEY
from terminal.ui.messages import (
    DocumentsLoaded,
    HistoryLoaded,
    MemberLoaded,
    QueryName,
    SaleQuoted,
    SelfTestDone,
    ShiftReportLoaded,
    SignupCardDone,
    SyncDone,
    TopUpQuoted,
    UpgradeCardDone,
)
from terminal.ui.services import AppServices
from terminal.ui.view import Tapped

if TYPE_CHECKING:
    from textual.message import Message

    from cardkit.core.money import Money
    from cardkit.core.rules import Gift, TierRule
    from terminal.i18n import Words
    from terminal.service.receipt import Receipt
    from terminal.service.signup_form import SignupForm
    from terminal.service.views import TapResult
    from terminal.service.zreport import ZReport
    from terminal.ui.services import Cashier, PrinterStatus, ReaderStats

@dataclass(frozen=True)
class Operation:
    """A journaling counter operation for a worker: ``run`` records it (blocking) and returns its receipt."""

    kind: EntryKind
    run: Callable[[], Receipt]


@dataclass(frozen=True)
class Query:
    """A read-only question for a worker: ``run`` asks it (blocking) and returns the message with the answer."""

    what: QueryName
    run: Callable[[], Message]


def _id(cashier: Cashier | None) -> str | None:
    return cashier.cashier_id if cashier is not None else None


class TerminalOps:
    def __init__(self, services: AppServices) -> None:
        self._services = services

    # -- what this terminal has (UI thread) ---------------------------------------------------------------------
    @property
    def has_reader(self) -> bool:
        return self._services.reader is not None

    @property
    def has_sync(self) -> bool:
        return self._services.sync is not None

    @property
    def has_printer(self) -> bool:
        return self._services.printer is not None

    def reader_stats(self) -> ReaderStats | None:
        """The reader's diagnostics (kept in memory by the driver; cheap enough for the UI thread)."""
        reader = self._services.reader
        return reader.stats if reader is not None else None

    def gifts(self) -> tuple[Gift, ...]:
        """This store's gift catalogue, from the rules in use (in memory: fine on the UI thread)."""
        counter = self._services.counter
        return counter.rules.gifts_at(counter.store_id)

    def fee_tiers(self) -> list[tuple[Tier, TierRule]]:
        """The tiers a year of which can be bought, lowest first, with their rules (in memory)."""
        rules = self._services.counter.rules
        return [(tier, rules.tier(tier)) for tier in Tier if rules.tier(tier).annual_fee is not None]

    def online(self) -> bool:
        """Whether the counter reaches the ledger now (it follows the sync status; cheap, UI thread)."""
        return not self._services.counter.offline

    def now_s(self) -> int:
        """The app's clock in epoch seconds (what the rules' dates, such as a fee's paid-until, are in)."""
        return self._services.clock() // 1000

    # -- start and stop (workers; close on shutdown) ---------------------------------------------------------
    def start_reader(self) -> None:
        # A reader unplugged at start-up is like one unplugged later: shown on the status bar, retried.
        if self._services.reader is not None:
            self._services.reader.start(retry_if_missing=True)

    def start_sync(self) -> None:
        if self._services.sync is not None:
            self._services.sync.start()

    def close(self) -> None:
        """Stop the reader and sync threads, then run the close hooks (the store is closed by one)."""
        for service in (self._services.reader, self._services.sync):
            if service is not None:
                # Shutting down: a device that fails to close has nothing left to tell the cashier.
                with contextlib.suppress(CardposError):
                    service.stop()
        for hook in self._services.on_close:
            hook()

    # -- the reader (workers) ----------------------------------------------------------------------------------
    def reader_challenge(self) -> Callable[[bytes], bytes] | None:
        """What sends a nonce to a challenge-capable card through the reader (None: no reader)."""
        reader = self._services.reader
        return reader.challenge if reader is not None else None

    def reader_feedback(self, accepted: bool) -> None:
        if self._services.reader is not None:
            self._services.reader.feedback(accepted)

    def probe_reader(self) -> None:
        """Ask the reader for a status frame; the answer arrives as a reader event."""
        if self._services.reader is not None:
            self._services.reader.request_status()

    # -- sync and documents (workers) ------------------------------------------------------------------------
    def kick_sync(self) -> None:
        """Push a new journal entry now rather than at the next sync interval (returns at once)."""
        if self._services.sync is not None:
            self._services.sync.kick()

    def reload_documents(self) -> None:
        if self._services.reload_documents is not None:
            self._services.reload_documents()

    def sync_now(self) -> Query | None:
        """One push and pull with the ledger (None: not enrolled with a ledger)."""
        sync = self._services.sync
        if sync is None:
            return None
        return Query(QueryName.SYNC, lambda: SyncDone(sync.sync_once()))

    def queue_status(self) -> tuple[int, int | None]:
        """(entries not yet acknowledged by the ledger, when the last sync succeeded in epoch ms)."""
        store = self._services.store
        return int(store.journal.queue_depth), store.sync_state.last_sync_ms

    def documents(self) -> Query:
        """The versions of the trust list, revocations, rules and member snapshot this terminal works with."""
        store, counter = self._services.store, self._services.counter

        def versions() -> DocumentsLoaded:
            held = dict(store.sync_state.document_versions())
            held["members"] = max(held.get("members", 0), store.cache.snapshot_version)
            # What the counter is actually checking cards and prices with, which may be newer than a pull.
            held["trust"] = max(held.get("trust", 0), counter.verifier.trust.version)
            held["revocations"] = max(held.get("revocations", 0), counter.verifier.revocations.version)
            held["rules"] = max(held.get("rules", 0), counter.rules.version)
            return DocumentsLoaded(held)

        return Query(QueryName.DOCUMENTS, versions)

    # -- the receipt printer (workers: each call opens the printer and waits for it) ----------------------------
    def print_receipt(self, receipt: Receipt, words: Words) -> PrinterStatus | None:
        """Print a receipt in ``words``' language and cut (None: no printer). Raises ``PrinterError``."""
        printer = self._services.printer
        if printer is None:
            return None
        return printer.print_lines(receipt.printed(words, printer.columns))

    def print_z_report(self, report: ZReport, words: Words) -> PrinterStatus | None:
        printer = self._services.printer
        if printer is None:
            return None
        return printer.print_lines(report.printed(words, printer.columns))

    def print_card(self, card_id: str, card_text: str, words: Words) -> PrinterStatus | None:
        """Print a new card's number and text form (to key in or scan at manual entry) when no reader could write
        it (None: no printer). Raises ``PrinterError``."""
        printer = self._services.printer
        if printer is None:
            return None
        width = printer.columns
        lines = [words("newcard.paper_title"), words("newcard.paper_card", card=card_id), ""]
        lines += [card_text[i:i + width] for i in range(0, len(card_text), width)]
        return printer.print_lines(lines)

    def printer_status(self) -> PrinterStatus | None:
        """The printer's status now (OFFLINE when it does not answer; None: no printer)."""
        printer = self._services.printer
        return printer.status() if printer is not None else None

    def receipt_copy(self, uuid: str) -> Receipt:
        """The receipt of a past operation rebuilt from the journal, for a reprint."""
        return self._services.counter.receipt_copy(uuid)

    # -- a cashier's language (workers: SQLite) ----------------------------------------------------------------
    def language_of(self, cashier_id: str) -> str | None:
        """The screen language this cashier chose last (None: never chose one)."""
        value = self._services.store.sync_state.get(CASHIER_LANGUAGE_KEY.format(cashier_id=cashier_id))
        return value if isinstance(value, str) else None

    def remember_language(self, cashier_id: str, lang: str) -> None:
        self._services.store.sync_state.set(CASHIER_LANGUAGE_KEY.format(cashier_id=cashier_id), lang)

    # -- people (workers: scrypt and SQLite) --------------------------------------------------------------------
    def sign_in(self, cashier_id: str, pin: str) -> Cashier:
        """Check a cashier's PIN; the counter journals the sign-in, or the lockout this attempt caused."""
        return self._services.counter.sign_in(cashier_id, pin)

    def authorize_supervisor(self, cashier_id: str, pin: str) -> Cashier:
        return self._services.counter.authorize_supervisor(cashier_id, pin)

    def authenticate(self, cashier_id: str, pin: str) -> Cashier:
        """Check a person's PIN (with lockout) without journaling a sign-in: a second person's approval."""
        return self._services.store.cashiers.authenticate(cashier_id, pin, now=self._services.clock())

    # -- cards (workers) ---------------------------------------------------------------------------------------
    def verify(self, token: bytes, *, manual: bool, challenge: Callable[[bytes], bytes] | None) -> TapResult:
        return self._services.counter.tap(token, manual=manual, challenge=challenge)

    def self_test(self) -> Query | None:
        """Tap the technician's test card through the real verify path (None: no test card configured)."""
        token, counter = self._services.test_card, self._services.counter
        if token is None:
            return None
        return Query(QueryName.SELF_TEST, lambda: SelfTestDone(counter.tap(token, manual=False, challenge=None)))

    # -- shifts (workers) --------------------------------------------------------------------------------------
    def open_shift(self, shift_id: str, *, cashier_id: str) -> None:
        self._services.counter.open_shift(shift_id, cashier_id=cashier_id)

    def close_shift(self, shift_id: str, since_ms: int, *, cashier_id: str | None) -> ZReport:
        """Journal the shift's Z-report as ``shift_close`` and return it."""
        return self._services.counter.close_shift(shift_id, since_ms, cashier_id=cashier_id)

    def z_report(self, since_ms: int) -> Query:
        counter = self._services.counter
        return Query(QueryName.Z_REPORT, lambda: ShiftReportLoaded(counter.z_report(since_ms)))

    # -- queries about a member --------------------------------------------------------------------------------
    def member_view(self, card: Tapped) -> Query:
        counter = self._services.counter
        return Query(QueryName.MEMBER, lambda: MemberLoaded(counter.member_view(card.claims)))

    def history(self, card_id: str, n: int) -> Query:
        counter = self._services.counter
        return Query(QueryName.HISTORY, lambda: HistoryLoaded(counter.history(card_id, n=n)))

    def preview_sale(self, card: Tapped, amount: Money, *, coupons: Sequence[str], points: int,
                     tender: str) -> Query:
        """The sale's figures for the confirm screen (the same check the sale runs), recording nothing."""
        counter = self._services.counter
        return Query(QueryName.SALE_QUOTE, lambda: SaleQuoted(counter.preview_sale(
            card.claims, amount, tender=tender, coupon_ids=list(coupons), redeem_points=points)))

    def preview_topup(self, card: Tapped, amount: Money, *, tender: str) -> Query:
        # Pure quote on the figures shown: the bonus the rules add. The top-up itself re-quotes under the lock.
        counter = self._services.counter
        return Query(QueryName.TOPUP_QUOTE, lambda: TopUpQuoted(loyalty.quote_topup(
            card.view.state, counter.rules, amount=amount, tender=tender, card_id=card.card_id,
            offline=counter.offline)))

    # -- journaled operations ----------------------------------------------------------------------------------
    def sale(self, card: Tapped, amount: Money, *, coupons: Sequence[str], points: int, tender: str,
             cashier: Cashier | None) -> Operation:
        counter = self._services.counter
        return Operation(EntryKind.SALE, lambda: counter.sale(
            card.claims, amount, tender=tender, coupon_ids=list(coupons), redeem_points=points,
            cashier_id=_id(cashier)))

    def topup(self, card: Tapped, amount: Money, *, tender: str, cashier: Cashier | None) -> Operation:
        counter = self._services.counter
        return Operation(EntryKind.TOPUP, lambda: counter.topup(card.claims, amount, tender=tender,
                                                                 cashier_id=_id(cashier)))

    def refund(self, orig_uuid: str, amount: Money, *, supervisor: Cashier, cashier: Cashier | None) -> Operation:
        counter = self._services.counter
        return Operation(EntryKind.REFUND, lambda: counter.refund(orig_uuid, amount, supervisor=supervisor,
                                                                  cashier_id=_id(cashier)))

    def void(self, orig_uuid: str, *, supervisor: Cashier, cashier: Cashier | None) -> Operation:
        counter = self._services.counter
        return Operation(EntryKind.VOID, lambda: counter.void(orig_uuid, supervisor=supervisor,
                                                              cashier_id=_id(cashier)))

    def redeem(self, card: Tapped, points: int, item: str, *, cashier: Cashier | None) -> Operation:
        counter = self._services.counter
        return Operation(EntryKind.REDEEM, lambda: counter.redeem(card.claims, points, item,
                                                                  cashier_id=_id(cashier)))

    def redeem_gift(self, card: Tapped, item_id: str, *, cashier: Cashier | None) -> Operation:
        """Points for an item of this store's gift catalogue (the points are the rules', not typed)."""
        counter = self._services.counter
        return Operation(EntryKind.REDEEM, lambda: counter.redeem_gift(card.claims, item_id,
                                                                       cashier_id=_id(cashier)))

    def membership_fee(self, card: Tapped, tier: Tier, *, tender: str, cashier: Cashier | None) -> Operation:
        counter = self._services.counter
        return Operation(EntryKind.MEMBERSHIP_FEE, lambda: counter.pay_membership_fee(
            card.claims, tier, tender=tender, cashier_id=_id(cashier)))

    def upgrade(self, card: Tapped, *, cashier: Cashier | None) -> Operation:
        counter = self._services.counter
        return Operation(EntryKind.TIER_UPGRADE, lambda: counter.upgrade_tier(card.claims, cashier_id=_id(cashier)))

    def signup(self, form: SignupForm, *, cashier: Cashier | None) -> Operation:
        counter, store_id = self._services.counter, self._services.store_id
        return Operation(EntryKind.MEMBER_SIGNUP,
                         lambda: counter.signup(form, store_id=store_id, cashier_id=_id(cashier)))

    def signup_card(self, receipt: Receipt) -> Query:
        """Queue the new member's card and, when this terminal can, get it from the ledger and write it."""
        issue = self._services.signup_card
        request, provisional = receipt.uuid, str(receipt.payload["member"])

        def run() -> SignupCardDone:
            if issue is not None:
                return SignupCardDone(issue(request, provisional))
            from terminal.service.newcard import NewCardState  # no card service here: the card waits

            return SignupCardDone(NewCardState(old_card="", request=request, member_id=provisional,
                                               tier="standard", kind="signup"))

        return Query(QueryName.SIGNUP_CARD, run)

    def upgrade_card(self, receipt: Receipt) -> Query:
        """Queue the upgrade's new card and, when this terminal can, get it from the ledger and write it (again:
        a retry of the same upgrade writes the same card)."""
        issue = self._services.upgrade_card
        p = receipt.payload
        request, old_card, member, tier = receipt.uuid, str(p["card"]), str(p["member"]), str(p["to"])

        def run() -> UpgradeCardDone:
            if issue is not None:
                return UpgradeCardDone(issue(request, old_card, member, tier))
            from terminal.service.newcard import NewCardState  # no card service here: the card waits

            return UpgradeCardDone(NewCardState(old_card=old_card, request=request, member_id=member, tier=tier))

        return Query(QueryName.UPGRADE_CARD, run)

    def update_member(self, member_id: str, *, notes: str, prefs: dict[str, str],
                      cashier: Cashier | None) -> Operation:
        counter = self._services.counter
        return Operation(EntryKind.MEMBER_UPDATE, lambda: counter.update_member(
            member_id, notes=notes, prefs=prefs, cashier_id=_id(cashier)))
