"""Per-merchant rules at the counter (issue 17): the rules a store's terminals pull are the program's with their
merchant's overrides applied, under a version that moves for that merchant's stores only; the counter's pure
engine refuses a coupon the merchant does not accept; the ledger judges a sale by its terminal's merchant.
In-process with a real SQLite ledger; the real terminals are in tests/integration/test_merchant_rules_e2e.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from cardkit.core.loyalty import quote_sale
from cardkit.core.members import Coupon, Tier
from cardkit.core.money import Money
from cardkit.core.rules import MerchantRules, Rules
from cardkit.core.state import MemberState
from cardkit.errors import ConfigError, DomainError
from cardkit.journal import JournalEntry
from cardkit.pulldocs import coupon_from_mapping, load_rules_document
from ledger import admin, publish, store
from ledger.errors import LedgerError
from ledger.home import Ledger
from ledger.merchants import admin as merchants
from ledger.semantics import CardFacts, Checker, Limits, MemberFacts, TerminalFacts, check_batch
from terminal.i18n import words_for
from tests.fixtures.ledger import InProcessTill, enroll_in_process, in_process_ledger, sale
from tests.fixtures.ledger import ManualClock as Clock

T0_MS = 1_790_000_000_000
DEFAULT_TOML = (Path(__file__).resolve().parents[2] / "terminal" / "defaults" / "rules.toml").read_text()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    with in_process_ledger(tmp_path / "ledger", clock, seed=7) as home:
        yield home


def hotel() -> None:
    """Two merchants that differ: the shop earns a point per 2.00, the spa gives gold 15% and takes only its own
    coupons; store-9 belongs to no merchant."""
    merchants.add_merchant("Shop", merchant_id="shop", overrides={"earn_minor_per_point": 200})
    merchants.add_merchant("Spa", merchant_id="spa", overrides={"tier_discount_bp": {"gold": 1500},
                                                                "coupons": "own"})
    merchants.assign_store("shop-1", "shop")
    merchants.assign_store("spa-1", "spa")


def test_each_store_pulls_its_merchants_rules(ledger: Ledger) -> None:
    hotel()
    program = publish.current_rules()
    shop, spa, lone = (publish.rules_for_store(s) for s in ("shop-1", "spa-1", "store-9"))
    assert lone == program and lone.merchant is None
    assert shop.points.earn_minor_per_point == 200 and spa.points.earn_minor_per_point == 100
    assert shop.tier(Tier.GOLD).discount_bp == 1_200 and spa.tier(Tier.GOLD).discount_bp == 1_500
    assert shop.merchant == MerchantRules("shop", "all") and spa.merchant == MerchantRules("spa", "own")
    for rules, store_id in ((shop, "shop-1"), (spa, "spa-1"), (lone, "store-9")):
        signed = publish.signed_rules(ledger, store_id)
        assert load_rules_document(signed, ledger.keys.root_public()) == rules  # what the terminal reads back
        assert publish.current_versions(store_id)["rules"] == rules.version


def test_a_merchants_change_moves_only_its_stores_versions(ledger: Ledger) -> None:
    hotel()

    def versions() -> dict[str, int]:
        return {s: publish.store_rules_version(s) for s in ("shop-1", "spa-1", "store-9")}

    before = versions()
    assert before["store-9"] == 1 and before["shop-1"] > 1 and before["spa-1"] > 1
    merchants.update_merchant("spa", overrides={"tier_discount_bp": {"gold": 1_800}})
    after = versions()
    assert after["spa-1"] > before["spa-1"]
    assert (after["shop-1"], after["store-9"]) == (before["shop-1"], before["store-9"])
    assert publish.rules_for_store("spa-1").tier(Tier.GOLD).discount_bp == 1_800
    merchants.update_merchant("spa", name="Spa & Pool")  # a new name is no change of rules
    assert versions() == after

    admin.load_rules(DEFAULT_TOML)  # the program's rules: every store's version moves by one
    assert versions() == {s: v + 1 for s, v in after.items()}
    moved_from = versions()
    merchants.assign_store("shop-1", "spa")  # a store changes merchant: its version still only grows
    now = versions()
    assert now["shop-1"] > moved_from["shop-1"] and now["spa-1"] == moved_from["spa-1"]
    assert publish.rules_for_store("shop-1").merchant == MerchantRules("spa", "own")
    assert publish.rules_for_store("shop-1").version == now["shop-1"]


def test_the_program_rules_cannot_name_a_merchant(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="merchant"):
        admin.load_rules(DEFAULT_TOML + '\n[merchant]\nid = "spa"\ncoupons = "own"\n')
    mapping = {**Rules.default().to_mapping(), "merchant": {"id": "spa", "coupons": ["shop", "program"]}}
    parsed = Rules.from_mapping(mapping)
    assert parsed.merchant == MerchantRules("spa", ("program", "shop"))
    assert Rules.from_mapping(parsed.to_mapping()) == parsed
    for bad, field in (({"id": "Spa!"}, "merchant.id"), ({"id": "spa", "coupons": "some"}, "merchant.coupons"),
                       ({"id": "spa", "wine": 1}, "unknown field 'wine'")):
        with pytest.raises(ConfigError, match=field):
            Rules.from_mapping({**Rules.default().to_mapping(), "merchant": bad})
    with pytest.raises(LedgerError, match="merchant ids"):
        merchants.update_merchant(merchants.add_merchant("Bar"), overrides={"coupons": ["Not An Id"]})


def test_the_counter_declines_a_coupon_the_merchant_does_not_take_in_both_languages() -> None:
    spa = Rules.from_mapping({**Rules.default().to_mapping(), "merchant": {"id": "spa", "coupons": "own"}})
    member = MemberState(member_id="m-1", currency="CNY", balance=100_000, tier=Tier.GOLD)
    programs = Coupon("c-prog", amount_off=Money(1_000, "CNY"))
    spas = Coupon("c-spa", amount_off=Money(1_000, "CNY"), funder="spa")

    def sell(rules: Rules, coupon: Coupon) -> int:
        quote = quote_sale(member, [coupon], rules, amount=Money(10_000, "CNY"), coupon_ids=[coupon.coupon_id],
                           tender="sv", now=T0_MS // 1000, card_id="card-1", offline=False)
        return quote.coupon_disc.minor

    assert sell(spa, spas) == 1_000 and sell(Rules.default(), programs) == 1_000
    with pytest.raises(DomainError) as refused:
        sell(spa, programs)
    assert refused.value.code == "coupon_not_accepted"
    assert words_for("en").error(refused.value) == ("Coupon c-prog is not accepted at this merchant's stores; "
                                                    "remove it from the sale")
    assert words_for("zh").error(refused.value) == "本商户不接受优惠券 c-prog；请从本单去掉"


def test_snapshots_carry_the_funder_and_a_new_funder_resends_the_member(ledger: Ledger) -> None:
    hotel()
    member = admin.add_member("Li", store_id="spa-1")
    coupon = admin.issue_coupon(member, amount_off=1_000)
    before = int(store.Member.get_by_id(member).version)
    [snap] = publish.members_delta("spa-1", 0, T0_MS // 1000).members
    assert coupon_from_mapping(snap["coupons"][0]).funder is None  # the program's
    merchants.set_coupon_funder(coupon, "spa")
    assert int(store.Member.get_by_id(member).version) > before
    [snap] = publish.members_delta("spa-1", before, T0_MS // 1000).members
    assert coupon_from_mapping(snap["coupons"][0]).funder == "spa"


def _till(ledger: Ledger, store_id: str) -> InProcessTill:
    _, code = admin.add_terminal(f"{store_id} till", store_id)
    key = Ed25519PrivateKey.generate()
    body = enroll_in_process(ledger, code, key)
    return InProcessTill(ledger, body["terminal_id"], key, bytes.fromhex(body["ledger_hpke_public_key"]))


def test_the_ledger_judges_a_coupon_by_the_merchant_of_the_till(ledger: Ledger, clock: Clock) -> None:
    hotel()
    member = admin.add_member("Li", store_id="spa-1", balance=100_000)
    program_coupon = admin.issue_coupon(member, amount_off=500)
    shop_coupon = admin.issue_coupon(member, amount_off=500)
    spa_coupon = admin.issue_coupon(member, amount_off=500)
    merchants.set_coupon_funder(shop_coupon, "shop")
    merchants.set_coupon_funder(spa_coupon, "spa")
    spa, shop = _till(ledger, "spa-1"), _till(ledger, "shop-1")
    clock.now_ms += 1_000
    spa.wall_ms = shop.wall_ms = clock.now_ms
    for coupon in (program_coupon, shop_coupon, spa_coupon):
        spa.append("sale", sale(member, 1_000, coupons=[coupon]))
    result = spa.ingest(1, 3)
    assert result.quarantined == [1, 2]
    assert {v.code for v in result.verdicts.values()} == {"coupon_not_accepted"}
    assert "merchant spa" in result.verdicts[1].reason and "funded by program" in result.verdicts[1].reason
    shop.append("sale", sale(member, 1_000, coupons=[program_coupon]))  # the shop takes every coupon
    assert shop.ingest(1, 1).quarantined == []
    assert admin.verify_ledger() == []

    # Entries the spa made before its policy changed were made under the old one: not judged by the new one.
    made_before = spa.wall_ms
    clock.now_ms += 60_000
    merchants.update_merchant("spa", overrides={"coupons": "all"})
    clock.now_ms += 60_000
    merchants.update_merchant("spa", overrides={"coupons": "own"})
    spa.wall_ms = made_before
    spa.append("sale", sale(member, 1_000, coupons=[shop_coupon]))
    assert spa.ingest(4, 4).quarantined == []
    assert admin.verify_ledger() == []


def test_a_merchants_gift_list_narrows_the_catalogue_its_tills_get(ledger: Ledger) -> None:
    hotel()
    merchants.update_merchant("spa", overrides={"gifts": ["mug", "Folding umbrella"]})  # by id or by name
    assert [g.item_id for g in publish.rules_for_store("spa-1").gifts] == ["mug", "umbrella"]
    assert len(publish.rules_for_store("shop-1").gifts) == len(publish.current_rules().gifts)


FUNDERS = ("program", "shop", "spa", "bar")


@given(policy=st.one_of(st.sampled_from(["all", "own"]),
                        st.lists(st.sampled_from(FUNDERS), max_size=3).map(tuple)),
       funder=st.sampled_from(FUNDERS))
def test_the_till_and_the_ledger_apply_one_coupon_rule(policy: str | tuple[str, ...], funder: str) -> None:
    """Whatever the merchant's policy and the coupon's funder, the till declines exactly the sales the ledger would
    quarantine: one rule (``MerchantRules.accepts_coupon``) on both sides."""
    merchant = MerchantRules("spa", policy)
    rules = Rules.from_mapping({**Rules.default().to_mapping(), "merchant": merchant.to_mapping()})
    member = MemberState(member_id="m-1", currency="CNY", balance=100_000)
    coupon = Coupon("c-1", amount_off=Money(500, "CNY"), funder=None if funder == "program" else funder)
    try:
        quote = quote_sale(member, [coupon], rules, amount=Money(10_000, "CNY"), coupon_ids=["c-1"], tender="sv",
                           now=T0_MS // 1000, card_id="card-1", offline=False)
    except DomainError as exc:
        assert exc.code == "coupon_not_accepted"
        till_takes, payload = False, {"card": "card-1", "member": "m-1", "cur": "CNY", "gross": 10_000,
                                      "tier_disc": 0, "coupon_disc": 500, "pts_disc": 0, "net": 9_500,
                                      "tender": "sv", "sv": 9_500, "pts_earn": 95, "pts_redeem": 0,
                                      "coupons": ["c-1"], "offline": False}
    else:
        till_takes, payload = True, quote.payload
    entry = JournalEntry(terminal_id="t-1", seq=1, uuid="u-1", prev_hash=b"", wall_ms=T0_MS + 1_000, mono_ns=1,
                         cashier_id="c1", kind="sale", payload=payload, hash=b"")
    checker = Checker(limits=Limits(), members={"m-1": MemberFacts("m-1", "CNY")},
                      cards={"card-1": CardFacts("card-1", "m-1")},
                      funders={} if funder == "program" else {"c-1": funder})
    terminal = TerminalFacts("t-1", "spa-1", enrolled_ms=T0_MS, merchant=merchant, merchant_since_ms=T0_MS)
    verdicts = check_batch([entry], terminal, checker, T0_MS + 2_000)
    assert (1 not in verdicts) is till_takes
    assert till_takes or verdicts[1].code == "coupon_not_accepted"
