"""cardpos ledger ...: init, serve, member, card, coupon, terminal, rules, keys, verify, audit, quarantine.

Wiring only: parse, open the ledger, call ``ledger.admin`` / ``ledger.server``, print. Every command takes
``--ledger-dir`` (default ``<data_dir>/ledger``) and ``--db`` (default: the database chosen at init).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import getpass
import json
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardkit import locations
from cardkit.cliutil import Subparsers, add_common, emit, settings_from_args
from cardkit.core.members import Tier
from cardkit.core.money import Money
from ledger.errors import LedgerError
from ledger.storage_errors import guard

if TYPE_CHECKING:
    from ledger.home import Ledger

Handler = Callable[[argparse.Namespace], int]


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "admin"


def _ledger_dir(args: argparse.Namespace) -> Path:
    if args.ledger_dir is not None:
        return Path(args.ledger_dir)
    return locations.ledger_dir(settings_from_args(args).data_dir)


def _open(args: argparse.Namespace) -> Path:
    ledger_dir = _ledger_dir(args)
    open_checked(ledger_dir, args.db)
    return ledger_dir


def open_checked(ledger_dir: Path, db: str | None) -> Ledger:
    """Open the ledger for a command (a damaged, read-only or unreachable database is one sentence)."""
    from ledger.home import open_ledger

    existing_db(db)
    return open_ledger(ledger_dir, db)


def storage_guarded(handler: Handler) -> Handler:
    """The admin commands' boundary: a database failure anywhere in ``handler`` (a full disk, a read-only or
    locked file, a lost connection) becomes a ``LedgerStorageError``, which ``cardpos`` prints as one line."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from ledger.store import describe_database

        with guard(describe_database):
            return handler(args)

    return run


def db_arg(text: str) -> str:
    """argparse type of ``--db``: a PostgreSQL URL or a SQLite file path, never another kind of URL (which would
    otherwise be taken for a relative file name and create a stray file)."""
    from ledger.store import is_postgres_url

    if "://" in text and not is_postgres_url(text):
        raise argparse.ArgumentTypeError("must be postgresql://user@host/db or a SQLite file path")
    return text


def existing_db(db: str | None) -> None:
    """An existing ledger is never opened from a SQLite file that is not there: opening would create an empty one
    (and its directories), and the command would then fail on missing tables."""
    from ledger.store import is_postgres_url, sqlite_path

    if db is None or is_postgres_url(db):
        return
    path = Path(db)
    if not (path.is_file() or sqlite_path(path).is_file()):
        raise LedgerError(f"there is no ledger database at {path}; check --db (or run 'cardpos ledger init')")


def at_least(low: float, kind: Callable[[str], Any] = int, high: float = 10**12) -> Callable[[str], Any]:
    """argparse type: a number of ``kind`` from ``low`` to ``high`` (a bound, so no huge value reaches SQLite's
    64-bit integers or the clock arithmetic)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value >= low:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be at least {low:g}, not {text}")
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:g}, not {text}")
        return value

    return parse


def more_than_zero(text: str) -> float:
    """argparse type: a float above zero and at most a year's worth of hours (durations)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 8760:
        raise argparse.ArgumentTypeError(f"must be more than zero and at most 8760 (a year), not {text}")
    return value


