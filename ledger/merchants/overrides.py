"""Per-merchant overrides of the program's rules: pure values, no I/O.

Where merchants of one program differ in practice: tier discounts, the points earning rate, which coupons they
accept and the gift catalogue. Everything else (tiers and their thresholds, stored value, the points balance and
its redemption value, membership fees) is program-wide and cannot be overridden.

Mapping form (stored as JSON on the merchant, every field optional)::

    {"tier_discount_bp": {"gold": 1500}, "earn_minor_per_point": 200,
     "coupons": "all" | "own" | ["merchant-id" or "program", ...], "gifts": ["towel", "Spa towel", ...]}

The terminals of a merchant's stores pull the program's rules with these applied (``rules_for_merchant``,
``ledger.merchants.rules``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cardkit.core.members import Tier
from cardkit.core.rules import BP_ONE, COUPON_POLICIES, Gift, MerchantRules, Rules
from cardkit.errors import ConfigError

MERCHANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
"""A merchant id (``ledger.merchants.admin`` makes them; the kernel's rules parser reads them back)."""


@dataclass(frozen=True, slots=True)
class MerchantOverrides:
    tier_discount_bp: Mapping[Tier, int] = dataclasses.field(default_factory=dict)
    earn_minor_per_point: int | None = None
    coupons: str | tuple[str, ...] = "all"
    """``all`` coupons of the program, only its ``own``, or those funded by the listed merchants (and its own)."""
    gifts: tuple[str, ...] = ()
    """Gift items (by id or name) redeemable for points at this merchant; empty: the program's whole catalogue."""

    def to_mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.tier_discount_bp:
            out["tier_discount_bp"] = {t.value: bp for t, bp in sorted(self.tier_discount_bp.items(),
                                                                        key=lambda kv: kv[0].rank)}
        if self.earn_minor_per_point is not None:
            out["earn_minor_per_point"] = self.earn_minor_per_point
        if self.coupons != "all":
            out["coupons"] = self.coupons if isinstance(self.coupons, str) else list(self.coupons)
        if self.gifts:
            out["gifts"] = list(self.gifts)
        return out


def _bp(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= BP_ONE:
        raise ConfigError(f"{what} must be a whole number of basis points from 0 to 10000")
    return value


def overrides_from_mapping(data: Mapping[str, Any]) -> MerchantOverrides:
    """Check and build overrides; raises ConfigError naming the first bad field."""
    if not isinstance(data, Mapping):
        raise ConfigError("merchant overrides must be a table")
    unknown = sorted(set(data) - {"tier_discount_bp", "earn_minor_per_point", "coupons", "gifts"})
    if unknown:
        raise ConfigError(f"unknown merchant override {unknown[0]!r}")
    discounts: dict[Tier, int] = {}
    raw = data.get("tier_discount_bp", {})
    if not isinstance(raw, Mapping):
        raise ConfigError("tier_discount_bp must map tiers to basis points")
    for name, bp in raw.items():
        discounts[Tier.parse(str(name))] = _bp(bp, f"the {name} discount")
    earn = data.get("earn_minor_per_point")
    if earn is not None and (type(earn) is not int or not 1 <= earn <= 10**9):
        raise ConfigError("earn_minor_per_point must be a whole number of minor units from 1 up")
    coupons = data.get("coupons", "all")
    if isinstance(coupons, list):
        if not all(isinstance(c, str) and MERCHANT_ID.fullmatch(c) for c in coupons):
            raise ConfigError("coupons must be all, own or a list of merchant ids")
        coupons = tuple(sorted(set(coupons)))
    elif coupons not in COUPON_POLICIES:
        raise ConfigError("coupons must be all, own or a list of merchant ids")
    gifts = data.get("gifts", [])
    if not isinstance(gifts, list) or not all(isinstance(g, str) and g.strip() for g in gifts):
        raise ConfigError("gifts must be a list of item names")
    return MerchantOverrides(tier_discount_bp=discounts, earn_minor_per_point=earn, coupons=coupons,
                             gifts=tuple(sorted({g.strip() for g in gifts})))


def rules_for_merchant(rules: Rules, overrides: MerchantOverrides, merchant_id: str) -> Rules:
    """The program's rules as they apply at ``merchant_id``'s stores: its tier discounts and earning rate folded
    into the tiers and points, its gift list narrowing the catalogue, and its coupon policy (with its id) in
    ``Rules.merchant``, which the counter's pure rules engine checks each coupon against."""
    tiers = {tier: dataclasses.replace(rule, discount_bp=overrides.tier_discount_bp.get(tier, rule.discount_bp))
             for tier, rule in rules.tiers.items()}
    points = rules.points
    if overrides.earn_minor_per_point is not None:
        points = dataclasses.replace(points, earn_minor_per_point=overrides.earn_minor_per_point)
    gifts = tuple(gift for gift in rules.gifts if offers_gift(overrides, gift))
    return dataclasses.replace(rules, tiers=tiers, points=points, gifts=gifts,
                               merchant=MerchantRules(merchant_id=merchant_id, coupons=overrides.coupons))


def accepts_coupon(overrides: MerchantOverrides, merchant_id: str, funder: str) -> bool:
    """Whether a coupon funded by ``funder`` (a merchant id, or the program) is accepted at ``merchant_id`` (the
    kernel's one rule, ``MerchantRules.accepts_coupon``)."""
    return MerchantRules(merchant_id=merchant_id, coupons=overrides.coupons).accepts_coupon(funder)


def offers_gift(overrides: MerchantOverrides, gift: Gift) -> bool:
    """Whether the merchant gives out ``gift``: its gift list names the item's id or one of its names (an empty
    list: the program's whole catalogue)."""
    if not overrides.gifts:
        return True
    return gift.item_id in overrides.gifts or any(name in overrides.gifts for name in gift.names.values())
