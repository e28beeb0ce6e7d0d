"""The counter: one cashier operation = verify / quote (pure core) -> risk check -> journal append -> receipt.

Used by the Textual app and by ``cardpos terminal op``, so both go through the same rules and the same journal.
Nothing is acknowledged that was not stored: a ``Receipt`` is built only from the entry ``journal.append``
returned after its commit; any error before that leaves the journal as it was and says why in one sentence.
Every rejected card tap is journaled as ``card_reject`` before ``tap`` returns.

Figures: a member's state is the ledger's last snapshot from the member cache with this terminal's unsynced
entries folded on top by ``cardkit.core.state.apply_entry`` (the same fold the ledger runs).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cardkit.cards.challenge import check_challenge, needs_challenge, new_nonce
from cardkit.cards.verdict import CardClaims, RejectReason, Verdict
from cardkit.cards.verify import CardVerifier
from cardkit.core import loyalty
from cardkit.core.members import Coupon, Tier
from cardkit.core.money import Money
from cardkit.core.risk import check_offline_spend, offline_usage
from cardkit.core.rules import Rules
from cardkit.core.state import MemberState, apply_entry
from cardkit.errors import DomainError
from cardkit.journal import JournalEntry
from terminal.offline.cache import CachedMember
from terminal.offline.cashiers import LOCKOUT_MS, Cashier, CashierAuthError, Role, require_role
from terminal.offline.state import MEMBERS_SYNCED_SEQ
from terminal.offline.store import TerminalStore
from terminal.service.oplock import OperationLock
from terminal.service.receipt import TENDER_WORDS, Receipt
from terminal.service.views import (
    MemberView,
    OperationView,
    TapResult,
    coupon_from_dict,
    summarize,
)
from terminal.service.zreport import ZReport, build_z_report

HISTORY_LINES = 10
# Without the synced seq recorded at the snapshot, the counter folds the unsynced entries only, which misses
# entries synced by a push whose pull then failed.
SNAPSHOT_SYNCED_SEQ = MEMBERS_SYNCED_SEQ


@dataclass(frozen=True, slots=True)
class _Fold:
    """A member's snapshot with this terminal's entries after ``after_seq`` folded on, up to ``last_seq``.

    Kept per member so each operation folds only the entries appended since the last one (the journal grows with
    every sale; refolding it all made each sale O(n)). Valid only while ``base`` and ``after_seq`` are what the
    snapshot gives: a new snapshot from the ledger changes one of them and the fold starts again from it.
    """

    base: MemberState
    after_seq: int
    last_seq: int
    state: MemberState
    folded_any: bool
    notes: str | None = None
    """The last ``member_update`` notes folded (None: none folded), as the member view shows them."""
    prefs: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class _CardUse:
    """A card's journal entries as ``(wall_ms, kind, payload)``, oldest first, read up to ``last_seq``."""

    last_seq: int
    entries: tuple[tuple[int, str, Mapping[str, Any]], ...] = field(default_factory=tuple)