def port_arg(text: str) -> int:
    """argparse type: a TCP port number, 0 to 65535 (0 = any free port)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port number is 0 to 65535, not {text}")
    return value


def _non_negative_money(text: str | None, currency: str, flag: str) -> int | None:
    if not text:
        return None
    amount = Money.parse(text, currency)
    if amount.minor < 0:
        raise LedgerError(f"{flag} must not be negative ({text})")
    return amount.minor


def _common(parser: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    add_common(parser)
    parser.add_argument("--ledger-dir", type=Path, default=None,
                        help="ledger directory (default: <data dir>/ledger)")
    parser.add_argument("--db", type=db_arg, default=None,
                        help="database: postgresql://user@host/db or a SQLite file (default: as chosen at init)")
    parser.add_argument("--actor", default=_default_actor(), help="who is acting, for the audit log")
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _group(subparsers: Subparsers, name: str, help_text: str) -> Subparsers:
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    sub = parser.add_subparsers(dest=f"ledger_{name}_command", metavar="COMMAND", parser_class=type(parser))

    def show_help(_: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(handler=show_help)
    return sub


def _command(subparsers: Subparsers, name: str, help_text: str, handler: Handler,
             json_flag: bool = True) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    _common(parser, json_flag=json_flag)
    parser.set_defaults(handler=storage_guarded(handler))
    return parser


def _prefs(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LedgerError(f"preference {pair!r} must look like key=value")
        out[key.strip()] = value.strip()
    return out


def _basis_points(text: str) -> int:
    """'12.5' (percent) -> 1250 basis points, exactly (no float)."""
    match = re.fullmatch(r"(\d{1,3})(?:\.(\d{1,2}))?%?", text.strip())
    if not match:
        raise LedgerError(f"{text!r} is not a percentage; write it like 10 or 12.5")
    return int(match.group(1)) * 100 + int((match.group(2) or "").ljust(2, "0"))


def _not_blank(value: str | None, flag: str) -> str | None:
    """A store id or a name may be changed but never blanked: a blank store drops the member (or terminal) from
    every store, and a member without a name cannot be found at the counter."""
    if value is not None and not value.strip():
        raise LedgerError(f"{flag} must not be blank")
    return value


def _tier(text: str | None) -> Tier | None:
    return None if text is None else Tier.parse(text)


# -- init / serve / verify --------------------------------------------------------------------------------------
def _init(args: argparse.Namespace) -> int:
    from ledger.home import init_ledger

    ledger_dir = _ledger_dir(args)
    try:
        ledger = init_ledger(ledger_dir, args.db, args.issuer)
    except OSError as exc:  # an unwritable or impossible place (a file in the way, a read-only mount)
        where = exc.filename or ledger_dir
        raise LedgerError(f"cannot create the ledger in {where}: {exc.strerror}", orig=exc) from exc
    from ledger import admin, alerts
    from ledger.console import models as console_models
    from ledger.store import is_postgres_url, sqlite_path

    alerts.install(ledger_dir)
    console_models.create_tables()
    from ledger import cards_issue

    cards_issue.create_tables()  # new cards, sign-ups and member facts: made here, before workers start
    from ledger.settlement.hook import backfill

    backfill()  # a ledger from before funding lines gets them (issue 17)
    admin.audit_event("ledger_init", str(ledger_dir), actor=args.actor, issuer=ledger.issuer,
                      origin=f"host:{socket.gethostname()}")
    database = ("postgresql" if is_postgres_url(ledger.db_url)
                else str(ledger.db_url or sqlite_path(ledger_dir)))
    result = {"ledger_dir": str(ledger_dir), "issuer": ledger.issuer, "database": database,
              "root_public_key": ledger.keys.root_public().hex()}
    emit(result, args.json, f"ledger ready in {ledger_dir} (issuer {ledger.issuer}, database "
                            f"{result['database']})\nroot public key {result['root_public_key']}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ledger.enroll import CLEARTEXT_MEMBERS_ENV
    from ledger.server import serve
    from ledger.store import is_postgres_url

    os.environ[CLEARTEXT_MEMBERS_ENV] = "1" if args.allow_cleartext_members else "0"  # workers inherit it

    if args.workers < 1:
        raise LedgerError("--workers must be at least 1")
    ledger = open_checked(_ledger_dir(args), args.db)  # fail here with one sentence, not in the server
    if args.workers > 1 and not is_postgres_url(ledger.db_url):
        raise LedgerError(f"--workers {args.workers} needs PostgreSQL: this ledger is on SQLite, where one process "
                          "writes at a time, so more workers would only queue on its lock; serve with --workers 1, "
                          "or move the ledger to PostgreSQL (see docs/operations.md)")
    _check_alert_settings(args)
    from ledger import store

    store.upgrade_schema()  # a ledger made by an older version gets its new tables and column limits
    from ledger.campaigns import tables

    tables.create_tables()  # member facts and campaigns on a ledger made before they existed (sign-up writes facts)
    return serve(_ledger_dir(args), args.db, host=args.host, port=args.port, workers=args.workers,
                 openapi=args.openapi)


def _check_alert_settings(args: argparse.Namespace) -> None:
    """Refuse bad alert settings here, in one sentence, rather than in every worker process."""
    from ledger import delivery

    delivery.load_config(_ledger_dir(args))


def _verify(args: argparse.Namespace) -> int:
    from ledger import admin, quarantine

    _open(args)
    problems = admin.verify_ledger()
    held = quarantine.count_quarantined()
    note = (f"{held} quarantined entr{'y' if held == 1 else 'ies'} (journaled, not applied; "
            "see 'cardpos ledger quarantine list')" if held else "")
    if args.json:
        emit({"ok": not problems, "problems": problems, "quarantined": held}, True, "")
    elif problems:
        print(f"ledger verify: {len(problems)} problem(s)")
        for problem in problems:
            print(f"  - {problem}")
        if note:
            print(f"  {note}")
    else:
        print("ledger verify: ok (chains intact, balances and points match their entries)")
        if note:
            print(f"  {note}")
    return 1 if problems else 0


def _quarantine_list(args: argparse.Namespace) -> int:
    from ledger import quarantine
    from ledger.cli_alerts import parse_since

    _open(args)
    since_ms = parse_since(args.since) if args.since else None
    rows = quarantine.list_quarantined(terminal=args.terminal, code=args.code, since_ms=since_ms, limit=args.limit)
    text = "\n".join(f"{r['terminal_id']}:{r['seq']:<8} {r['kind']:<14} {r['code']:<18} {r['member_id'] or '-':<12} "
                     f"{r['reason']}" for r in rows) or "no quarantined entries"
    emit({"entries": rows}, args.json, text)
    return 0


# -- members ----------------------------------------------------------------------------------------------------
def _member_add(args: argparse.Namespace) -> int:
    from ledger import admin

    _not_blank(args.store, "--store")
    _open(args)
    balance = _non_negative_money(args.balance, args.currency, "--balance") or 0
    member_id = admin.add_member(args.name, store_id=args.store, phone=args.phone, email=args.email,
                                 notes=args.notes, prefs=_prefs(args.pref), tier=args.tier, currency=args.currency,
                                 balance=balance, points=args.points, member_id=args.id, actor=args.actor)
    emit({"member_id": member_id}, args.json, member_id)
    return 0


def _member_update(args: argparse.Namespace) -> int:
    from ledger import admin

    _not_blank(args.name, "--name")
    _not_blank(args.store, "--store")
    if all(getattr(args, f) is None for f in ("name", "phone", "email", "notes", "store", "pref")):
        raise LedgerError("nothing to change: give --name, --phone, --email, --notes, --store or --pref")
    _open(args)
    admin.update_member(args.member_id, name=args.name, phone=args.phone, email=args.email, notes=args.notes,
                        prefs=_prefs(args.pref), store_id=args.store, actor=args.actor)
    emit({"member_id": args.member_id, "updated": True}, args.json, f"member {args.member_id} updated")
    return 0


def _member_show(args: argparse.Namespace) -> int:
    from ledger import admin

    _open(args)
    view = admin.member_view(args.member_id, history=args.history, actor=args.actor, via="cli",
                             origin=f"host:{socket.gethostname()}")
    if args.json:
        emit(view, True, "")
        return 0
    print("\n".join(member_lines(view)))
    return 0


def member_lines(view: dict[str, Any]) -> list[str]:
    """``member show`` as text: every fact the JSON has, one labelled line each (empty ones as "-")."""
    cur = view["currency"]
    lines = [
        f"member   {view['member_id']}  {view['name']}  (store {view['store_id']})",
        f"phone    {view['phone'] or '-'}",
        f"email    {view['email'] or '-'}",
        f"notes    {view['notes'] or '-'}",
        f"tier     {view['tier']}",
        f"balance  {view['balance_text']}",
        f"points   {view['points']}",
        f"spend    {Money(view['yearly_spend'], cur)} this year",
        "prefs    " + (", ".join(f"{k}={v}" for k, v in sorted(view["prefs"].items())) or "-"),
    ]
    for card in view["cards"]:
        extra = f" -> {card['replaced_by']}" if card["replaced_by"] else ""
        reason = f" ({card['reason']})" if card["reason"] else ""
        lines.append(f"card     {card['card_id']}  {card['tier']}  {card['status']}{reason}{extra}"
                     f"{'  challenge' if card['challenge'] else ''}  key {card['kid']}  issued "
                     f"{_day(card['issued_at'])}  expires {_day(card['expires_at'])}")
    for coupon in view["coupons"]:
        what = (str(Money(coupon["amount_off"], cur)) if coupon["amount_off"] is not None
                else f"{coupon['percent_off_bp'] / 100:g}%")  # display only; never used in arithmetic
        minimum = f"  min spend {Money(coupon['min_spend'], cur)}" if coupon["min_spend"] else ""
        lines.append(f"coupon   {coupon['coupon_id']}  {what} off{minimum}  valid {_day(coupon['valid_from'])} to "
                     f"{_day(coupon['valid_until'])}{'  stackable' if coupon['stackable'] else ''}"
                     f"{'  used' if coupon['used'] else ''}")
    lines.append(f"history  {view['entries']} entries" + (" (latest below)" if view["history"] else ""))
    for entry in view["history"]:
        details = " ".join(f"{k}={_plain(v)}" for k, v in sorted(entry["payload"].items()))
        lines.append(f"  {_when(entry['wall_ms'])}  {entry['terminal_id']}/{entry['seq']}  {entry['kind']}  "
                     f"{entry['uuid']}  {details}".rstrip())
    return lines


def _day(epoch_s: int) -> str:
    return datetime.datetime.fromtimestamp(epoch_s, datetime.UTC).strftime("%Y-%m-%d")


def _when(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return "-"
    return datetime.datetime.fromtimestamp(epoch_ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _valid_until(epoch_s: int) -> str:
    try:
        return _day(epoch_s)
    except (OverflowError, OSError, ValueError):
        return "no end"  # keys that never expire carry a far-future sentinel beyond the calendar


def _plain(value: Any) -> str:
    """A value inside a text line: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _member_find(args: argparse.Namespace) -> int:
    from ledger import admin

    if args.phone is None and args.email is None and args.name is None and args.legacy_card is None:
        raise LedgerError("nothing to look up: give --phone, --email, --name or --legacy-card")
    _open(args)
    by_details = args.phone is not None or args.email is not None or args.name is not None
    found = admin.find_members(phone=args.phone, email=args.email, name=args.name) if by_details else []
    if args.legacy_card is not None:  # all given must match: the old number's member, if the details found them
        from ledger.importer.legacy import legacy_card_member

        owner = legacy_card_member(args.legacy_card)
        found = [owner] if not by_details or owner["member_id"] in {m["member_id"] for m in found} else []
    text = "\n".join(f"{m['member_id']}  {m['name']}  (store {m['store_id']})" for m in found) or "no member found"
    emit({"members": found}, args.json, text)
    return 0


