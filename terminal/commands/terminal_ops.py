"""cardpos terminal op ... / cardpos terminal cashier ...: headless cashier operations for scripts.

Every operation goes through the same counter as the app (verify -> quote -> offline limits -> journal -> receipt).
Cards are given as their text form (``CP1:...``, as a QR code or keyboard-wedge scanner reads it, or from a file).
``--source`` says where that text came from: ``reader`` (the default: a scanner, a file or a script) or ``typed``
(a person keyed it in), and only a typed card is journaled as a manual entry, which the ledger watches per
cashier (``cashier_manual_entries``). A stored-value payment, points redemption or coupon use is authorized by the
ledger online when it answers within ``sync.authorize_timeout_s`` (docs/sync-protocol.md, "Online authorization"),
like in the app; a card whose member this terminal was not sent is looked up at the ledger (members at every
store, docs/sync-protocol.md "Members at every store") and, when the ledger cannot be reached, served on the
unknown-balance path with the app's words; ``refund`` and ``void`` fetch an original recorded at another terminal from
the ledger, with what is left to refund, and are authorized online like a payment; when the ledger cannot be reached
only this terminal's originals are reversed, another's is refused with the app's reason (``original_unavailable``,
``terminal.commands.op_ledger``); ``upgrade``, ``signup`` and ``newcard`` reach the ledger for a new card
(``terminal.commands.newcard_ops``); otherwise, and for everything else, a headless operation is an offline operation.

Exit status: 0 done; 1 declined, card rejected, not authorised or not recorded (the reason on one line, or as JSON
``{"ok": false, "error": code, "message": ...}``); 2 bad input (amount, option, unknown cashier).

With a receipt printer configured (``[printer] url``), an operation's receipt and the Z-report are also printed,
in the ``--cashier``'s language (the one they chose in the app) or the terminal's; ``--no-print`` skips it. A
receipt that does not print is still recorded (exit status 0, ``"printed": false`` and the reason in JSON, a
line on stderr); ``op reprint OPERATION_ID`` prints it again.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from cardkit.cards.textform import token_from_text
from cardkit.cards.token import TokenFormatError
from cardkit.cards.verdict import CardClaims
from cardkit.cliutil import Subparsers, add_common, emit, settings_from_args
from cardkit.config import Settings
from cardkit.core.members import Tier
from cardkit.core.money import Money
from cardkit.errors import CardposError, DomainError, MoneyError, SyncError
from terminal import documents
from terminal.commands import newcard_ops, op_ledger
from terminal.i18n import CASHIER_LANGUAGE_KEY, Words, words_for
from terminal.offline.cashiers import CashierAuthError, CashierRoleError, Role
from terminal.offline.store import TerminalStore
from terminal.service import newcard
from terminal.service.counter import Counter
from terminal.service.loader import open_counter
from terminal.service.receipt import Receipt
from terminal.service.signup import CONSENT_WORDING, SIGNUP_LANGUAGES, SignupForm
from terminal.service.views import MemberView, coupon_to_dict

if TYPE_CHECKING:
    from terminal.printer.device import ReceiptPrinter

log = logging.getLogger("cardpos.terminal.op")

EXIT_OK, EXIT_DECLINED, EXIT_BAD_INPUT = 0, 1, 2
TENDERS = ("sv", "cash", "bank_card")
CARD_SOURCES = ("reader", "typed")


class BadInput(CardposError):
    """Something on the command line is wrong (exit status 2)."""

    title = "Bad input"


class Refused(CardposError):
    """The operation was refused with a code (exit status 1)."""

    def __init__(self, message: str, *, code: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.extra = extra or {}


# -- parsers ------------------------------------------------------------------------------------------------------
def register(subparsers: Subparsers) -> None:
    op = subparsers.add_parser(
        "op", help="headless cashier operations (sale, top-up, refund, void, redeem, balance, history)",
        description="Run one cashier operation through the same engine and journal as the app. Amounts are "
                    "decimal strings (12.50). Exit status: 0 done, 1 declined or rejected (reason given), "
                    "2 bad input.")
    ops = op.add_subparsers(dest="op_command", metavar="OPERATION", parser_class=type(op))
    op.set_defaults(handler=lambda args: _help(op))

    def command(name: str, help_text: str, handler: Callable[[Counter, argparse.Namespace], Result],
                *, card: bool = True) -> argparse.ArgumentParser:
        parser = ops.add_parser(name, help=help_text, description=help_text)
        add_common(parser)
        if card:
            parser.add_argument("--card", required=True, metavar="TOKEN_TEXT",
                                help="the card's text form (CP1:...), as a scanner or a file gives it")
            parser.add_argument("--source", choices=CARD_SOURCES, default="reader",
                                help="where --card came from: reader (a scanner, file or script; default) or typed "
                                     "(keyed in by a person: journaled as a manual entry)")
        parser.add_argument("--cashier", metavar="ID", default=None, help="cashier recorded with the operation")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--no-print", action="store_true",
                            help="do not print the receipt or report on the configured printer (printer.url)")
        parser.set_defaults(handler=lambda args: _run(args, handler))
        return parser

    sale = command("sale", "sell: tier discount, coupons, points, then pay by stored value or another tender",
                   _sale)
    sale.add_argument("amount", help="gross amount, e.g. 12.50")
    sale.add_argument("--tender", choices=TENDERS, default="sv",
                      help="sv = stored value (default), cash or bank_card (recorded, not processed)")
    sale.add_argument("--coupon", action="append", default=[], metavar="ID", help="use a coupon (repeatable)")
    sale.add_argument("--redeem-points", type=int, default=0, metavar="N", help="points to pay with")

    topup = command("topup", "add stored value (with the best top-up bonus)", _topup)
    topup.add_argument("amount", help="amount paid, e.g. 500.00")
    topup.add_argument("--tender", choices=("cash", "bank_card"), default="cash", help="how it is paid")

    redeem = command("redeem", "spend points on a gift item", _redeem)
    redeem.add_argument("--points", type=int, required=True, metavar="N", help="points to spend")
    redeem.add_argument("--item", required=True, help="the gift item")

    gift = command("gift", "spend points on an item of this store's gift catalogue (its points come from the "
                           "rules; `op gifts` lists them)", _gift)
    gift.add_argument("--item", required=True, metavar="ID", help="the catalogue item's id, e.g. mug")
    command("gifts", "list this store's gift catalogue (id, points, name), from the rules the ledger sent",
            _gifts, card=False)

    def reversal(name: str, help_text: str, handler: Callable[[Counter, argparse.Namespace], Result], *,
                 amount_help: str | None = None) -> None:
        parser = command(name, help_text, handler, card=False)
        parser.add_argument("orig", metavar="OPERATION_ID", help="id (uuid) of the original sale or top-up")
        if amount_help is not None:
            parser.add_argument("amount", help=amount_help)
        parser.add_argument("--supervisor", required=True, metavar="ID", help="approving supervisor")
        parser.add_argument("--supervisor-pin-env", required=True, metavar="VAR",
                            help="environment variable holding the supervisor's PIN")

    reversal("refund", "refund part or all of a sale recorded at any terminal of the program (fetched from the "
                       "ledger; offline: recorded on this terminal); needs a supervisor", _refund,
             amount_help="amount to refund, e.g. 5.00")
    reversal("void", "cancel a whole sale or top-up recorded at any terminal of the program (fetched from the "
                     "ledger; offline: recorded on this terminal); needs a supervisor", _void)

    command("balance", "show a member's balance, points, tier and usable coupons", _balance)
    history = command("history", "show this terminal's recent operations with a card", _history)
    history.add_argument("-n", type=int, default=10, help="how many operations (default 10)")
    history.add_argument("--by", choices=("card", "member"), default="card",
                         help="card: this card's operations; member: the member's, with any of their cards")

    upgrade = command("upgrade", "move the member to the tier their yearly spend reached, then get the new card "
                                 "from the ledger and write it to a blank card on the reader", _upgrade)
    newcard_ops.add_writer_options(upgrade)
    upgrade.add_argument("--no-new-card", action="store_true",
                         help="only record the upgrade; the new card stays queued ('op newcard' gets it)")
    signup = command("signup", "register a new member at the till (provisional id until the ledger confirms it) and "
                               "write their card through the reader", _signup, card=False)
    signup.add_argument("--name", required=True, help="the member's name")
    signup.add_argument("--phone", required=True, help="the member's mobile number")
    signup.add_argument("--birthday", default=None, metavar="YYYY-MM-DD", help="optional")
    signup.add_argument("--language", choices=SIGNUP_LANGUAGES, default="zh", help="the member's language")
    signup.add_argument("--sms", action="store_true", help="the member agreed to offers by SMS (wording shown)")
    signup.add_argument("--mail", action="store_true", help="the member agreed to offers by mail (wording shown)")
    newcard_ops.add_writer_options(signup)
    again = command("newcard", "get a tier upgrade's new card from the ledger (the same card on every retry) and "
                               "write it to a blank card on the reader", _newcard, card=False)
    newcard_ops.add_writer_options(again)
    again.add_argument("--for", dest="old_card", metavar="ID", default=None,
                       help="the upgraded (old) card's id, or a sign-up's provisional member id (default: the only "
                            "new card waiting here)")
    fee = command("fee", "pay the annual membership fee of a tier", _fee)
    fee.add_argument("--tier", required=True, choices=[t.value for t in Tier], help="tier bought")
    fee.add_argument("--tender", choices=TENDERS, default="cash", help="how it is paid")

    zreport = command("zreport", "counts and totals per operation and tender since a time", _zreport, card=False)
    zreport.add_argument("--since-ms", type=int, default=0, metavar="EPOCH_MS", help="start of the period")
    reprint = command("reprint", "print again the receipt of an operation recorded on this terminal (a copy, "
                                 "from the journal)", _reprint, card=False)
    reprint.add_argument("orig", metavar="OPERATION_ID", help="id (uuid) of the operation")

    cashier = subparsers.add_parser("cashier", help="set up cashiers and supervisors of this terminal",
                                    description="Add or list the people who may work this terminal.")
    people = cashier.add_subparsers(dest="cashier_command", metavar="COMMAND", parser_class=type(cashier))
    cashier.set_defaults(handler=lambda args: _help(cashier))
    add = people.add_parser("add", help="add a cashier, supervisor or technician",
                            description="Add a person with a PIN (4 to 12 digits) read from --pin-env VAR or, "
                                        "without it, from the first line of standard input.")
    add_common(add)
    add.add_argument("cashier_id", metavar="ID")
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--pin-env", metavar="VAR", default=None, help="environment variable holding the PIN")
    add.add_argument("--json", action="store_true", help="print the result as JSON")
    add.set_defaults(handler=_cashier_add)
    listing = people.add_parser("list", help="list cashiers (ids, roles, lockouts)")
    add_common(listing)
    listing.add_argument("--json", action="store_true", help="print the result as JSON")
    listing.set_defaults(handler=_cashier_list)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_BAD_INPUT


# -- running ------------------------------------------------------------------------------------------------------
Paper: TypeAlias = Callable[[Words, int], list[str]]
"""What a result prints: its lines in a language and a number of columns (``Receipt.printed``,
``ZReport.printed``)."""
Result: TypeAlias = tuple[dict[str, Any], str] | tuple[dict[str, Any], str, Paper]


def _fail(args: argparse.Namespace, status: int, code: str, message: str, extra: dict[str, Any] | None = None) -> int:
    if getattr(args, "json", False):
        emit({"ok": False, "error": code, "message": message, **(extra or {})}, True, "")
    else:
        print(f"cardpos: {message}", file=sys.stderr)
    return status


def _run(args: argparse.Namespace, handler: Callable[[Counter, argparse.Namespace], Result]) -> int:
    from terminal.compose import open_printer

    try:
        settings = settings_from_args(args)
        # A printer URL that cannot work is refused before anything is recorded.
        printer = None if args.no_print else open_printer(settings.printer)
        counter = open_counter(settings)
    except CardposError as exc:
        return _fail(args, EXIT_DECLINED, "not_ready", str(exc))
    # A card op looks up a member this terminal was not sent; a refund or void fetches an original recorded at
    # another terminal (``terminal.commands.op_ledger``).
    op_command = getattr(args, "op_command", None)
    asks_ledger = getattr(args, "card", None) is not None or op_command in op_ledger.REVERSAL_OPS
    lookups = op_ledger.attach_for_op(counter, settings, op_command) if asks_ledger else None
    try:
        if args.cashier is not None and counter.store.cashiers.get(args.cashier) is None:
            raise BadInput(f"no cashier with id {args.cashier}; add one with 'cardpos terminal cashier add'")
        outcome = handler(counter, args)
        result, text = outcome[0], outcome[1]
        if len(outcome) == 3 and printer is not None:
            result = {**result, **_print(printer, settings, counter, args, outcome[2], result)}
    except (BadInput, MoneyError) as exc:
        return _fail(args, EXIT_BAD_INPUT, "bad_input", str(exc))
    except Refused as exc:
        return _fail(args, EXIT_DECLINED, exc.code, str(exc), exc.extra)
    except DomainError as exc:
        return _fail(args, EXIT_DECLINED, exc.code, f"declined: {exc}")
    except (CashierAuthError, CashierRoleError) as exc:
        return _fail(args, EXIT_DECLINED, "not_authorized", f"not authorised: {exc}")
    except CardposError as exc:
        return _fail(args, EXIT_DECLINED, "not_recorded", str(exc))
    finally:
        if lookups is not None:
            lookups.close()
        counter.close()
    emit(result, args.json, text)
    return EXIT_OK


def _print(printer: ReceiptPrinter, settings: Settings, counter: Counter, args: argparse.Namespace, paper: Paper,
           result: dict[str, Any]) -> dict[str, Any]:
    """Print a recorded result; what became of it, for the JSON. The operation is recorded whatever happens
    here: a printer problem is a line on stderr, not a failure."""
    from terminal.printer.errors import PrinterError

    key = CASHIER_LANGUAGE_KEY.format(cashier_id=args.cashier)
    chosen = counter.store.sync_state.get(key) if args.cashier else None
    words = words_for(chosen if isinstance(chosen, str) else settings.terminal.lang)
    try:
        printer.print_lines(paper(words, printer.columns))
    except PrinterError as exc:
        again = f"; print it again with 'cardpos terminal op reprint {result['uuid']}'" if "uuid" in result else ""
        print(f"cardpos: not printed: {exc} (recorded{again})", file=sys.stderr)
        return {"printed": False, "print_error": str(exc)}
    return {"printed": True}


def _amount(counter: Counter, text: str) -> Money:
    amount = Money.parse(text, counter.rules.currency)
    if amount.minor <= 0:
        raise BadInput(f"amount {text!r} must be more than zero")
    return amount


def _tap(counter: Counter, args: argparse.Namespace) -> tuple[CardClaims, MemberView]:
    """Verify the card text; a card that fails is journaled (by the counter) and reported as refused."""
    try:
        token = token_from_text(args.card)
    except TokenFormatError:
        token = args.card.encode("utf-8", "replace")  # unreadable: verification journals it as malformed
    tap = counter.tap(token, manual=_typed(args))
    if not tap.accepted or tap.member is None:
        reason = tap.verdict.reason
        words = reason.words if reason is not None else "Card refused"
        raise Refused(f"card rejected: {words}", code="card_rejected",
                      extra={"reason": reason.value if reason is not None else None})
    return tap.claims, tap.member


def _typed(args: argparse.Namespace) -> bool:
    """A card a person keyed in is a manual entry; one from a scanner, a file or a script is not."""
    return bool(args.source == "typed")


def _receipt(receipt: Receipt) -> Result:
    return receipt.to_dict(), receipt.to_text().rstrip("\n"), receipt.printed


def _supervisor(counter: Counter, args: argparse.Namespace) -> Any:
    pin = os.environ.get(args.supervisor_pin_env)
    if not pin:
        raise BadInput(f"environment variable {args.supervisor_pin_env} with the supervisor's PIN is not set")
    return counter.authorize_supervisor(args.supervisor, pin)


def _sale(counter: Counter, args: argparse.Namespace) -> Result:
    amount = _amount(counter, args.amount)
    if args.redeem_points < 0:
        raise BadInput("--redeem-points must be zero or more")
    claims, _ = _tap(counter, args)
    return _receipt(counter.sale(claims, amount, tender=args.tender, coupon_ids=args.coupon,
                                 redeem_points=args.redeem_points, cashier_id=args.cashier, manual=_typed(args)))


def _topup(counter: Counter, args: argparse.Namespace) -> Result:
    amount = _amount(counter, args.amount)
    claims, _ = _tap(counter, args)
    return _receipt(counter.topup(claims, amount, tender=args.tender, cashier_id=args.cashier, manual=_typed(args)))


def _redeem(counter: Counter, args: argparse.Namespace) -> Result:
    if args.points <= 0:
        raise BadInput("--points must be more than zero")
    claims, _ = _tap(counter, args)
    return _receipt(counter.redeem(claims, args.points, args.item, cashier_id=args.cashier, manual=_typed(args)))


def _gift(counter: Counter, args: argparse.Namespace) -> Result:
    claims, _ = _tap(counter, args)
    return _receipt(counter.redeem_gift(claims, args.item, cashier_id=args.cashier, manual=_typed(args)))


def _gifts(counter: Counter, args: argparse.Namespace) -> Result:
    gifts = counter.rules.gifts_at(counter.store_id)
    listed = [{"id": g.item_id, "points": g.points, "names": dict(g.names)} for g in gifts]
    lines = [f"{g.item_id:<12} {g.points:>7} pts  {g.name('en')}" for g in gifts]
    lines = lines or ["no gifts in this store's catalogue"]
    return {"ok": True, "store": counter.store_id, "gifts": listed}, "\n".join(lines)


def _refund(counter: Counter, args: argparse.Namespace) -> Result:
    amount = _amount(counter, args.amount)
    supervisor = _supervisor(counter, args)
    return _receipt(counter.refund(args.orig, amount, supervisor=supervisor, cashier_id=args.cashier))


def _void(counter: Counter, args: argparse.Namespace) -> Result:
    supervisor = _supervisor(counter, args)
    return _receipt(counter.void(args.orig, supervisor=supervisor, cashier_id=args.cashier))


def _upgrade(counter: Counter, args: argparse.Namespace) -> Result:
    claims, _ = _tap(counter, args)
    receipt = counter.upgrade_tier(claims, cashier_id=args.cashier, manual=_typed(args))
    result, text, paper = receipt.to_dict(), receipt.to_text().rstrip("\n"), receipt.printed
    if args.no_new_card:
        p = receipt.entry.payload
        newcard.remember_upgrade(counter.store, old_card=str(p["card"]), request=receipt.entry.uuid,
                                 member_id=str(p["member"]), tier=str(p["to"]))
        return {**result, "new_card": {"stage": "queued"}}, f"{text}\nNew card queued ('op newcard' gets it)", paper
    extra, words = newcard_ops.after_upgrade(counter, args, receipt)
    return {**result, **extra}, f"{text}\n{words}", paper


def _signup(counter: Counter, args: argparse.Namespace) -> Result:
    form = SignupForm(name=args.name, phone=args.phone, birthday=args.birthday, language=args.language,
                      sms=args.sms, mail=args.mail)
    store_id = documents.require_enrollment(counter.store.data_dir).store_id
    receipt = counter.signup(form, store_id=store_id, cashier_id=args.cashier)
    result, text, paper = receipt.to_dict(), receipt.to_text().rstrip("\n"), receipt.printed
    wording = words_for(args.language)(f"consent.{CONSENT_WORDING}")
    extra, words = newcard_ops.after_signup(counter, args, receipt)
    return ({**result, **extra, "consent_wording": {"id": CONSENT_WORDING, "text": wording}},
            f"{text}\nConsent wording shown ({CONSENT_WORDING}): {wording}\n{words}", paper)


def _newcard(counter: Counter, args: argparse.Namespace) -> Result:
    try:
        result, text = newcard_ops.resume(counter, args)
    except newcard_ops.NewCardNotWritten as exc:
        raise Refused(str(exc), code="new_card_not_written") from exc
    except SyncError as exc:
        raise Refused(str(exc), code="no_new_card") from exc
    return {"ok": True, **result}, text


def _fee(counter: Counter, args: argparse.Namespace) -> Result:
    claims, _ = _tap(counter, args)
    return _receipt(counter.pay_membership_fee(claims, Tier(args.tier), tender=args.tender,
                                               cashier_id=args.cashier, manual=_typed(args)))


def _balance(counter: Counter, args: argparse.Namespace) -> Result:
    _, view = _tap(counter, args)
    coupons = ", ".join(_coupon_words(c) for c in (coupon_to_dict(c) for c in view.coupons)) or "none"
    lines = [
        f"Member {view.member_id} {view.name}".rstrip() + f" ({view.tier.value})",
        f"Balance {view.balance}",
        f"Points {view.points}",
        f"Yearly spend {view.yearly_spend}",
        f"Coupons {coupons}",
    ]
    if view.upgrade_due is not None:
        lines.append(f"Qualifies for {view.upgrade_due.value}")
    if not view.known:  # the unknown-balance path: no figures to stand on, never a silent 0.00
        lines[1:3] = ["Balance unknown", "Points unknown"]
        lines.append(words_for("en")("member.unknown_explain"))  # the app's member screen says the same
        if view.lookup_problem:
            lines.append(f"Look-up at the ledger: {view.lookup_problem}")
    # Figures come from the last sync, or from a look-up of a member this terminal was not sent.
    last_sync_ms = counter.store.sync_state.last_sync_ms
    synced = (datetime.fromtimestamp(last_sync_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
              if last_sync_ms else None)
    looked_up = view.known and counter.store.cache.looked_up_seq(view.member_id) is not None
    if looked_up:
        lines.append("Looked up at the ledger: this terminal's store is not sent this member")
    elif view.pending:
        lines.append("Offline estimate: includes operations the ledger has not confirmed yet; "
                     "confirmed at the next sync")
    elif synced is not None:
        lines.append(f"As of the last sync, {synced}: no operation since")
    else:
        lines.append("Offline estimate: this terminal has never synced")
    return ({"ok": True, **view.to_dict(), "last_sync": synced, "looked_up": looked_up,
             "lookup_problem": view.lookup_problem or None}, "\n".join(lines))


def _coupon_words(c: dict[str, Any]) -> str:
    off = f"{c['amount_off']} off" if c["amount_off"] else f"{c['percent_off_bp'] / 100:g}% off"
    return f"{c['coupon_id']} ({off}{', min ' + c['min_spend'] if c['min_spend'] else ''})"


def _history(counter: Counter, args: argparse.Namespace) -> Result:
    if not 0 < args.n <= 10_000:
        raise BadInput("-n must be more than zero and at most 10000")
    claims, _ = _tap(counter, args)
    by_member = args.by == "member"
    ops = counter.member_history(claims.member_id, args.n) if by_member else counter.history(claims.card_id, args.n)
    lines = [f"{op.when}  #{op.seq:<6} {op.summary}{'' if op.synced else '  (not synced)'}  {op.uuid}"
             for op in ops] or [f"no operations with this {'member' if by_member else 'card'} on this terminal"]
    return ({"ok": True, "card": claims.card_id, "member": claims.member_id, "by": args.by,
             "operations": [op.to_dict() for op in ops]}, "\n".join(lines))


def _zreport(counter: Counter, args: argparse.Namespace) -> Result:
    if not 0 <= args.since_ms <= 10**13:  # 10**13 ms is the year 2286: beyond it the clock arithmetic overflows
        raise BadInput("--since-ms must be epoch milliseconds, from 0 up to 10000000000000")
    report = counter.z_report(args.since_ms)
    return {"ok": True, **report.to_dict()}, report.to_text().rstrip("\n"), report.printed


def _reprint(counter: Counter, args: argparse.Namespace) -> Result:
    return _receipt(counter.receipt_copy(args.orig))


# -- cashiers -----------------------------------------------------------------------------------------------------
def _open_store(args: argparse.Namespace) -> TerminalStore:
    settings = settings_from_args(args)
    enrollment = documents.require_enrollment(settings.data_dir)
    return TerminalStore.open(settings.data_dir, enrollment.terminal_id)


def _cashier_add(args: argparse.Namespace) -> int:
    if args.pin_env is not None:
        pin = os.environ.get(args.pin_env, "")
        if not pin:
            return _fail(args, EXIT_BAD_INPUT, "bad_input", f"environment variable {args.pin_env} is not set")
    else:
        pin = sys.stdin.readline().strip()
    try:
        store = _open_store(args)
    except CardposError as exc:
        return _fail(args, EXIT_DECLINED, "not_ready", str(exc))
    try:
        cashier = store.cashiers.add(args.cashier_id, args.name, args.role, pin)
    except CardposError as exc:
        status = EXIT_BAD_INPUT if exc.title == "Bad PIN" else EXIT_DECLINED
        return _fail(args, status, "bad_input" if status == EXIT_BAD_INPUT else "refused", str(exc))
    finally:
        store.close()
    emit({"ok": True, "cashier": cashier.cashier_id, "role": cashier.role.value}, args.json,
         f"added {cashier.role.value} {cashier.cashier_id}")
    return EXIT_OK


def _cashier_list(args: argparse.Namespace) -> int:
    try:
        store = _open_store(args)
    except CardposError as exc:
        return _fail(args, EXIT_DECLINED, "not_ready", str(exc))
    try:
        people = store.cashiers.list_all()
    finally:
        store.close()
    rows = [{"cashier": c.cashier_id, "role": c.role.value, "locked_until_ms": c.locked_until_ms} for c in people]
    if args.json:
        print(json.dumps({"ok": True, "cashiers": rows}, sort_keys=True))
    else:
        print("\n".join(f"{r['cashier']}  {r['role']}" for r in rows) or "no cashiers")
    return EXIT_OK