class Counter:
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
    ) -> None:
        self.store = store
        self.verifier = verifier
        """Replace with a new CardVerifier when the trust or revocation list changes."""
        self.rules = rules
        """Replace when the ledger sends new rules."""
        self.terminal_id = terminal_id
        self.clock = clock
        self.online = online
        self.randbytes = randbytes
        self._lock = OperationLock(store.data_dir)
        # Folds read by worker threads at once (quotes while a sale commits): replaced whole, under this lock.
        self._cache_lock = threading.Lock()
        self._folds: dict[str, _Fold] = {}
        self._card_use: dict[str, _CardUse] = {}

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Counter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cards ----------------------------------------------------------------------------------------------
    def tap(self, token: bytes, *, manual: bool = False,
            challenge: Callable[[bytes], bytes] | None = None) -> TapResult:
        """Verify a presented card; run the challenge for a card with its own key; journal any reject.

        ``challenge`` sends a nonce to the card (through the reader) and returns its signature. A card that needs
        a challenge fails with ``challenge_failed`` when there is no ``challenge`` or it raises.
        """
        verdict = self.verifier.verify(token, self.clock())
        if needs_challenge(verdict):
            verdict = self._run_challenge(verdict, challenge)
        if not verdict.accepted:
            claims = verdict.claims
            reason = verdict.reason or RejectReason.MALFORMED
            with self._lock.hold():
                entry = self.store.journal.append("card_reject", {
                    "reason": reason.value, "card": claims.card_id if claims else None, "kid": verdict.kid,
                    "manual": bool(manual),
                })
            return TapResult(verdict=verdict, member=None, reject_entry=entry)
        assert verdict.claims is not None  # accepted verdicts carry claims
        return TapResult(verdict=verdict, member=self.member_view(verdict.claims))

    def _run_challenge(self, verdict: Verdict, challenge: Callable[[bytes], bytes] | None) -> Verdict:
        failed = Verdict.reject(RejectReason.CHALLENGE_FAILED, verdict.claims, verdict.kid)
        if challenge is None:
            return failed
        nonce = new_nonce(self.randbytes)
        try:
            signature = challenge(nonce)
        except Exception:  # a reader timeout or a card that cannot answer: treated as a failed challenge
            return failed
        return check_challenge(verdict, nonce, signature)

    # -- member figures -------------------------------------------------------------------------------------
    def _member(self, member_id: str, tier_hint: Tier = Tier.STANDARD) -> tuple[MemberState, CachedMember | None]:
        """The member's current state and their cached snapshot (None if unknown)."""
        state, cached, _ = self._fold(member_id, tier_hint)
        return state, cached

    def _fold(self, member_id: str, tier_hint: Tier = Tier.STANDARD) -> tuple[MemberState, CachedMember | None, _Fold]:
        """The member's current state, their cached snapshot and the fold (entries folded on top of it)."""
        cached = self.store.cache.get(member_id)
        if cached is not None:
            try:
                tier = Tier(cached.tier)
            except ValueError:
                tier = tier_hint
            base = MemberState(member_id=member_id, currency=cached.currency, balance=cached.balance,
                               points=cached.points, tier=tier, yearly_spend=cached.yearly_spend)
            recorded = self.store.sync_state.get(SNAPSHOT_SYNCED_SEQ)
            after_seq = int(recorded) if isinstance(recorded, int) else self.store.journal.synced_seq
        else:
            # The ledger never sent this member: everything this terminal recorded for them is all we know.
            base = MemberState(member_id=member_id, currency=self.rules.currency, tier=tier_hint)
            after_seq = 0
        with self._cache_lock:
            fold = self._folds.get(member_id)
        if fold is None or fold.base != base or fold.after_seq != after_seq:
            fold = _Fold(base=base, after_seq=after_seq, last_seq=after_seq, state=base, folded_any=False)
        entries = self.store.journal.entries_for_member(member_id, limit=None, after_seq=fold.last_seq,
                                                        newest_first=False)
        if entries:
            state, notes, prefs = fold.state, fold.notes, fold.prefs
            for entry in entries:
                state = apply_entry(state, entry.kind, entry.payload)
                if entry.kind == "member_update":
                    if "notes" in entry.payload:
                        notes = str(entry.payload["notes"])
                    if "prefs" in entry.payload:
                        prefs = dict(entry.payload["prefs"])
            fold = _Fold(base=base, after_seq=after_seq, last_seq=entries[-1].seq, state=state, folded_any=True,
                         notes=notes, prefs=prefs)
        with self._cache_lock:
            current = self._folds.get(member_id)
            # Another thread may have folded further meanwhile: keep the longer fold of the same snapshot.
            if (current is None or current.base != base or current.after_seq != after_seq
                    or current.last_seq <= fold.last_seq):
                self._folds[member_id] = fold
        return fold.state, cached, fold

    def member_view(self, card: CardClaims) -> MemberView:
        state, cached, fold = self._fold(card.member_id, card.tier)
        now = self.clock()
        held = [coupon_from_dict(c) for c in cached.coupons] if cached is not None else []
        usable = tuple(c for c in held if c.coupon_id not in state.used_coupons
                       and c.valid_from <= now <= c.valid_until
                       and (c.amount_off is None or c.amount_off.currency == state.currency))
        notes = fold.notes if fold.notes is not None else (cached.notes if cached is not None else "")
        prefs: dict[str, Any] = (dict(fold.prefs) if fold.prefs is not None
                                 else dict(cached.prefs) if cached is not None else {})
        return MemberView(
            member_id=card.member_id, card_id=card.card_id, name=cached.name if cached else "", state=state,
            coupons=usable, prefs=prefs, notes=notes, recent=tuple(self._recent(member_id=card.member_id)),
            offline_estimate=cached is None or fold.folded_any or not self.online(), known=cached is not None,
            upgrade_due=loyalty.tier_upgrade_due(state, self.rules),
            phone=cached.phone if cached else "", email=cached.email if cached else "",
        )

    def _held_coupons(self, cached: CachedMember | None) -> list[Coupon]:
        return [coupon_from_dict(c) for c in cached.coupons] if cached is not None else []

    def _recent(self, *, member_id: str | None = None, card_id: str | None = None,
                n: int = HISTORY_LINES) -> list[OperationView]:
        journal = self.store.journal
        if member_id is not None:
            entries = journal.entries_for_member(member_id, limit=n)
        else:
            assert card_id is not None
            entries = journal.entries_for_card(card_id, limit=n)
        synced = journal.synced_seq
        return [OperationView(uuid=e.uuid, seq=e.seq, kind=e.kind, wall_ms=e.wall_ms,
                              summary=summarize(e.kind, e.payload), synced=e.seq <= synced, cashier_id=e.cashier_id)
                for e in entries]

    def history(self, card_id: str, n: int = HISTORY_LINES) -> list[OperationView]:
        """This terminal's last ``n`` operations with the card, newest first."""
        return self._recent(card_id=card_id, n=n)

    # -- shared steps ---------------------------------------------------------------------------------------
    @property
    def offline(self) -> bool:
        return not self.online()

    def _check_risk(self, card_id: str, sv_debit: int, offline: bool) -> None:
        if not offline or sv_debit <= 0:
            return
        usage = offline_usage(self._card_entries(card_id), card_id,
                              now_ms=self.clock() * 1000, last_sync_ms=self.store.sync_state.last_sync_ms)
        check_offline_spend(self.rules.offline, usage, sv_amount=self.rules.money(sv_debit))

    def _card_entries(self, card_id: str) -> tuple[tuple[int, str, Mapping[str, Any]], ...]:
        """All of this terminal's entries for the card, oldest first; only those appended since the last call are
        read from the journal (entries are append-only, so the ones read before stay as they were)."""
        with self._cache_lock:
            use = self._card_use.get(card_id) or _CardUse(last_seq=0)
        new = self.store.journal.entries_for_card(card_id, limit=None, after_seq=use.last_seq, newest_first=False)
        if new:
            use = _CardUse(last_seq=new[-1].seq,
                           entries=use.entries + tuple((e.wall_ms, e.kind, e.payload) for e in new))
            with self._cache_lock:
                current = self._card_use.get(card_id)
                if current is None or current.last_seq < use.last_seq:
                    self._card_use[card_id] = use
        return use.entries

    def _commit(self, quote: loyalty.Quote, cashier_id: str | None, lines: list[tuple[str, str]],
                offline: bool, *, manual: bool = False) -> Receipt:
        # A card typed or scanned rather than tapped is marked so the ledger can watch manual entries per cashier.
        payload = {**quote.payload, "manual": True} if manual else quote.payload
        entry = self.store.journal.append(quote.kind, payload, cashier_id)
        return Receipt(entry=entry, lines=tuple(lines), after=quote.after, offline=offline)

    def _money(self, minor: int) -> str:
        return Money(minor, self.rules.currency).to_decimal_string()

    def _after_lines(self, after: MemberState) -> list[tuple[str, str]]:
        return [("Balance now", self._money(after.balance)), ("Points now", str(after.points))]

    # -- operations -----------------------------------------------------------------------------------------
    def preview_sale(self, card: CardClaims, amount: Money, *, tender: str, coupon_ids: Sequence[str] = (),
                     redeem_points: int = 0) -> loyalty.SaleQuote:
        """The sale's figures for the confirm screen, without recording anything (raises DomainError)."""
        return self._quote_sale(card, amount, tender=tender, coupon_ids=coupon_ids, redeem_points=redeem_points,
                                offline=self.offline)

    def _quote_sale(self, card: CardClaims, amount: Money, *, tender: str, coupon_ids: Sequence[str],
                    redeem_points: int, offline: bool) -> loyalty.SaleQuote:
        state, cached = self._member(card.member_id, card.tier)
        quote = loyalty.quote_sale(state, self._held_coupons(cached), self.rules, amount=amount,
                                   coupon_ids=coupon_ids, redeem_points=redeem_points, tender=tender,
                                   now=self.clock(), card_id=card.card_id, offline=offline)
        self._check_risk(card.card_id, quote.sv_debit, offline)
        return quote

    def sale(self, card: CardClaims, amount: Money, *, tender: str, coupon_ids: Sequence[str] = (),
             redeem_points: int = 0, cashier_id: str | None = None,
             manual: bool = False) -> Receipt:
        with self._lock.hold():
            offline = self.offline
            q = self._quote_sale(card, amount, tender=tender, coupon_ids=coupon_ids, redeem_points=redeem_points,
                                 offline=offline)
            lines = [("Gross", q.gross.to_decimal_string())]
            if q.tier_disc.minor:
                lines.append((f"{q.after.tier.value.title()} discount", "-" + q.tier_disc.to_decimal_string()))
            if q.coupon_disc.minor:
                lines.append((f"Coupons {','.join(q.coupons)}", "-" + q.coupon_disc.to_decimal_string()))
            if q.pts_disc.minor:
                lines.append((f"Points ({q.pts_redeem})", "-" + q.pts_disc.to_decimal_string()))
            lines += [("-", ""), ("TOTAL", f"{q.net.to_decimal_string()} {q.net.currency}"),
                      ("Paid by", TENDER_WORDS[q.tender]), ("Points earned", f"+{q.pts_earn}")]
            return self._commit(q, cashier_id, lines + self._after_lines(q.after), offline, manual=manual)

    def topup(self, card: CardClaims, amount: Money, *, tender: str, cashier_id: str | None = None,
              manual: bool = False) -> Receipt:
        with self._lock.hold():
            offline = self.offline
            state, _ = self._member(card.member_id, card.tier)
            q = loyalty.quote_topup(state, self.rules, amount=amount, tender=tender, card_id=card.card_id,
                                    offline=offline)
            lines = [("Top-up", q.amount.to_decimal_string()), ("Bonus", q.bonus.to_decimal_string()),
                     ("-", ""), ("Paid by", TENDER_WORDS[q.tender])]
            return self._commit(q, cashier_id, lines + self._after_lines(q.after), offline, manual=manual)

    def _original(self, orig_uuid: str, kinds: tuple[str, ...]) -> JournalEntry:
        entry = self.store.journal.get(orig_uuid)
        if entry is None:
            raise DomainError(f"No operation {orig_uuid} on this terminal; refunds and voids are made at the "
                              "terminal that recorded the original", code="unknown_operation")
        if entry.kind not in kinds:
            raise DomainError(f"Operation {orig_uuid} is a {entry.kind}; only a {' or '.join(kinds)} can be "
                              "reversed this way", code="not_refundable" if kinds == ("sale",) else "not_voidable")
        return entry

    def _reversals(self, original: JournalEntry) -> tuple[int, bool]:
        """(minor units already refunded, voided?) for an original operation, from this terminal's journal."""
        member = str(original.payload.get("member"))
        refunded, voided = 0, False
        for e in self.store.journal.entries_for_member(member, limit=None, after_seq=original.seq,
                                                       newest_first=False):
            if e.payload.get("orig") != original.uuid:
                continue
            if e.kind == "refund":
                refunded += int(e.payload["amount"])
            elif e.kind == "void":
                voided = True
        return refunded, voided

    @staticmethod
    def _supervisor_id(supervisor: Cashier) -> str:
        require_role(supervisor, Role.SUPERVISOR)
        return supervisor.cashier_id

    def refund(self, orig_uuid: str, amount: Money, *, supervisor: Cashier,
               cashier_id: str | None = None) -> Receipt:
        """Refund part or all of a sale recorded here, approved by a signed-in supervisor."""
        supervisor_id = self._supervisor_id(supervisor)
        with self._lock.hold():
            offline = self.offline
            original = self._original(orig_uuid, ("sale",))
            refunded, voided = self._reversals(original)
            state, _ = self._member(str(original.payload["member"]))
            q = loyalty.quote_refund(state, original.payload, original.uuid, refund_amount=amount,
                                     already_refunded_minor=refunded, supervisor=supervisor_id,
                                     offline=offline, voided=voided)
            lines = [("Refund of", original.uuid[:8]), ("Amount", q.amount.to_decimal_string()),
                     ("To", TENDER_WORDS.get(q.tender, q.tender)), ("Points back", f"+{q.pts_back}"),
                     ("Points reversed", f"-{q.pts_rev}"), ("Still refundable", q.remaining_after.to_decimal_string()),
                     ("Supervisor", supervisor_id)]
            return self._commit(q, cashier_id, lines + self._after_lines(q.after), offline)

    def void(self, orig_uuid: str, *, supervisor: Cashier, cashier_id: str | None = None) -> Receipt:
        """Cancel a whole sale or top-up recorded here, approved by a signed-in supervisor."""
        supervisor_id = self._supervisor_id(supervisor)
        with self._lock.hold():
            offline = self.offline
            original = self._original(orig_uuid, ("sale", "topup"))
            refunded, voided = self._reversals(original)
            state, _ = self._member(str(original.payload["member"]))
            q = loyalty.quote_void(state, original.kind, original.payload, original.uuid,
                                   already_refunded_minor=refunded, voided=voided, supervisor=supervisor_id,
                                   offline=offline)
            lines = [("Void of", f"{original.kind} {original.uuid[:8]}"),
                     ("Stored value", q.sv.to_decimal_string()), ("Points back", f"+{q.pts_back}"),
                     ("Points reversed", f"-{q.pts_rev}"), ("Supervisor", supervisor_id)]
            if q.coupons_back:
                lines.append(("Coupons back", ",".join(q.coupons_back)))
            return self._commit(q, cashier_id, lines + self._after_lines(q.after), offline)

    def redeem(self, card: CardClaims, points: int, item: str, *, cashier_id: str | None = None,
               manual: bool = False) -> Receipt:
        """Points for a gift item."""
        with self._lock.hold():
            offline = self.offline
            state, _ = self._member(card.member_id, card.tier)
            q = loyalty.quote_redeem(state, self.rules, points=points, item=item, card_id=card.card_id,
                                     offline=offline)
            lines = [("Gift", q.item), ("Points used", str(q.points)), ("Points now", str(q.after.points))]
            return self._commit(q, cashier_id, lines, offline, manual=manual)

    def upgrade_tier(self, card: CardClaims, *, cashier_id: str | None = None,
                     manual: bool = False) -> Receipt:
        """Move the member to the tier their yearly spend reached (the ledger then issues a replacement card)."""
        with self._lock.hold():
            offline = self.offline
            state, _ = self._member(card.member_id, card.tier)
            q = loyalty.quote_tier_upgrade(state, self.rules, card_id=card.card_id)
            lines = [("From", state.tier.value), ("To", q.after.tier.value),
                     ("Yearly spend", self._money(state.yearly_spend)), ("New card", "requested from the ledger")]
            return self._commit(q, cashier_id, lines, offline, manual=manual)

    def pay_membership_fee(self, card: CardClaims, tier: Tier, *, tender: str,
                           cashier_id: str | None = None,
                           manual: bool = False) -> Receipt:
        with self._lock.hold():
            offline = self.offline
            state, _ = self._member(card.member_id, card.tier)
            q = loyalty.quote_membership_fee(state, self.rules, tier=tier, tender=tender, now=self.clock(),
                                             card_id=card.card_id, offline=offline)
            self._check_risk(card.card_id, q.sv_debit, offline)
            until = time.strftime("%Y-%m-%d", time.gmtime(q.until))
            lines = [("Tier", q.tier.value), ("Fee", q.amount.to_decimal_string()),
                     ("Paid by", TENDER_WORDS[q.tender]), ("Valid until", until)]
            return self._commit(q, cashier_id, lines + self._after_lines(q.after), offline, manual=manual)

    def update_member(self, member_id: str, *, notes: str | None = None, prefs: Mapping[str, Any] | None = None,
                      cashier_id: str | None = None) -> Receipt:
        """Record new notes and/or preferences (encrypted at rest; synced so every store sees them)."""
        if notes is None and prefs is None:
            raise DomainError("Nothing to update: give notes or preferences", code="bad_input")
        payload: dict[str, Any] = {"member": member_id}
        if notes is not None:
            payload["notes"] = notes
        if prefs is not None:
            payload["prefs"] = {str(k): str(v) for k, v in prefs.items()}
        with self._lock.hold():
            entry = self.store.journal.append("member_update", payload, cashier_id)
        return Receipt(entry=entry, lines=(("Details", "updated"),), after=None, offline=self.offline)

    # -- people ---------------------------------------------------------------------------------------------
    def sign_in(self, cashier_id: str, pin: str) -> Cashier:
        """Check a cashier's PIN; journal the sign-in, or the lockout when this attempt caused one."""
        now_ms = self.clock() * 1000
        try:
            cashier = self.store.cashiers.authenticate(cashier_id, pin, now=now_ms)
        except CashierAuthError as exc:
            if exc.reason == "locked" and exc.locked_until_ms == now_ms + LOCKOUT_MS:  # this attempt locked it
                with self._lock.hold():
                    self.store.journal.append("cashier_event", {"event": "lockout", "cashier": cashier_id})
            raise
        with self._lock.hold():
            self.store.journal.append("cashier_event", {"event": "sign_in", "cashier": cashier_id}, cashier_id)
        return cashier

    def authorize_supervisor(self, cashier_id: str, pin: str) -> Cashier:
        """A supervisor's approval (PIN checked, role required) for a refund or void."""
        supervisor = self.store.cashiers.authenticate(cashier_id, pin, now=self.clock() * 1000)
        require_role(supervisor, Role.SUPERVISOR)
        return supervisor

    # -- shifts ---------------------------------------------------------------------------------------------
    def z_report(self, since_ms: int, until_ms: int | None = None) -> ZReport:
        journal = self.store.journal
        return build_z_report(
            journal.iter_entries(), terminal_id=self.terminal_id, currency=self.rules.currency,
            since_ms=since_ms, until_ms=until_ms if until_ms is not None else self.clock() * 1000 + 1000,
            synced_seq=journal.synced_seq, unsynced_total=journal.queue_depth, original=journal.get,
        )

    def open_shift(self, shift_id: str, *, cashier_id: str | None = None) -> JournalEntry:
        with self._lock.hold():
            return self.store.journal.append("shift_open", {"shift": shift_id}, cashier_id)

    def close_shift(self, shift_id: str, since_ms: int, *, cashier_id: str | None = None) -> ZReport:
        """Journal the shift's Z-report totals as ``shift_close`` and return the report."""
        report = self.z_report(since_ms)
        with self._lock.hold():
            self.store.journal.append("shift_close", {"shift": shift_id, "totals": report.to_dict()}, cashier_id)
        return report