# -- cards ------------------------------------------------------------------------------------------------------
def _card_result(issued: Any) -> dict[str, Any]:
    return {"card_id": issued.card_id, "member_id": issued.member_id, "tier": issued.tier.value, "kid": issued.kid,
            "token_text": issued.token_text, "challenge": issued.card_private_key is not None}


def _open_wallet(args: argparse.Namespace) -> Any:
    """The ``--wallet`` file, read BEFORE a card is issued: a challenge card's private key
    exists only in that file, so a wallet that cannot take it must stop the issue, not follow it."""
    if not args.wallet:
        return None
    from cardkit.wallet import Wallet

    path = Path(args.wallet)
    return Wallet.load(path) if path.exists() else Wallet()


def _to_wallet(args: argparse.Namespace, wallet: Any, issued: Any) -> None:
    if wallet is None:
        return
    from cardkit.wallet import WalletCard

    path = Path(args.wallet)
    key = issued.card_private_key
    wallet.add(WalletCard(label=args.label or f"{issued.member_id} ({issued.tier.value})",
                          kind="challenge" if key is not None else "valid", token_text=issued.token_text,
                          card_private_key_hex=key.hex() if key is not None else None))
    wallet.save(path)


def _card_issue(args: argparse.Namespace) -> int:
    from ledger import admin

    _open(args)
    wallet = _open_wallet(args)
    member_id = args.member
    if args.legacy_card is not None:
        from ledger.importer.legacy import member_of_legacy_card

        member_id = member_of_legacy_card(args.legacy_card)
    issued = admin.issue_card(member_id, _tier(args.tier), challenge=args.challenge, expires_days=args.expires_days,
                              actor=args.actor)
    _to_wallet(args, wallet, issued)
    emit(_card_result(issued), args.json, issued.token_text)
    return 0


