"""Loyalty rules and offline limits as one versioned, immutable value.

The ledger owns the rules: it loads them from a TOML file (``cardpos ledger rules load``), signs them and hands
them to terminals as ``documents/rules.cose`` whose payload is CBOR of :meth:`Rules.to_mapping`. A terminal that
has none uses :meth:`Rules.default`, which equals the shipped ``terminal/defaults/rules.toml`` (a test checks).

Conventions in the mapping/TOML form: money is a decimal string in the rules' currency (``"500.00"``), a missing
money field means "none" (TOML has no null), percentages are basis points (1% = 100 bp), multipliers are basis
points of 1x (``12500`` = 1.25x). Every field is checked; a bad one is reported as one sentence naming it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cardkit.core.members import Tier
from cardkit.core.money import Money, exponent_of
from cardkit.errors import ConfigError, MoneyError

BP_ONE = 10_000
"""Basis points in a whole: 10000 bp = 100% = a 1x multiplier."""


@dataclass(frozen=True, slots=True)
class TierRule:
    discount_bp: int
    """Discount on the gross amount of every sale for members of this tier."""
    points_multiplier_bp: int
    """Points earned are multiplied by this / 10000 (10000 = 1x)."""
    upgrade_yearly_spend: Money | None = None
    """Members whose spend this year reaches this amount qualify for the tier (None: not reachable by spend)."""
    annual_fee: Money | None = None
    """Members may buy a year of this tier for this fee (None: cannot be bought)."""


@dataclass(frozen=True, slots=True)
class TopupBonus:
    """Top up at least ``min_amount`` and get ``bonus`` extra stored value.

    Only the single best bonus applies to one top-up: the largest ``bonus`` among the rules whose ``min_amount``
    the top-up reaches. Bonuses never stack and are not multiplied (topping up 1000 with "500 gets 50" gets 50).
    """

    min_amount: Money
    bonus: Money


@dataclass(frozen=True, slots=True)
class PointsRule:
    earn_minor_per_point: int = 100
    """Minor units of net spend per point at 1x (100 = one point per 1.00)."""
    redeem_points_per_unit: int = 100
    """Points needed for one redemption unit; redemptions come in whole units."""
    redeem_unit_minor: int = 100
    """Value in minor units of one redemption unit (100 points = 1.00)."""
    max_redeem_bp_of_bill: int = 5000
    """Points may pay at most this share of the bill left after tier discount and coupons."""
    expiry_days: int = 365
    """Points expire this many days after they were earned (the ledger takes them back: ledger points expire)."""


@dataclass(frozen=True, slots=True)
class CouponRule:
    max_stacked: int = 2
    """Most coupons on one sale; using more than one needs every coupon to be stackable."""


@dataclass(frozen=True, slots=True)
class Gift:
    """One item of the gift catalogue: what a member can take for points, and in which stores."""

    item_id: str
    """What scripts and the journal name it by (``op gift --item ID``); letters, digits, ``-`` and ``_``."""
    points: int
    """What the gift costs, in points."""
    names: Mapping[str, str]
    """Its name by language (``en`` always, from ``name``; ``zh`` from ``name_zh``), shown as a name."""
    stores: tuple[str, ...] = ()
    """The store ids that give it out; empty means every store."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", _frozen_map(self.names))
        object.__setattr__(self, "stores", tuple(self.stores))

    def name(self, lang: str) -> str:
        """Its name in ``lang``, else in English."""
        return self.names.get(lang) or self.names["en"]

    def available_at(self, store_id: str | None) -> bool:
        """Whether the store gives it out (a terminal not yet enrolled in a store sees the whole catalogue)."""
        return not self.stores or store_id is None or store_id in self.stores


