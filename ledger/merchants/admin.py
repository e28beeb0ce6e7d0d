"""Operations on the merchant model of the open ledger: the program's settings, merchants, store assignment,
coupon funders, and the look-ups settlement and other ledger modules build on.

Every change runs in one write transaction with its audit-log row (who, what, when).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cardkit.errors import CardposError
from ledger import store
from ledger.errors import LedgerError
from ledger.home import current
from ledger.merchants import rules
from ledger.merchants.models import FLOAT_HOLDERS, PROGRAM, CouponFunder, Merchant, ProgramSettings, Store
from ledger.merchants.overrides import MERCHANT_ID, MerchantOverrides, overrides_from_mapping

LEDGER_TERMINAL_ID = "ledger"  # ledger.apply's own chain: its entries are the program's own


def _audit(actor: str, action: str, subject: str, **details: Any) -> None:
    store.AuditLog.create(at_ms=current().now_ms(), actor=actor, action=action, subject=subject, details=details)


# -- the program ------------------------------------------------------------------------------------------------
def program_settings() -> ProgramSettings:
    """The program's settings (the defaults until someone sets them)."""
    row = ProgramSettings.get_or_none(ProgramSettings.program_id == PROGRAM)
    return row if row is not None else ProgramSettings(program_id=PROGRAM)


def set_program(*, name: str | None = None, float_holder: str | None = None,
                point_cost: tuple[int, int] | None = None, reserve_bp: int | None = None,
                currency: str | None = None, actor: str = "admin") -> dict[str, Any]:
    """Change the program's settings; ``point_cost`` is (minor units, per this many points)."""
    if float_holder is not None and float_holder not in FLOAT_HOLDERS:
        raise LedgerError(f"the float holder is one of {', '.join(FLOAT_HOLDERS)}, not {float_holder!r}")
    if point_cost is not None and (point_cost[0] < 0 or point_cost[1] < 1):
        raise LedgerError("a point cost is zero or more minor units per one or more points")
    if reserve_bp is not None and not 0 <= reserve_bp <= 10_000:
        raise LedgerError("the reserve is a share from 0% to 100%")
    if name is not None and not name.strip():
        raise LedgerError("the program needs a name")
    with store.atomic_write():
        row = program_settings()
        changes: dict[str, Any] = {}
        for field, value in (("name", name and name.strip()), ("float_holder", float_holder),
                             ("reserve_bp", reserve_bp), ("currency", currency)):
            if value is not None:
                setattr(row, field, value)
                changes[field] = value
        if point_cost is not None:
            row.point_cost_minor, row.point_cost_points = point_cost
            changes["point_cost"] = list(point_cost)
        row.updated_ms = current().now_ms()
        row.save(force_insert=ProgramSettings.get_or_none(ProgramSettings.program_id == PROGRAM) is None)
        _audit(actor, "program_update", PROGRAM, **changes)
    return program_view()


def program_view() -> dict[str, Any]:
    row = program_settings()
    return {"name": row.name, "float_holder": row.float_holder, "currency": row.currency,
            "point_cost_minor": int(row.point_cost_minor), "point_cost_points": int(row.point_cost_points),
            "reserve_bp": int(row.reserve_bp)}


# -- merchants --------------------------------------------------------------------------------------------------
def _merchant(merchant_id: str) -> Merchant:
    row = Merchant.get_or_none(Merchant.merchant_id == merchant_id)
    if row is None:
        raise LedgerError(f"there is no merchant {merchant_id!r} (see: cardpos ledger merchant list)")
    return row


def _check_merchant_id(merchant_id: str) -> str:
    if not MERCHANT_ID.fullmatch(merchant_id) or merchant_id == PROGRAM:
        raise LedgerError(f"a merchant id is 1 to 32 lower-case letters, digits, - or _ (and not {PROGRAM!r}); "
                          f"{merchant_id!r} is not")
    return merchant_id


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:32] or "merchant"