def _card_replace(args: argparse.Namespace) -> int:
    from ledger import admin

    _open(args)
    wallet = _open_wallet(args)
    issued = admin.replace_card(args.card_id, _tier(args.tier), args.actor, expires_days=args.expires_days)
    _to_wallet(args, wallet, issued)
    emit({**_card_result(issued), "replaced": args.card_id}, args.json, issued.token_text)
    return 0


def _member_signups(args: argparse.Namespace) -> int:
    from ledger import signup

    _open(args)
    rows = signup.signups(merged_only=args.conflicts)
    lines = [f"{_when(r['at_ms'])}  {r['provisional_id']} -> {r['member_id']}  {r['outcome']} at {r['terminal_id']}"
             + ("  conflict resolved: same phone as the existing member" if r["outcome"] == "merged" else "")
             for r in rows]
    emit({"signups": rows}, args.json, "\n".join(lines) or "no sign-ups")
    return 0


def _card_requests(args: argparse.Namespace) -> int:
    from ledger import cards_issue

    _open(args)
    cards_issue.create_tables()
    pending = cards_issue.pending_requests(args.member)
    issued = cards_issue.issued_requests(args.member)
    lines = [(f"waiting  {r['member_id']}  card {r['card_id']} ({r['card_tier']}) -> {r['tier']}"
              if r["kind"] == "upgrade" else f"waiting  {r['member_id']}  first card (signed up at the till)")
             + f"  asked {_when(r['asked_ms'])} at {r['terminal_id']}  request {r['request']}" for r in pending]
    lines += [f"issued   {r['member_id']}  card {r['old_card']} -> {r['new_card']} ({r['tier']})  "
              f"{_when(r['issued_ms'])} for {r['terminal_id']}  request {r['request']}" for r in issued]
    hint = (["replace a waiting card with 'cardpos ledger card replace CARD_ID --tier TIER', or let the terminal "
             "ask again ('cardpos terminal op newcard')"] if pending else [])
    emit({"pending": pending, "issued": issued}, args.json, "\n".join(lines + hint) or "no new card requests")
    return 0


