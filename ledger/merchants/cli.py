"""``cardpos ledger merchant ...`` and ``cardpos ledger program ...``: wiring only (parse, open, call
``ledger.merchants.admin``, print)."""

from __future__ import annotations

import argparse
import re
from typing import Any

from cardkit.cliutil import Subparsers, emit
from cardkit.core.money import Money
from ledger.errors import LedgerError


def _overrides(args: argparse.Namespace, currency: str) -> dict[str, Any]:
    """The override flags given, in the overrides' mapping form (``--clear NAME`` maps NAME to None)."""
    from ledger.cli import _basis_points

    out: dict[str, Any] = {}
    if args.tier_discount:
        discounts: dict[str, int] = {}
        for pair in args.tier_discount:
            tier, sep, percent = pair.partition("=")
            if not sep or not tier.strip():
                raise LedgerError(f"--tier-discount {pair!r} must look like gold=12.5")
            discounts[tier.strip().lower()] = _basis_points(percent)
        out["tier_discount_bp"] = discounts
    if args.earn_per_point is not None:
        out["earn_minor_per_point"] = Money.parse(args.earn_per_point, currency).minor
    if args.coupons is not None:
        text = args.coupons.strip()
        out["coupons"] = text if text in ("all", "own") else [c.strip() for c in text.split(",") if c.strip()]
    if args.gift:
        out["gifts"] = list(args.gift)
    for name in getattr(args, "clear", None) or []:
        out[name] = None
    return out


def _merchant_lines(view: dict[str, Any]) -> str:
    overrides = view["overrides"]
    extra = "  ".join(f"{k}={v}" for k, v in sorted(overrides.items())) or "program rules"
    return (f"{view['merchant_id']:<16} {view['status']:<8} {view['name']}  stores {','.join(view['stores']) or '-'}"
            f"  terminals {','.join(view['terminals']) or '-'}  ({extra})")


def _merchant_add(args: argparse.Namespace) -> int:
    from ledger.cli import _open
    from ledger.merchants import admin

    _open(args)
    merchant_id = admin.add_merchant(args.name, merchant_id=args.id,
                                     overrides=_overrides(args, admin.program_settings().currency), actor=args.actor)
    emit({"merchant_id": merchant_id}, args.json, merchant_id)
    return 0


def _merchant_update(args: argparse.Namespace) -> int:
    from ledger.cli import _open
    from ledger.merchants import admin

    _open(args)
    overrides = _overrides(args, admin.program_settings().currency)
    if args.name is None and args.status is None and not overrides:
        raise LedgerError("nothing to change: give --name, --status or an override flag")
    view = admin.update_merchant(args.merchant_id, name=args.name, status=args.status,
                                 overrides=overrides or None, actor=args.actor)
    emit(view, args.json, _merchant_lines(view))
    return 0


def _merchant_list(args: argparse.Namespace) -> int:
    from ledger.cli import _open
    from ledger.merchants import admin

    _open(args)
    rows = admin.list_merchants()
    emit({"merchants": rows, "stores": admin.list_stores()}, args.json,
         "\n".join(_merchant_lines(r) for r in rows) or "no merchants (add one: cardpos ledger merchant add NAME)")
    return 0


def _merchant_store(args: argparse.Namespace) -> int:
    from ledger.cli import _not_blank, _open
    from ledger.merchants import admin

    _not_blank(args.store_id, "STORE")
    _open(args)
    admin.assign_store(args.store_id, args.merchant, name=args.name, actor=args.actor)
    emit({"store_id": args.store_id, "merchant_id": args.merchant}, args.json,
         f"store {args.store_id} belongs to merchant {args.merchant}")
    return 0


