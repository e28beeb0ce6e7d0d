"""Rules: defaults equal the shipped TOML, the mapping form round-trips, each bad field gets one clear error."""

from __future__ import annotations

import copy
import itertools
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardkit.core.members import Tier
from cardkit.core.money import Money
from cardkit.core.rules import DEFAULT_RULES, Rules, rules_from_toml
from cardkit.errors import ConfigError


def _default_toml() -> str:
    return resources.files("terminal").joinpath("defaults/rules.toml").read_text(encoding="utf-8")


def test_default_rules_equal_the_shipped_toml_file() -> None:
    assert rules_from_toml(_default_toml()) == Rules.default()


def test_default_rules_say_what_the_issue_asks() -> None:
    rules = Rules.default()
    assert rules.tiers[Tier.STANDARD].discount_bp == 0
    assert rules.tiers[Tier.PREFERRED].discount_bp == 1000  # preferred members 10%
    assert rules.tiers[Tier.GOLD].discount_bp == 1200
    assert rules.tiers[Tier.PLATINUM].discount_bp == 1500
    assert Money.parse("500.00") in {b.min_amount for b in rules.topup_bonuses}
    assert rules.offline.sv_per_card_per_day == Money.parse("500.00")
    # Thresholds climb with the tier, so upgrades go one way.
    spends = [rules.tiers[t].upgrade_yearly_spend for t in list(Tier)[1:]]
    assert all(a is not None and b is not None and a < b for a, b in itertools.pairwise(spends))


def test_mapping_form_round_trips() -> None:
    rules = Rules.default()
    assert Rules.from_mapping(rules.to_mapping()) == rules
    assert rules.to_mapping()["tiers"]["standard"] == {"discount_bp": 0, "points_multiplier_bp": 10000}


def test_rules_are_read_only() -> None:
    rules = Rules.default()
    with pytest.raises(TypeError):
        rules.tiers[Tier.GOLD] = rules.tiers[Tier.STANDARD]  # type: ignore[index]


