"""The merchant model: program settings, merchants, stores, overrides, coupon funders (in-process, real SQLite)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardkit.core.members import Tier
from cardkit.core.rules import Gift, MerchantRules, Rules
from cardkit.errors import ConfigError
from ledger import admin, store
from ledger.errors import LedgerError
from ledger.home import Ledger, init_ledger
from ledger.merchants import admin as merchants
from ledger.merchants.models import PROGRAM
from ledger.merchants.overrides import (
    MerchantOverrides,
    accepts_coupon,
    offers_gift,
    overrides_from_mapping,
    rules_for_merchant,
)

T0_MS = 1_790_000_000_000


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    home = init_ledger(tmp_path / "ledger", issuer="acme", clock=lambda: T0_MS)
    home.randbytes = random.Random(5).randbytes
    yield home
    home.database.close()


def test_merchants_own_stores_and_stores_own_terminals(ledger: Ledger) -> None:
    spa = merchants.add_merchant("Hotel Spa", overrides={"coupons": "own"})
    assert spa == "hotel-spa"
    shop = merchants.add_merchant("Shop", merchant_id="shop")
    merchants.assign_store("spa-1", spa, name="Spa floor 3")
    merchants.assign_store("shop-1", shop)
    till, _ = admin.add_terminal("spa till", "spa-1")
    ledger_till, _ = admin.add_terminal("orphan till", "nowhere")
    view = merchants.merchant_view(spa)
    assert view["stores"] == ["spa-1"] and view["terminals"] == [till]
    assert merchants.terminal_merchants([till, ledger_till, "ledger"]) == {
        till: spa, ledger_till: PROGRAM, "ledger": PROGRAM}
    merchants.assign_store("spa-1", shop)  # a store moves: its terminals follow
    assert merchants.terminal_merchants([till]) == {till: shop}
    member = admin.add_member("Li", store_id="shop-1")
    assert merchants.home_merchant(member) == shop
    actions = [r.action for r in store.AuditLog.select().order_by(store.AuditLog.id)]
    assert actions.count("merchant_add") == 2 and actions.count("store_assign") == 3


def test_bad_merchant_input_is_one_sentence(ledger: Ledger) -> None:
    merchants.add_merchant("Shop")
    with pytest.raises(LedgerError, match="already exists"):
        merchants.add_merchant("Shop")
    with pytest.raises(LedgerError, match="not 'program'"):
        merchants.add_merchant("x", merchant_id=PROGRAM)
    with pytest.raises(LedgerError, match="no merchant 'bar'"):
        merchants.assign_store("s", "bar")
    with pytest.raises(LedgerError, match="unknown tier"):
        merchants.update_merchant("shop", overrides={"tier_discount_bp": {"diamond": 100}})
    with pytest.raises(LedgerError, match="float holder"):
        merchants.set_program(float_holder="bank")


def test_overrides_merge_and_clear(ledger: Ledger) -> None:
    merchants.add_merchant("Bar", overrides={"tier_discount_bp": {"gold": 1500}, "gifts": ["cocktail"]})
    view = merchants.update_merchant("bar", overrides={"earn_minor_per_point": 200, "gifts": None})
    assert view["overrides"] == {"tier_discount_bp": {"gold": 1500}, "earn_minor_per_point": 200}
    assert merchants.merchant_overrides("bar").tier_discount_bp == {Tier.GOLD: 1500}
    assert merchants.merchant_overrides("unknown") == MerchantOverrides()


def test_program_settings_default_then_set(ledger: Ledger) -> None:
    assert merchants.program_view()["float_holder"] == "operator"
    view = merchants.set_program(point_cost=(100, 100), reserve_bp=3000, float_holder="direct")
    assert (view["point_cost_minor"], view["point_cost_points"], view["reserve_bp"]) == (100, 100, 3000)
    assert merchants.program_view()["float_holder"] == "direct"


def test_coupon_funder_defaults_to_the_program(ledger: Ledger) -> None:
    merchants.add_merchant("Shop")
    member = admin.add_member("Li")
    funded = admin.issue_coupon(member, amount_off=500)
    other = admin.issue_coupon(member, amount_off=500)
    merchants.set_coupon_funder(funded, "shop")
    assert merchants.coupon_funders([funded, other]) == {funded: "shop", other: PROGRAM}


def test_rules_for_a_merchant_override_only_what_merchants_may() -> None:
    rules = Rules.default()
    overrides = overrides_from_mapping({"tier_discount_bp": {"gold": 2000}, "earn_minor_per_point": 250,
                                        "coupons": ["shop"], "gifts": ["towel"]})
    local = rules_for_merchant(rules, overrides, "spa")
    assert local.tier(Tier.GOLD).discount_bp == 2000
    assert local.tier(Tier.STANDARD) == rules.tier(Tier.STANDARD)
    assert local.points.earn_minor_per_point == 250
    assert local.points.redeem_unit_minor == rules.points.redeem_unit_minor  # redemption value is program-wide
    assert local.topup_bonuses == rules.topup_bonuses
    assert accepts_coupon(overrides, "spa", "shop") and accepts_coupon(overrides, "spa", "spa")
    assert not accepts_coupon(overrides, "spa", PROGRAM)
    towel = Gift(item_id="towel", points=50, names={"en": "Spa towel"})
    robe = Gift(item_id="robe", points=90, names={"en": "Bath robe"})
    assert offers_gift(overrides, towel) and not offers_gift(overrides, robe)
    assert offers_gift(MerchantOverrides(), robe)
    assert offers_gift(overrides_from_mapping({"gifts": ["Bath robe"]}), robe)  # by name too
    assert local.gifts == ()  # the default catalogue holds no towel
    assert local.merchant == MerchantRules(merchant_id="spa", coupons=("shop",))
    with pytest.raises(ConfigError, match="unknown merchant override"):
        overrides_from_mapping({"stored_value": 1})


def test_the_demo_is_a_hotel_with_a_till_to_enroll_at_each_merchant(tmp_path: Path) -> None:
    """The seed alone: merchants, stores, the shop's and the spa's tills waiting for enrollment and the spa's own
    coupon (the day itself is made at the live tills: tests/integration/test_demo_hotel.py)."""
    from cardpos.demo.seed import seed_demo
    from ledger.home import open_ledger

    setup = seed_demo(tmp_path / "demo")
    home = open_ledger(setup.ledger_dir)
    try:
        assert [m["merchant_id"] for m in merchants.list_merchants()] == ["restaurant", "shop", "spa"]
        assert merchants.terminal_merchants([setup.terminal_id]) == {setup.terminal_id: "restaurant"}
        tills = {t.merchant_id: t for t in setup.hotel_tills}
        assert sorted(tills) == ["shop", "spa"]
        assert merchants.terminal_merchants([t.terminal_id for t in tills.values()]) == {
            tills["shop"].terminal_id: "shop", tills["spa"].terminal_id: "spa"}
        assert merchants.coupon_funders([setup.spa_coupon]) == {setup.spa_coupon: "spa"}
        assert sorted(setup.member_cards) == ["Chen", "Li", "Wang", "Zhang"]
        assert admin.verify_ledger() == []
    finally:
        home.database.close()


def test_merchant_and_settlement_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from cardpos.cli import main

    where = ["--ledger-dir", str(tmp_path / "l")]
    assert main(["ledger", "init", *where]) == 0
    assert main(["ledger", "merchant", "add", "Hotel Spa", "--tier-discount", "gold=12.5", *where]) == 0
    assert main(["ledger", "merchant", "store", "spa-1", "--merchant", "hotel-spa", *where]) == 0
    assert main(["ledger", "program", "set", "--point-cost", "1.00/100", "--reserve", "20", *where]) == 0
    capsys.readouterr()
    assert main(["ledger", "merchant", "list", "--json", *where]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["merchants"][0]["overrides"] == {"tier_discount_bp": {"gold": 1250}}
    assert listed["stores"] == [{"store_id": "spa-1", "merchant_id": "hotel-spa", "name": ""}]
    csv_path, json_path = tmp_path / "s.csv", tmp_path / "s.json"
    assert main(["ledger", "settlement", "show", "--period", "2026-11", "--csv", str(csv_path),
                 "--json-out", str(json_path), *where]) == 0
    assert "settlement 2026-11" in capsys.readouterr().out
    assert csv_path.read_text().startswith("section,period,from_period,party")
    assert json.loads(json_path.read_text())["status"] == "draft"
    assert main(["ledger", "settlement", "liability", "--day", "2026-11-30", *where]) == 0
    assert "reserve 20.00%" in capsys.readouterr().out
    assert main(["ledger", "settlement", "run", "--period", "2999-01", *where]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not over until" in err[0]
    assert main(["ledger", "settlement", "show", "--period", "Nov", *where]) == 1
    assert "YYYY-MM" in capsys.readouterr().err