def add_merchant(name: str, *, merchant_id: str | None = None,
                 overrides: Mapping[str, Any] | None = None, actor: str = "admin") -> str:
    """Create a merchant; returns its id (from ``name`` when none is given)."""
    if not name.strip():
        raise LedgerError("a merchant needs a name")
    merchant_id = _check_merchant_id(merchant_id or _slug(name))
    checked = _checked_overrides(overrides or {})
    now = current().now_ms()
    with store.atomic_write():
        if Merchant.get_or_none(Merchant.merchant_id == merchant_id) is not None:
            raise LedgerError(f"merchant {merchant_id} already exists")
        Merchant.create(merchant_id=merchant_id, name=name.strip(), status="active", overrides=checked.to_mapping(),
                        created_ms=now, updated_ms=now)
        _audit(actor, "merchant_add", merchant_id, name=name.strip(), overrides=checked.to_mapping())
    return merchant_id


def _checked_overrides(mapping: Mapping[str, Any]) -> MerchantOverrides:
    try:
        return overrides_from_mapping(mapping)
    except CardposError as exc:
        raise LedgerError(f"merchant overrides: {exc}", orig=exc) from exc


def update_merchant(merchant_id: str, *, name: str | None = None, status: str | None = None,
                    overrides: Mapping[str, Any] | None = None, actor: str = "admin") -> dict[str, Any]:
    """Rename, (de)activate, or change overrides; ``overrides`` are merged into the current ones field by field
    (a field set to None removes that override)."""
    if status is not None and status not in ("active", "inactive"):
        raise LedgerError(f"a merchant is active or inactive, not {status!r}")
    if name is not None and not name.strip():
        raise LedgerError("a merchant's name must not be blank")
    with store.atomic_write():
        row = _merchant(merchant_id)
        changes: dict[str, Any] = {}
        if name is not None:
            row.name = changes["name"] = name.strip()
        if status is not None:
            row.status = changes["status"] = status
        if overrides is not None:
            merged = {**(row.overrides or {}), **overrides}
            merged = {k: v for k, v in merged.items() if v is not None}
            row.overrides = changes["overrides"] = _checked_overrides(merged).to_mapping()
            rules.stamp_merchant(merchant_id, current().now_ms())  # its stores' terminals pull the change
        row.updated_ms = current().now_ms()
        row.save()
        _audit(actor, "merchant_update", merchant_id, **changes)
    return merchant_view(merchant_id)


def merchant_overrides(merchant_id: str) -> MerchantOverrides:
    """The merchant's checked overrides (none for the program and for stores without a merchant)."""
    row = Merchant.get_or_none(Merchant.merchant_id == merchant_id)
    return overrides_from_mapping(row.overrides or {}) if row is not None else MerchantOverrides()


def merchant_view(merchant_id: str) -> dict[str, Any]:
    row = _merchant(merchant_id)
    stores = [s.store_id for s in Store.select().where(Store.merchant_id == merchant_id).order_by(Store.store_id)]
    terminals = ([t.terminal_id for t in store.Terminal.select().where(store.Terminal.store_id.in_(stores))
                  .order_by(store.Terminal.terminal_id)] if stores else [])
    return {"merchant_id": row.merchant_id, "name": row.name, "status": row.status, "overrides": row.overrides or {},
            "stores": stores, "terminals": terminals}


def list_merchants() -> list[dict[str, Any]]:
    return [merchant_view(str(m.merchant_id)) for m in Merchant.select().order_by(Merchant.merchant_id)]


