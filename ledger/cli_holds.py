"""cardpos ledger holds ...: list held authorizations, release one by hand (``ledger.holds``).

Wiring only: parse, open the ledger and its holds, call ``ledger.holds``, print. Exit status 0 done, 1 refused
(an unknown authorization, one that holds nothing any more: the reason on one line), 2 bad usage.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import Any

from cardkit.cliutil import Subparsers, emit
from ledger.authorize import STATES
from ledger.cli import _common, _group, _open, at_least, storage_guarded


def register(subparsers: Subparsers) -> None:
    holds = _group(subparsers, "holds", "held authorizations (online payments awaiting their operation): list, "
                                        "release")
    p = holds.add_parser("list", help="authorizations, newest first: id, state, member, terminal, amounts, times",
                         description="Authorizations the ledger decided online, newest first. A held one is "
                                     "marked when its operation is already applied (settled at the next sweep) "
                                     "or it is past its expiry (expired at the next sweep).")
    _common(p)
    p.add_argument("--member", help="only this member's")
    p.add_argument("--state", choices=STATES, help="only in this state (held: still counted against the member)")
    p.add_argument("--terminal", help="only those asked by this terminal id")
    p.add_argument("--limit", type=at_least(1, high=100_000), default=200, help="most shown (default 200)")
    p.set_defaults(handler=storage_guarded(_list))

    p = holds.add_parser("release", help="give a held authorization back before it expires (audited)",
                         description="Release a held authorization whose operation will never reach the ledger "
                                     "(the till broke before recording it): the member's balance, points and "
                                     "coupons are available again at once. Refused for one that is settled, "
                                     "expired, released or declined.")
    _common(p)
    p.add_argument("auth_id", metavar="AUTHORIZATION_ID",
                   help="the authorization's id (16 hex digits, on the receipt and in 'holds list') or its "
                        "operation's uuid")
    p.add_argument("--reason", required=True, help="why (written to the audit log)")
    p.set_defaults(handler=storage_guarded(_release))


def _open_holds(args: argparse.Namespace) -> Any:
    from ledger import holds
    from ledger.home import current

    _open(args)
    holds.open_for_admin()
    return current()


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _list(args: argparse.Namespace) -> int:
    from ledger import holds

    ledger = _open_holds(args)
    rows = holds.list_holds(member=args.member, state=args.state, terminal=args.terminal, limit=args.limit,
                            now_ms=ledger.now_ms())
    lines = []
    for r in rows:
        what = [f"sv {r['sv_text']}"] if r["sv"] else []
        what += [f"points {r['points']}"] if r["points"] else []
        what += [f"coupons {','.join(r['coupons'])}"] if r["coupons"] else []
        notes = []
        if r["state"] == "held" and r["entry_applied"]:
            notes.append("operation applied: settled at the next sweep")
        elif r["past_expiry"]:
            notes.append("past expiry: expired at the next sweep")
        if r["state"] == "declined":
            notes.append(f"declined: {r['reason']}")
        until = (f"until {_when(r['expires_ms'])}" if r["state"] == "held"
                 else f"closed {_when(r['closed_ms'])}")
        lines.append(f"{r['auth_id']}  {r['state']:<8} {r['member']:<12} {r['terminal']:<12} "
                     f"{' '.join(what) or '-':<20} asked {_when(r['created_ms'])}  {until}"
                     + (f"  ({'; '.join(notes)})" if notes else ""))
    emit({"holds": rows}, args.json, "\n".join(lines) or "no authorizations")
    return 0


def _release(args: argparse.Namespace) -> int:
    from ledger import holds

    ledger = _open_holds(args)
    try:
        released = holds.release(args.auth_id, reason=args.reason, actor=args.actor, now_ms=ledger.now_ms())
    except holds.HoldRefused as exc:
        if args.json:
            emit({"ok": False, "error": "refused", "message": exc.message}, True, "")
        else:
            print(f"cardpos: {exc.message}", file=sys.stderr)
        return 1
    emit({"ok": True, **released}, args.json,
         f"authorization {released['auth_id']} released for member {released['member']} (audited)")
    return 0