def _point_cost(text: str, currency: str) -> tuple[int, int]:
    """``0.01`` (per point) or ``1.00/100`` (per 100 points) -> (minor units, points)."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*(?:/\s*(\d{1,9}))?\s*", text)
    if not match:
        raise LedgerError(f"--point-cost {text!r} must look like 0.01 or 1.00/100")
    return Money.parse(match.group(1), currency).minor, int(match.group(2) or 1)


def _program_text(view: dict[str, Any]) -> str:
    cost = Money(view["point_cost_minor"], view["currency"])
    return (f"program  {view['name']}\nfloat    held by the {view['float_holder']}"
            f"{' (merchants settle with the program operator)' if view['float_holder'] == 'operator' else ''}\n"
            f"points   cost {cost} per {view['point_cost_points']} point(s)\n"
            f"reserve  {view['reserve_bp'] // 100}.{view['reserve_bp'] % 100:02d}% of the previous quarter's "
            "outstanding stored value")


def _program(action: str) -> Any:
    def handler(args: argparse.Namespace) -> int:
        from ledger.cli import _basis_points, _open
        from ledger.merchants import admin

        _open(args)
        if action == "show":
            view = admin.program_view()
        else:
            currency = args.currency or admin.program_settings().currency
            Money(0, currency)  # an unknown currency is refused here, in one sentence
            point_cost = _point_cost(args.point_cost, currency) if args.point_cost else None
            reserve = _basis_points(args.reserve) if args.reserve is not None else None
            if all(v is None for v in (args.name, args.float_holder, point_cost, reserve, args.currency)):
                raise LedgerError("nothing to change: give --name, --float-holder, --point-cost, --reserve or "
                                  "--currency")
            view = admin.set_program(name=args.name, float_holder=args.float_holder, point_cost=point_cost,
                                     reserve_bp=reserve, currency=args.currency, actor=args.actor)
        emit(view, args.json, _program_text(view))
        return 0

    return handler


def _override_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tier-discount", action="append", metavar="TIER=PERCENT",
                        help="this merchant's discount for a tier, e.g. gold=12.5 (repeatable)")
    parser.add_argument("--earn-per-point", metavar="AMOUNT",
                        help="net spend per point earned at 1x here, e.g. 2.00 (program rules: 1.00)")
    parser.add_argument("--coupons", metavar="all|own|ID,ID",
                        help="coupons accepted: all the program's, only its own, or those of the listed merchants")
    parser.add_argument("--gift", action="append", metavar="ITEM",
                        help="a gift redeemable for points here (repeatable; none: the whole catalogue)")


def register(subparsers: Subparsers) -> None:
    from ledger.cli import _command, _group

    merchants = _group(subparsers, "merchant", "merchants of the program: add, update, list, store")
    p = _command(merchants, "add", "add a merchant (prints its id)", _merchant_add)
    p.add_argument("name", help="the merchant's name, e.g. 'Hotel Spa'")
    p.add_argument("--id", default=None, help="merchant id (default: from the name, e.g. hotel-spa)")
    _override_flags(p)
    p = _command(merchants, "update", "rename, (de)activate or change a merchant's rule overrides", _merchant_update)
    p.add_argument("merchant_id")
    p.add_argument("--name")
    p.add_argument("--status", choices=("active", "inactive"))
    _override_flags(p)
    p.add_argument("--clear", action="append", metavar="OVERRIDE",
                   choices=("tier_discount_bp", "earn_minor_per_point", "coupons", "gifts"),
                   help="drop an override (back to the program's rule)")
    _command(merchants, "list", "list merchants with their stores, terminals and overrides", _merchant_list)
    p = _command(merchants, "store", "make a store one of a merchant's stores", _merchant_store)
    p.add_argument("store_id", metavar="STORE")
    p.add_argument("--merchant", required=True, help="the merchant the store belongs to")
    p.add_argument("--name", default=None, help="the store's name")

    program = _group(subparsers, "program", "the program: show, set (float holder, point cost, reserve)")
    _command(program, "show", "show the program's settings", _program("show"))
    p = _command(program, "set", "change the program's settings", _program("set"))
    p.add_argument("--name")
    p.add_argument("--float-holder", choices=("operator", "direct"),
                   help="operator: merchants settle with the program operator (default); direct: with each other")
    p.add_argument("--point-cost", metavar="AMOUNT[/POINTS]",
                   help="what points cost the issuing merchant, e.g. 0.01 or 1.00/100")
    p.add_argument("--reserve", metavar="PERCENT",
                   help="share of the previous quarter's outstanding stored value kept in escrow, e.g. 30")
    p.add_argument("--currency", default=None, help="the program's currency (default CNY)")