@dataclass(frozen=True, slots=True)
class OfflineLimits:
    sv_per_card_per_day: Money
    """Most stored value one card may spend offline at this terminal in any rolling 24 hours."""
    max_consecutive_offline_ops: int = 5
    """Most stored-value payments by one card offline since it was last used online."""
    max_since_sync_s: int = 86_400
    """No stored-value spending offline once the last successful sync is older than this."""
    sv_per_member_per_day: Money | None = None
    """Most stored value all of one member's cards together may spend offline at this terminal in any rolling 24
    hours (None: as ``sv_per_card_per_day``)."""
    cash_topup_per_op: Money | None = None
    """Largest cash top-up this terminal takes offline in one operation (None: no ceiling)."""
    cash_topup_per_day: Money | None = None
    """Most cash top-ups of one member (all cards) this terminal takes offline in any rolling 24 hours (None: no
    ceiling)."""

    @property
    def member_daily(self) -> Money:
        """The per-member 24-hour stored-value cap in force."""
        return self.sv_per_member_per_day if self.sv_per_member_per_day is not None else self.sv_per_card_per_day


PROGRAM_FUNDER = "program"
"""Who funds a coupon no merchant issued: the program operator (``Coupon.funder`` None means the same)."""
COUPON_POLICIES = ("all", "own")


@dataclass(frozen=True, slots=True)
class MerchantRules:
    """Which merchant's stores these rules are for, and what of the program's rules only that merchant decides
    beyond the figures already folded into the tiers, points and gifts (docs/merchants.md, "Rules at the
    counter"). Absent from the program's own rules; the ledger adds it to the rules it sends a merchant's store."""

    merchant_id: str
    coupons: str | tuple[str, ...] = "all"
    """Coupons accepted here: ``all`` of the program's, only the merchant's ``own``, or those funded by the listed
    funders (merchant ids, or ``program``) besides its own."""

    def __post_init__(self) -> None:
        if not isinstance(self.coupons, str):
            object.__setattr__(self, "coupons", tuple(sorted(set(self.coupons))))

    def accepts_coupon(self, funder: str | None) -> bool:
        """Whether a coupon funded by ``funder`` (a merchant id; None or ``program``: the program) is taken here."""
        funder = funder or PROGRAM_FUNDER
        if self.coupons == "all" or funder == self.merchant_id:
            return True
        if self.coupons == "own":
            return False
        return funder in self.coupons

    def to_mapping(self) -> dict[str, Any]:
        return {"id": self.merchant_id,
                "coupons": self.coupons if isinstance(self.coupons, str) else list(self.coupons)}