# -- stores -----------------------------------------------------------------------------------------------------
def assign_store(store_id: str, merchant_id: str, *, name: str | None = None, actor: str = "admin") -> None:
    """Make ``store_id`` one of ``merchant_id``'s stores (moving it from another merchant if it had one). Sales
    already applied keep the merchant they were recorded with; new ones settle with the new merchant."""
    if not store_id.strip() or store_id.strip() == "*":
        raise LedgerError("a store id must not be blank")
    now = current().now_ms()
    with store.atomic_write():
        _merchant(merchant_id)
        row = Store.get_or_none(Store.store_id == store_id)
        before = row.merchant_id if row is not None else None
        if row is None:
            Store.create(store_id=store_id, merchant_id=merchant_id, name=(name or "").strip(), assigned_ms=now)
        else:
            row.merchant_id = merchant_id
            row.assigned_ms = now
            if name is not None:
                row.name = name.strip()
            row.save()
        if before != merchant_id:
            rules.stamp_store(store_id, now)  # the store's terminals pull their new merchant's rules
        _audit(actor, "store_assign", store_id, merchant_id=merchant_id, previous=before)


def list_stores() -> list[dict[str, Any]]:
    return [{"store_id": s.store_id, "merchant_id": s.merchant_id, "name": s.name}
            for s in Store.select().order_by(Store.store_id)]


def merchant_store_ids(merchant_id: str) -> list[str]:
    """The stores of ``merchant_id`` (none for an unknown merchant)."""
    return [str(s.store_id) for s in Store.select(Store.store_id).where(Store.merchant_id == merchant_id)
            .order_by(Store.store_id)]


def merchant_of_store(store_id: str) -> str:
    row = Store.get_or_none(Store.store_id == store_id)
    return str(row.merchant_id) if row is not None else PROGRAM


def terminal_merchants(terminal_ids: list[str]) -> dict[str, str]:
    """The merchant each terminal's store belongs to (the program for the ledger's own chain and for stores that
    belong to no merchant)."""
    out = {tid: PROGRAM for tid in terminal_ids}
    rows: Any = (store.Terminal.select(store.Terminal.terminal_id, Store.merchant_id)
                 .join(Store, on=(Store.store_id == store.Terminal.store_id))
                 .where(store.Terminal.terminal_id.in_(terminal_ids)).tuples())
    for terminal_id, merchant_id in rows:
        if terminal_id != LEDGER_TERMINAL_ID:
            out[str(terminal_id)] = str(merchant_id)
    return out


def home_merchant(member_id: str) -> str:
    """The merchant of the member's home store, for reporting (members themselves belong to the program)."""
    member = store.Member.get_or_none(store.Member.member_id == member_id)
    if member is None:
        raise LedgerError(f"there is no member {member_id!r}")
    return merchant_of_store(str(member.store_id))


# -- coupons ----------------------------------------------------------------------------------------------------
def set_coupon_funder(coupon_id: str, merchant_id: str, *, actor: str = "admin") -> None:
    """Record that ``merchant_id`` issued and funds ``coupon_id`` (call in the coupon's issuing transaction or
    right after it)."""
    with store.atomic_write():
        _merchant(merchant_id)
        coupon = store.Coupon.get_or_none(store.Coupon.coupon_id == coupon_id)
        if coupon is None:
            raise LedgerError(f"there is no coupon {coupon_id!r}")
        CouponFunder.insert(coupon_id=coupon_id, merchant_id=merchant_id).on_conflict(
            conflict_target=[CouponFunder.coupon_id], update={CouponFunder.merchant_id: merchant_id}).execute()
        # The member's snapshot carries the funder (a merchant's till may refuse others' coupons): send it again.
        store.Member.update(version=store.bump("members")).where(
            store.Member.member_id == coupon.member_id).execute()
        _audit(actor, "coupon_funder", coupon_id, merchant_id=merchant_id)


def coupon_funders(coupon_ids: list[str]) -> dict[str, str]:
    """The funder of each coupon (the program when no merchant issued it)."""
    out = {cid: PROGRAM for cid in coupon_ids}
    if coupon_ids:
        for row in CouponFunder.select().where(CouponFunder.coupon_id.in_(coupon_ids)):
            out[str(row.coupon_id)] = str(row.merchant_id)
    return out