def _card_status(action: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        from ledger import admin

        _open(args)
        if action == "revoke":
            version = admin.revoke_card(args.card_id, args.reason, args.actor)
        elif action == "hold":
            version = admin.hold_card(args.card_id, args.reason, args.actor)
        else:
            version = admin.unhold_card(args.card_id, args.actor)
        words = {"revoke": "revoked", "hold": "on hold", "unhold": "active again"}[action]
        emit({"card_id": args.card_id, "status": action, "revocation_version": version}, args.json,
             f"card {args.card_id} {words} (revocation list version {version})")
        return 0

    return handler


# -- coupons ----------------------------------------------------------------------------------------------------
def _coupon_issue(args: argparse.Namespace) -> int:
    from ledger import admin, store

    _open(args)
    member = store.Member.get_or_none(store.Member.member_id == args.member)
    if member is None:
        raise LedgerError(f"there is no member {args.member!r}")
    currency = str(member.currency)
    amount = Money.parse(args.amount, currency).minor if args.amount else None
    percent_bp = _basis_points(args.percent) if args.percent else None
    min_spend = _non_negative_money(args.min_spend, currency, "--min-spend")
    if args.merchant is not None:
        from ledger.merchants import admin as merchant_admin

        merchant_admin.merchant_view(args.merchant)  # an unknown merchant stops the issue before it happens
    coupon_id = admin.issue_coupon(args.member, amount_off=amount, percent_off_bp=percent_bp, min_spend=min_spend,
                                   valid_days=args.days, stackable=args.stackable, actor=args.actor)
    if args.merchant is not None:
        merchant_admin.set_coupon_funder(coupon_id, args.merchant, actor=args.actor)
    emit({"coupon_id": coupon_id, "member_id": args.member}, args.json, coupon_id)
    return 0


# -- terminals --------------------------------------------------------------------------------------------------
def _terminal_add(args: argparse.Namespace) -> int:
    from ledger import admin

    _not_blank(args.store, "--store")
    _open(args)
    terminal_id, code = admin.add_terminal(args.name, args.store, actor=args.actor,
                                           code_ttl_s=int(args.ttl_hours * 3600))
    emit({"terminal_id": terminal_id, "code": code, "store_id": args.store}, args.json,
         f"{code}\nterminal {terminal_id} ({args.name}, store {args.store}); the code works once, for "
         f"{args.ttl_hours:g} hours: cardpos terminal enroll --ledger URL --code {code}")
    return 0


def _terminal_status(action: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        from ledger import admin

        _open(args)
        {"disable": admin.disable_terminal, "enable": admin.enable_terminal,
         "revoke": admin.revoke_terminal}[action](args.terminal_id, args.actor)
        emit({"terminal_id": args.terminal_id, "status": action}, args.json,
             f"terminal {args.terminal_id} {action}d")
        return 0

    return handler


def _terminal_list(args: argparse.Namespace) -> int:
    from ledger import admin

    _open(args)
    rows = admin.list_terminals()
    text = "\n".join(f"{r['terminal_id']}  {r['status']:<8}  store {r['store_id']:<10}  seq {r['last_seq']:<8} "
                     f" last seen {_when(r['last_seen_ms'])}  suite {r['suite'] or '-'}  {r['name']}"
                     for r in rows) or "no terminals"
    emit({"terminals": rows}, args.json, text)
    return 0


# -- rules and keys ---------------------------------------------------------------------------------------------
def _rules_load(args: argparse.Namespace) -> int:
    from ledger import admin

    _open(args)
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        raise LedgerError(f"cannot read rules file {args.file}: {exc.strerror}", orig=exc) from exc
    except UnicodeDecodeError as exc:
        raise LedgerError(f"rules file {args.file} is not UTF-8 text", orig=exc) from exc
    version = admin.load_rules(text, args.actor)
    emit({"version": version}, args.json, f"rules version {version} loaded; terminals get it on their next pull")
    return 0


def _keys(action: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        from ledger import admin

        _open(args)
        if action == "rotate":
            kid = admin.rotate_issuer_key(args.actor)
            emit({"kid": kid}, args.json, f"new current issuer key {kid}; older cards keep verifying until retired")
        elif action == "retire":
            admin.retire_issuer_key(args.kid, args.actor)
            emit({"kid": args.kid, "retired": True}, args.json,
                 f"issuer key {args.kid} retired; its cards stop verifying once terminals pull the trust list")
        else:
            rows = admin.list_keys()
            text = "\n".join(f"{r['kid']:<20} {r['kind']:<22} {'current' if r['current'] else '':<8}"
                             f"{'retired ' + _when(r['retired_ms']) if r['retired_ms'] else ''}  valid "
                             f"{_day(r['not_before'])} to {_valid_until(r['not_after'])}  {r['public_key']}"
                             for r in rows)
            emit({"keys": rows}, args.json, text)
        return 0

    return handler


def _points_expire(args: argparse.Namespace) -> int:
    from ledger import admin

    _open(args)
    taken = admin.expire_points(args.actor)
    emit({"expired": taken}, args.json,
         f"{sum(taken.values())} points expired from {len(taken)} member(s)" if taken else "no points to expire")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from ledger import admin

    _open(args)
    if args.rejected:
        rows = admin.rejected_batches(args.limit)
        text = "\n".join(f"{_when(r['at_ms'])}  terminal {r['terminal_id'] or '-'}  batch {r['batch_id'] or '-'}  "
                         f"{r['reason']}  seqs {_plain(r['seqs'])}  {r['detail']}".rstrip()
                         for r in rows) or "no refused batches"
    else:
        rows = admin.audit_log(args.limit)
        text = "\n".join(f"{_when(r['at_ms'])}  {r['actor']}  {r['action']}  {r['subject'] or '-'}  "
                         + " ".join(f"{k}={_plain(v)}" for k, v in sorted((r["details"] or {}).items()))
                         for r in rows) or "no audit entries"
    emit({"rows": rows}, args.json, "\n".join(line.rstrip() for line in text.splitlines()))
    return 0


# -- registration -----------------------------------------------------------------------------------------------
def register(subparsers: Subparsers) -> None:
    p = _command(subparsers, "init", "create the ledger: database schema and keys (safe to run again)", _init)
    p.add_argument("--issuer", default=None, help="issuer name written into every card (default: cardpos)")

    p = _command(subparsers, "serve", "run the ledger HTTP API", _serve, json_flag=False)
    p.add_argument("--allow-cleartext-members", action="store_true",
                   help="send member snapshots signed but in clear to terminals enrolled before they were sealed "
                        "(default: refuse their pulls and ask to enroll them again)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=port_arg, default=8750, help="port to listen on (default 8750)")
    p.add_argument("--workers", type=at_least(1), default=1, help="worker processes (use PostgreSQL for more than one)")
    p.add_argument("--openapi", action="store_true", help="also serve the API schema at /openapi.json (off by default)")

    _command(subparsers, "verify", "recompute balances, points and chains; exit 1 listing any problem", _verify)

    p = _command(subparsers, "audit", "show the audit log (or the refused batches)", _audit)
    p.add_argument("--rejected", action="store_true", help="show refused batches instead")
    p.add_argument("--limit", type=at_least(1), default=50, help="most rows shown (default 50)")

    members = _group(subparsers, "member", "members: add, update, find, show")
    p = _command(members, "add", "add a member (prints the member id)", _member_add)
    p.add_argument("name", help="the member's name")
    p.add_argument("--store", default="store-1", help="home store (its terminals receive the member)")
    p.add_argument("--phone", default="")
    p.add_argument("--email", default="")
    p.add_argument("--notes", default="")
    p.add_argument("--pref", action="append", metavar="KEY=VALUE", help="a preference (repeatable)")
    p.add_argument("--tier", default="standard", help="standard, preferred, gold or platinum")
    p.add_argument("--currency", default="CNY")
    p.add_argument("--balance", default=None, help="opening stored value, e.g. 100.00")
    p.add_argument("--points", type=at_least(0), default=0, help="opening points")
    p.add_argument("--id", default=None, help="member id (default: a random one)")
    p = _command(members, "update", "change a member's details", _member_update)
    p.add_argument("member_id")
    p.add_argument("--name")
    p.add_argument("--phone")
    p.add_argument("--email")
    p.add_argument("--notes")
    p.add_argument("--store")
    p.add_argument("--pref", action="append", metavar="KEY=VALUE", help="set a preference; KEY= removes it")
    p = _command(members, "find", "find members by phone, email or name (exact; all given must match)", _member_find)
    p.add_argument("--phone", help="any way of writing the number: only its digits count")
    p.add_argument("--email", help="any case")
    p.add_argument("--name", help="one or more whole words of the name, any case and order")
    p.add_argument("--legacy-card", metavar="NUMBER", help="the member's card number in the previous system "
                                                            "(imported by 'cardpos ledger import')")
    p = _command(members, "signups", "members signed up at the tills: created, or merged onto the member with the "
                                     "same phone (a conflict the ledger resolved)", _member_signups)
    p.add_argument("--conflicts", action="store_true", help="only the merged ones")
    p = _command(members, "show", "balance, points, tier, coupons, cards and history", _member_show)
    p.add_argument("member_id")
    p.add_argument("--history", type=at_least(0), default=20, help="how many recent entries to show")
    from ledger.campaigns.cli import register_member_facts

    register_member_facts(members)

    cards = _group(subparsers, "card", "cards: issue, revoke, hold, unhold, replace, requests")
    p = _command(cards, "issue", "issue a card token (prints its text form)", _card_issue)
    whose = p.add_mutually_exclusive_group(required=True)
    whose.add_argument("--member")
    whose.add_argument("--legacy-card", metavar="NUMBER",
                       help="the member whose imported card number from the previous system this is")
    p.add_argument("--tier", default=None, help="default: the member's tier; another tier moves the member")
    p.add_argument("--challenge", action="store_true", help="a challenge-response card with its own key")
    p.add_argument("--expires-days", type=int, default=730)
    p.add_argument("--wallet", type=Path, default=None, help="also add the card to this simulator wallet file")
    p.add_argument("--label", default=None, help="the card's label in the wallet")
    p = _command(cards, "revoke", "revoke a card for good", _card_status("revoke"))
    p.add_argument("card_id")
    p.add_argument("--reason", required=True, help="lost, stolen, fraud, ... (1-32 characters)")
    p = _command(cards, "hold", "put a card on hold", _card_status("hold"))
    p.add_argument("card_id")
    p.add_argument("--reason", default="hold")
    p = _command(cards, "unhold", "lift a hold", _card_status("unhold"))
    p.add_argument("card_id")
    p = _command(cards, "replace", "replace a card (tier upgrade): new card, old one revoked", _card_replace)
    p.add_argument("card_id")
    p.add_argument("--tier", default=None, help="tier of the new card (default: the old card's)")
    p.add_argument("--expires-days", type=int, default=730)
    p.add_argument("--wallet", type=Path, default=None, help="also add the new card to this simulator wallet file")
    p.add_argument("--label", default=None)
    p = _command(cards, "requests", "new cards asked for by tier upgrades at terminals: waiting, and issued online",
                 _card_requests)
    p.add_argument("--member", default=None, help="only this member's")

    coupons = _group(subparsers, "coupon", "e-coupons: issue")
    p = _command(coupons, "issue", "give a member an e-coupon (prints its id)", _coupon_issue)
    p.add_argument("--member", required=True)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--amount", help="amount off, e.g. 20.00")
    what.add_argument("--percent", help="percent off, e.g. 10 or 12.5")
    p.add_argument("--min-spend", default=None, help="minimum spend, e.g. 100.00")
    p.add_argument("--days", type=at_least(1, high=36500), default=90, help="valid for this many days")
    p.add_argument("--stackable", action="store_true")
    p.add_argument("--merchant", default=None, help="the merchant that issues and funds it (default: the program)")

    terminals = _group(subparsers, "terminal", "terminals: add, disable, enable, revoke, list")
    p = _command(terminals, "add", "register a terminal; prints its one-time enrollment code", _terminal_add)
    p.add_argument("name")
    p.add_argument("--store", default="store-1")
    p.add_argument("--ttl-hours", type=more_than_zero, default=24.0, help="how long the code works (default 24)")
    for action, help_text in (("disable", "refuse a terminal's syncs (reversible with enable)"),
                              ("enable", "accept a disabled terminal again"),
                              ("revoke", "refuse a terminal for good")):
        p = _command(terminals, action, help_text, _terminal_status(action))
        p.add_argument("terminal_id")
    _command(terminals, "list", "list terminals", _terminal_list)

    held = _group(subparsers, "quarantine", "entries terminals signed that the ledger would not apply")
    p = _command(held, "list", "quarantined entries, newest first: terminal:seq, kind, code, member, reason",
                 _quarantine_list)
    p.add_argument("--terminal", help="only this terminal's entries")
    p.add_argument("--code", help="only this reason code (refund_exceeds, unknown_card, not_members_card, ...)")
    p.add_argument("--since", help="only entries quarantined since: ISO 8601 (2026-11-23T10:00Z) or epoch s/ms")
    p.add_argument("--limit", type=at_least(1), default=200, help="most entries shown (default 200)")

    rules = _group(subparsers, "rules", "loyalty rules: load")
    p = _command(rules, "load", "load a rules TOML file as the next version", _rules_load)
    p.add_argument("file", type=Path)

    points = _group(subparsers, "points", "loyalty points: expire")
    _command(points, "expire", "take back points older than the rules' expiry_days (run daily)", _points_expire)

    keys = _group(subparsers, "keys", "issuer keys: rotate, retire, list")
    _command(keys, "rotate", "make a new current issuer key", _keys("rotate"))
    p = _command(keys, "retire", "retire an issuer key (its cards stop verifying)", _keys("retire"))
    p.add_argument("kid")
    _command(keys, "list", "list the ledger's keys", _keys("list"))

    from ledger.merchants import cli as merchants_cli

    merchants_cli.register(subparsers)
    from ledger.settlement import cli as settlement_cli

    settlement_cli.register(subparsers)
    from ledger.importer import cli as import_cli

    import_cli.register(subparsers)