def _frozen_map(mapping: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class Rules:
    version: int
    currency: str
    tiers: Mapping[Tier, TierRule]
    topup_bonuses: tuple[TopupBonus, ...]
    points: PointsRule
    coupons: CouponRule
    offline: OfflineLimits
    anomalies: Mapping[str, int] = field(default_factory=dict)
    """Thresholds for the ledger's anomaly detectors, by detector name (see docs/loyalty-rules.md)."""
    gifts: tuple[Gift, ...] = ()
    """The gift catalogue: what points buy, in the order the till lists it."""
    merchant: MerchantRules | None = None
    """Set in the rules the ledger sends a merchant's store (its overrides applied); None: the program's rules."""

    def __post_init__(self) -> None:
        # Read-only views so a shared Rules value cannot be changed behind a quote's back.
        object.__setattr__(self, "tiers", _frozen_map(self.tiers))
        object.__setattr__(self, "anomalies", _frozen_map(self.anomalies))
        object.__setattr__(self, "topup_bonuses", tuple(self.topup_bonuses))
        object.__setattr__(self, "gifts", tuple(self.gifts))

    def tier(self, tier: Tier) -> TierRule:
        return self.tiers[tier]

    def gifts_at(self, store_id: str | None) -> tuple[Gift, ...]:
        """The catalogue as the till of ``store_id`` lists it."""
        return tuple(gift for gift in self.gifts if gift.available_at(store_id))

    def gift(self, item_id: str, store_id: str | None) -> Gift | None:
        """The catalogue item ``item_id`` if this store gives it out (None: not in its catalogue)."""
        return next((gift for gift in self.gifts_at(store_id) if gift.item_id == item_id), None)

    def money(self, minor: int) -> Money:
        return Money(minor, self.currency)

    def accepts_coupon(self, funder: str | None) -> bool:
        """Whether a coupon funded by ``funder`` is taken under these rules (the program's own rules take all)."""
        return self.merchant is None or self.merchant.accepts_coupon(funder)

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def default(cls) -> Rules:
        """The rules a terminal uses before the ledger has sent any (same as terminal/defaults/rules.toml)."""
        return cls.from_mapping(DEFAULT_RULES)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Rules:
        """Build and check rules from their mapping form; raises ConfigError naming the first bad field."""
        return _Parser(data).rules()

    def to_mapping(self) -> dict[str, Any]:
        """The mapping form (TOML/CBOR friendly: ints, strs, dicts, lists; money as decimal strings)."""

        def tier_map(rule: TierRule) -> dict[str, Any]:
            out: dict[str, Any] = {
                "discount_bp": rule.discount_bp,
                "points_multiplier_bp": rule.points_multiplier_bp,
            }
            if rule.upgrade_yearly_spend is not None:
                out["upgrade_yearly_spend"] = rule.upgrade_yearly_spend.to_decimal_string()
            if rule.annual_fee is not None:
                out["annual_fee"] = rule.annual_fee.to_decimal_string()
            return out

        out: dict[str, Any] = {
            "version": self.version,
            "currency": self.currency,
            "tiers": {tier.value: tier_map(self.tiers[tier]) for tier in Tier},
            "topup_bonuses": [
                {"min_amount": b.min_amount.to_decimal_string(), "bonus": b.bonus.to_decimal_string()}
                for b in self.topup_bonuses
            ],
            "points": {
                "earn_minor_per_point": self.points.earn_minor_per_point,
                "redeem_points_per_unit": self.points.redeem_points_per_unit,
                "redeem_unit_minor": self.points.redeem_unit_minor,
                "max_redeem_bp_of_bill": self.points.max_redeem_bp_of_bill,
                "expiry_days": self.points.expiry_days,
            },
            "coupons": {"max_stacked": self.coupons.max_stacked},
            "offline": {
                "sv_per_card_per_day": self.offline.sv_per_card_per_day.to_decimal_string(),
                "max_consecutive_offline_ops": self.offline.max_consecutive_offline_ops,
                "max_since_sync_s": self.offline.max_since_sync_s,
                **_optional_money({"sv_per_member_per_day": self.offline.sv_per_member_per_day,
                                   "cash_topup_per_op": self.offline.cash_topup_per_op,
                                   "cash_topup_per_day": self.offline.cash_topup_per_day}),
            },
            "anomalies": dict(sorted(self.anomalies.items())),
            "gifts": [_gift_map(gift) for gift in self.gifts],
        }
        if self.merchant is not None:
            out["merchant"] = self.merchant.to_mapping()
        return out


def _optional_money(fields: Mapping[str, Money | None]) -> dict[str, str]:
    """The money fields that are set, as decimal strings (a missing field means "none": TOML has no null)."""
    return {name: value.to_decimal_string() for name, value in fields.items() if value is not None}


def _gift_map(gift: Gift) -> dict[str, Any]:
    out: dict[str, Any] = {"id": gift.item_id, "points": gift.points}
    out.update({"name" if lang == "en" else f"name_{lang}": name for lang, name in gift.names.items()})
    if gift.stores:
        out["stores"] = list(gift.stores)
    return out


def rules_from_toml(text: str) -> Rules:
    """Parse a rules TOML file's text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"rules file is not valid TOML: {exc}", orig=exc) from exc
    return Rules.from_mapping(data)


class _Parser:
    """Reads the mapping form field by field so each error names exactly one field."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError("rules must be a table of settings")
        self.data = data
        self.currency = "CNY"

    def fail(self, where: str, what: str) -> ConfigError:
        return ConfigError(f"rules: {where} {what}")

    def table(self, data: Mapping[str, Any], key: str, where: str, known: set[str]) -> Mapping[str, Any]:
        value = data.get(key)
        if not isinstance(value, Mapping):
            raise self.fail(where, "is missing or is not a table")
        unknown = sorted(set(value) - known)
        if unknown:
            raise self.fail(where, f"has unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
        return value

    def integer(self, data: Mapping[str, Any], key: str, where: str, low: int, high: int | None = None) -> int:
        value = data.get(key)
        if value is None:
            raise self.fail(f"{where}.{key}", "is missing")
        if type(value) is not int:
            raise self.fail(f"{where}.{key}", f"must be a whole number, not {value!r}")
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise self.fail(f"{where}.{key}", f"must be {bound}, not {value}")
        return value

    def money(self, data: Mapping[str, Any], key: str, where: str, *, optional: bool = False,
              positive: bool = False) -> Money | None:
        value = data.get(key)
        if value is None:
            if optional:
                return None
            raise self.fail(f"{where}.{key}", "is missing")
        if not isinstance(value, str):
            raise self.fail(f"{where}.{key}", f'must be a decimal string such as "500.00", not {value!r}')
        try:
            amount = Money.parse(value, self.currency)
        except MoneyError as exc:
            raise self.fail(f"{where}.{key}", f"is not an amount: {exc}") from exc
        if amount.is_negative or (positive and amount.is_zero):
            raise self.fail(f"{where}.{key}", f"must be {'more than' if positive else 'at least'} zero")
        return amount

    def required_money(self, data: Mapping[str, Any], key: str, where: str, *, positive: bool = False) -> Money:
        amount = self.money(data, key, where, positive=positive)
        assert amount is not None  # money() raises when a required field is missing
        return amount

    def rules(self) -> Rules:
        data = self.data
        known = {"version", "currency", "tiers", "topup_bonuses", "points", "coupons", "offline", "anomalies",
                 "gifts", "merchant"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"rules: unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
        version = self.integer(data, "version", "rules", 1)
        currency = data.get("currency")
        if not isinstance(currency, str):
            raise ConfigError("rules: currency is missing (an ISO 4217 code such as \"CNY\")")
        try:
            exponent_of(currency)
        except MoneyError as exc:
            raise ConfigError(f"rules: currency {currency!r} is not supported", orig=exc) from exc
        self.currency = currency
        return Rules(
            version=version,
            currency=currency,
            tiers=self.tiers(),
            topup_bonuses=self.topup_bonuses(),
            points=self.points(),
            coupons=self.coupon_rule(),
            offline=self.offline(),
            anomalies=self.anomalies(),
            gifts=self.gifts(),
            merchant=self.merchant(),
        )

    def tiers(self) -> dict[Tier, TierRule]:
        tiers_data = self.data.get("tiers")
        if not isinstance(tiers_data, Mapping):
            raise ConfigError("rules: tiers is missing or is not a table")
        names = {t.value for t in Tier}
        for name in tiers_data:
            if name not in names:
                raise ConfigError(f"rules: tiers.{name} is not a tier (one of: {', '.join(t.value for t in Tier)})")
        fields = {"discount_bp", "points_multiplier_bp", "upgrade_yearly_spend", "annual_fee"}
        out: dict[Tier, TierRule] = {}
        for tier in Tier:
            where = f"tiers.{tier.value}"
            table = self.table(tiers_data, tier.value, where, fields)
            out[tier] = TierRule(
                discount_bp=self.integer(table, "discount_bp", where, 0, BP_ONE),
                points_multiplier_bp=self.integer(table, "points_multiplier_bp", where, 0, 100 * BP_ONE),
                upgrade_yearly_spend=self.money(table, "upgrade_yearly_spend", where, optional=True),
                annual_fee=self.money(table, "annual_fee", where, optional=True, positive=True),
            )
        return out

    def topup_bonuses(self) -> tuple[TopupBonus, ...]:
        raw = self.data.get("topup_bonuses", [])
        if not isinstance(raw, list):
            raise ConfigError("rules: topup_bonuses must be a list of {min_amount, bonus} tables")
        out: list[TopupBonus] = []
        for index, item in enumerate(raw):
            where = f"topup_bonuses[{index}]"
            if not isinstance(item, Mapping) or set(item) != {"min_amount", "bonus"}:
                raise ConfigError(f"rules: {where} must have exactly min_amount and bonus")
            out.append(TopupBonus(
                min_amount=self.required_money(item, "min_amount", where, positive=True),
                bonus=self.required_money(item, "bonus", where, positive=True),
            ))
        return tuple(sorted(out, key=lambda b: (b.min_amount.minor, b.bonus.minor)))

    def points(self) -> PointsRule:
        where = "points"
        table = self.table(self.data, "points", where, {
            "earn_minor_per_point", "redeem_points_per_unit", "redeem_unit_minor", "max_redeem_bp_of_bill",
            "expiry_days",
        })
        return PointsRule(
            earn_minor_per_point=self.integer(table, "earn_minor_per_point", where, 1),
            redeem_points_per_unit=self.integer(table, "redeem_points_per_unit", where, 1),
            redeem_unit_minor=self.integer(table, "redeem_unit_minor", where, 1),
            max_redeem_bp_of_bill=self.integer(table, "max_redeem_bp_of_bill", where, 0, BP_ONE),
            expiry_days=self.integer(table, "expiry_days", where, 1),
        )

    def coupon_rule(self) -> CouponRule:
        table = self.table(self.data, "coupons", "coupons", {"max_stacked"})
        return CouponRule(max_stacked=self.integer(table, "max_stacked", "coupons", 1, 100))

    def offline(self) -> OfflineLimits:
        where = "offline"
        table = self.table(self.data, "offline", where,
                           {"sv_per_card_per_day", "max_consecutive_offline_ops", "max_since_sync_s",
                            "sv_per_member_per_day", "cash_topup_per_op", "cash_topup_per_day"})
        return OfflineLimits(
            sv_per_card_per_day=self.required_money(table, "sv_per_card_per_day", where),
            max_consecutive_offline_ops=self.integer(table, "max_consecutive_offline_ops", where, 0),
            max_since_sync_s=self.integer(table, "max_since_sync_s", where, 0),
            sv_per_member_per_day=self.money(table, "sv_per_member_per_day", where, optional=True),
            cash_topup_per_op=self.money(table, "cash_topup_per_op", where, optional=True),
            cash_topup_per_day=self.money(table, "cash_topup_per_day", where, optional=True),
        )

    def anomalies(self) -> dict[str, int]:
        raw = self.data.get("anomalies", {})
        if not isinstance(raw, Mapping):
            raise ConfigError("rules: anomalies must be a table of name = whole number")
        out: dict[str, int] = {}
        for name in raw:
            if not isinstance(name, str):
                raise ConfigError(f"rules: anomalies has a non-text name {name!r}")
            out[name] = self.integer(raw, name, "anomalies", 0)
        return out


    def merchant(self) -> MerchantRules | None:
        raw = self.data.get("merchant")
        if raw is None:
            return None
        table = self.table(self.data, "merchant", "merchant", {"id", "coupons"})
        merchant_id = table.get("id")
        if not isinstance(merchant_id, str) or not _MERCHANT_ID.fullmatch(merchant_id):
            raise self.fail("merchant.id", "must be a merchant id (1-32 lower-case letters, digits, - or _)")
        coupons = table.get("coupons", "all")
        if isinstance(coupons, list) and all(isinstance(c, str) and _MERCHANT_ID.fullmatch(c) for c in coupons):
            return MerchantRules(merchant_id=merchant_id, coupons=tuple(coupons))
        if coupons not in COUPON_POLICIES:
            raise self.fail("merchant.coupons", "must be all, own or a list of merchant ids")
        return MerchantRules(merchant_id=merchant_id, coupons=coupons)

    def gifts(self) -> tuple[Gift, ...]:
        raw = self.data.get("gifts", [])
        if not isinstance(raw, list):
            raise ConfigError("rules: gifts must be a list of {id, points, name, name_zh, stores} tables")
        out: list[Gift] = []
        for index, item in enumerate(raw):
            where = f"gifts[{index}]"
            if not isinstance(item, Mapping):
                raise ConfigError(f"rules: {where} must be a table")
            unknown = sorted(set(item) - _GIFT_FIELDS)
            if unknown:
                raise self.fail(where, f"has unknown field {unknown[0]!r} (known: {', '.join(sorted(_GIFT_FIELDS))})")
            item_id = item.get("id")
            if not isinstance(item_id, str) or not _GIFT_ID.fullmatch(item_id):
                raise self.fail(f"{where}.id", "must be 1-32 letters, digits, - or _")
            if any(gift.item_id == item_id for gift in out):
                raise self.fail(f"{where}.id", f"{item_id!r} is already in the catalogue")
            names: dict[str, str] = {}
            for lang in _GIFT_LANGUAGES:
                key = "name" if lang == "en" else f"name_{lang}"
                name = item.get(key)
                if name is None and lang != "en":
                    continue
                if not isinstance(name, str) or not name.strip() or len(name) > 40:
                    raise self.fail(f"{where}.{key}", "must be a name of 1-40 characters")
                names[lang] = name.strip()
            stores = item.get("stores", [])
            if not isinstance(stores, list) or not all(isinstance(s, str) and s for s in stores):
                raise self.fail(f"{where}.stores", "must be a list of store ids (empty: every store)")
            out.append(Gift(item_id=item_id, points=self.integer(item, "points", where, 1),
                            names=names, stores=tuple(stores)))
        return tuple(out)


_GIFT_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_MERCHANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_GIFT_LANGUAGES = ("en", "zh")
"""The languages a gift's name may be given in: ``name`` (English, required) and ``name_zh``."""
_GIFT_FIELDS = {"id", "points", "stores", *(f"name_{lang}" for lang in _GIFT_LANGUAGES[1:]), "name"}

DEFAULT_RULES: Mapping[str, Any] = {
    "version": 1,
    "currency": "CNY",
    "tiers": {
        "standard": {"discount_bp": 0, "points_multiplier_bp": 10_000},
        "preferred": {"discount_bp": 1_000, "points_multiplier_bp": 12_500,
                      "upgrade_yearly_spend": "2000.00", "annual_fee": "99.00"},
        "gold": {"discount_bp": 1_200, "points_multiplier_bp": 15_000,
                 "upgrade_yearly_spend": "10000.00", "annual_fee": "299.00"},
        "platinum": {"discount_bp": 1_500, "points_multiplier_bp": 20_000,
                     "upgrade_yearly_spend": "30000.00", "annual_fee": "599.00"},
    },
    "topup_bonuses": [
        {"min_amount": "200.00", "bonus": "10.00"},
        {"min_amount": "500.00", "bonus": "50.00"},
        {"min_amount": "1000.00", "bonus": "120.00"},
    ],
    "points": {
        "earn_minor_per_point": 100,
        "redeem_points_per_unit": 100,
        "redeem_unit_minor": 100,
        "max_redeem_bp_of_bill": 5_000,
        "expiry_days": 365,
    },
    "coupons": {"max_stacked": 2},
    "offline": {
        "sv_per_card_per_day": "500.00",
        "max_consecutive_offline_ops": 5,
        "max_since_sync_s": 86_400,
        # Whole amounts, so the defaults read the same in a currency without decimals.
        "sv_per_member_per_day": "500",
        "cash_topup_per_op": "2000",
        "cash_topup_per_day": "5000",
    },
    "anomalies": {
        "forged_taps_per_terminal_10min": 5,
        "revoked_taps_per_card_day": 2,
        "clone_min_interval_s": 600,
        "challenge_failures_per_card_day": 1,
        "ops_per_card_hour": 20,
        "ops_per_card_day": 60,
        "amount_robust_z_x100": 600,
        "refunds_voids_per_cashier_shift": 5,
        "manual_entries_per_cashier_shift": 10,
        "clock_skew_s": 300,
        "terminal_silent_s": 3_600,
    },
    "gifts": [
        {"id": "mug", "points": 100, "name": "Coffee mug", "name_zh": "咖啡杯"},
        {"id": "tote", "points": 300, "name": "Canvas tote bag", "name_zh": "帆布袋"},
        {"id": "umbrella", "points": 800, "name": "Folding umbrella", "name_zh": "折叠伞"},
        {"id": "voucher-50", "points": 5000, "name": "50.00 shopping voucher", "name_zh": "50元购物券"},
    ],
}
"""The default rules in mapping form; terminal/defaults/rules.toml says the same in TOML."""