def _with(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(dict(DEFAULT_RULES))
    *parents, last = path.split(".")
    node: Any = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "words"), [
    ("version", 0, "version must be at least 1"),
    ("currency", "XXX", "currency 'XXX' is not supported"),
    ("currency", _DELETE, "currency is missing"),
    ("tiers.gold.discount_bp", 10001, "tiers.gold.discount_bp must be between 0 and 10000"),
    ("tiers.gold.discount_bp", "10%", "tiers.gold.discount_bp must be a whole number"),
    ("tiers.gold.discount_bp", 12.5, "tiers.gold.discount_bp must be a whole number"),
    ("tiers.gold.annual_fee", 299, 'tiers.gold.annual_fee must be a decimal string such as "500.00"'),
    ("tiers.gold.annual_fee", "29.999", "tiers.gold.annual_fee is not an amount"),
    ("tiers.gold.annual_fee", "0.00", "tiers.gold.annual_fee must be more than zero"),
    ("tiers.gold.upgrade_yearly_spend", "-1.00", "tiers.gold.upgrade_yearly_spend must be at least zero"),
    ("tiers.gold.colour", "gold", "tiers.gold has unknown field 'colour'"),
    ("tiers.diamond", {"discount_bp": 1}, "tiers.diamond is not a tier"),
    ("tiers.platinum", _DELETE, "tiers.platinum is missing"),
    ("topup_bonuses.0.bonus", "0.00", "topup_bonuses[0].bonus must be more than zero"),
    ("topup_bonuses.0.extra", "1.00", "topup_bonuses[0] must have exactly min_amount and bonus"),
    ("points.earn_minor_per_point", 0, "points.earn_minor_per_point must be at least 1"),
    ("points.max_redeem_bp_of_bill", 20000, "points.max_redeem_bp_of_bill must be between 0 and 10000"),
    ("points", _DELETE, "points is missing or is not a table"),
    ("coupons.max_stacked", 0, "coupons.max_stacked must be between 1 and 100"),
    ("offline.sv_per_card_per_day", "lots", "offline.sv_per_card_per_day is not an amount"),
    ("offline.max_since_sync_s", -5, "offline.max_since_sync_s must be at least 0"),
    ("anomalies.ops_per_card_hour", "20", "anomalies.ops_per_card_hour must be a whole number"),
    ("surprise", 1, "unknown field 'surprise'"),
])
def test_each_bad_field_is_named_in_one_sentence(path: str, value: Any, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Rules.from_mapping(_with(path, value))
    message = str(caught.value)
    assert words in message
    assert "\n" not in message


def test_bad_toml_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        rules_from_toml("version = = 1")


def test_best_bonus_list_is_sorted_whatever_the_file_order() -> None:
    data = _with("topup_bonuses", [{"min_amount": "500.00", "bonus": "50.00"},
                                   {"min_amount": "100.00", "bonus": "5.00"}])
    rules = Rules.from_mapping(data)
    assert [b.min_amount.minor for b in rules.topup_bonuses] == [10000, 50000]


def test_rules_in_a_zero_decimal_currency() -> None:
    data = _with("currency", "JPY")
    for tier in ("preferred", "gold", "platinum"):
        data["tiers"][tier]["upgrade_yearly_spend"] = "200000"
        data["tiers"][tier]["annual_fee"] = "1000"
    data["topup_bonuses"] = [{"min_amount": "5000", "bonus": "500"}]
    data["offline"]["sv_per_card_per_day"] = "50000"
    rules = Rules.from_mapping(data)
    assert rules.offline.sv_per_card_per_day == Money(50000, "JPY")
    assert Rules.from_mapping(rules.to_mapping()) == rules


@given(
    discount=st.integers(0, 10_000), mult=st.integers(0, 1_000_000), fee=st.integers(1, 10**9),
    cap=st.integers(0, 10**9), stacked=st.integers(1, 100),
)
def test_any_valid_rules_round_trip(discount: int, mult: int, fee: int, cap: int, stacked: int) -> None:
    data = _with("tiers.gold.discount_bp", discount)
    data["tiers"]["gold"]["points_multiplier_bp"] = mult
    data["tiers"]["gold"]["annual_fee"] = Money(fee).to_decimal_string()
    data["offline"]["sv_per_card_per_day"] = Money(cap).to_decimal_string()
    data["coupons"]["max_stacked"] = stacked
    rules = Rules.from_mapping(data)
    assert rules.tiers[Tier.GOLD].annual_fee == Money(fee)
    assert Rules.from_mapping(rules.to_mapping()) == rules


def test_the_gift_catalogue_comes_with_the_rules_and_each_store_sees_its_part() -> None:
    data = _with("gifts", [
        {"id": "mug", "points": 100, "name": "Coffee mug", "name_zh": "咖啡杯"},
        {"id": "scarf", "points": 900, "name": "Silk scarf", "stores": ["S-PUDONG"]},
    ])
    rules = Rules.from_mapping(data)
    assert [g.item_id for g in rules.gifts_at("S-PUDONG")] == ["mug", "scarf"]
    assert [g.item_id for g in rules.gifts_at("S-XUHUI")] == ["mug"]
    assert rules.gift("scarf", "S-XUHUI") is None and rules.gift("scarf", "S-PUDONG") is not None
    mug = rules.gifts[0]
    assert (mug.name("zh"), mug.name("en"), rules.gifts[1].name("zh")) == ("咖啡杯", "Coffee mug", "Silk scarf")
    assert Rules.from_mapping(rules.to_mapping()) == rules
    assert rules_from_toml(_toml_of_defaults()).gifts == Rules.default().gifts != ()


def _toml_of_defaults() -> str:
    from pathlib import Path

    return (Path(__file__).parents[2] / "terminal" / "defaults" / "rules.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize(("gifts", "says"), [
    ({"id": "mug"}, "gifts must be a list"),
    ([{"id": "a mug", "points": 1, "name": "Mug"}], "gifts[0].id must be 1-32 letters"),
    ([{"id": "mug", "points": 0, "name": "Mug"}], "gifts[0].points must be at least 1"),
    ([{"id": "mug", "points": 1}], "gifts[0].name must be a name"),
    ([{"id": "mug", "points": 1, "name": "Mug", "price": 3}], "unknown field 'price'"),
    ([{"id": "mug", "points": 1, "name": "Mug"}, {"id": "mug", "points": 2, "name": "Mug 2"}],
     "'mug' is already in the catalogue"),
    ([{"id": "mug", "points": 1, "name": "Mug", "stores": "S1"}], "gifts[0].stores must be a list"),
])
def test_a_bad_gift_is_named_in_one_sentence(gifts: object, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Rules.from_mapping(_with("gifts", gifts))
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_the_ledger_publishes_the_catalogue_inside_the_signed_rules() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from cardkit import pulldocs

    root = Ed25519PrivateKey.from_private_bytes(bytes(32))
    rules = Rules.from_mapping(_with("gifts", [{"id": "scarf", "points": 900, "name": "Silk scarf",
                                                "name_zh": "丝巾", "stores": ["S-PUDONG"]}]))
    public = root.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    received = pulldocs.load_rules_document(pulldocs.sign_rules_document(rules, root), public)
    assert received.gifts == rules.gifts and received.gift("scarf", "S-PUDONG") is not None
