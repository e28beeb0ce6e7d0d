"""Per-merchant rules at the counter, end to end with real processes: a ledger server and a terminal data dir per
merchant driven by the real ``cardpos terminal`` command line (enroll, sync, op).

Two merchants differ in tier discount, earning rate and coupons: the shop earns a point per 2.00 (the program:
per 1.00), the spa gives gold members 15% (the program: 12%) and takes only its own coupons. The same 100.00 sale
for the same gold member (1.5x points) gives, by hand:
  shop: discount 12.00, net 88.00, points floor(8800 × 1.5 / 200) = 66
  spa:  discount 15.00, net 85.00, points floor(8500 × 1.5 / 100) = 127
A program coupon is refused at the spa's till with a reason, in English and Chinese; the shop takes it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cardkit.cards.textform import token_from_text
from cardkit.config import Settings
from cardkit.core.members import Tier
from cardkit.core.money import Money
from cardkit.errors import DomainError
from cardkit.pulldocs import load_rules_document
from ledger import admin, quarantine
from ledger.home import open_ledger
from ledger.merchants import admin as merchants
from terminal.documents import RULES_FILE, require_enrollment
from terminal.i18n import words_for
from terminal.service.loader import open_counter
from tests.fixtures.ledger import LedgerServer
from tests.integration.test_merchants_e2e import REPO_ROOT, Till


def _declined(till: Till, *args: str) -> dict[str, Any]:
    """Run ``terminal op ARGS`` expecting a decline (exit status 1); its JSON."""
    done = subprocess.run([sys.executable, "-m", "cardpos", "terminal", "op", *args, "--json", "--no-print"],
                          env=till.env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, f"{done.returncode}: {done.stderr.strip()} {done.stdout.strip()}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _held_rules_version(till: Till) -> int:
    enrollment = require_enrollment(till.data_dir)
    raw = (till.data_dir / "documents" / RULES_FILE).read_bytes()
    return load_rules_document(raw, bytes.fromhex(enrollment.root_public_key)).version


def test_two_merchants_price_the_same_sale_by_their_own_rules(ledger_server: LedgerServer, tmp_path: Path) -> None:
    server = ledger_server
    home = open_ledger(server.ledger_dir)  # the admin's side, in this process (the server serves the tills)
    try:
        _two_merchants_at_their_tills(server, tmp_path)
    finally:
        home.database.close()


def _two_merchants_at_their_tills(server: LedgerServer, tmp_path: Path) -> None:
    merchants.add_merchant("Shop", merchant_id="shop", overrides={"earn_minor_per_point": 200})
    merchants.add_merchant("Spa", merchant_id="spa", overrides={"tier_discount_bp": {"gold": 1_500},
                                                                "coupons": "own"})
    for merchant in ("shop", "spa"):
        merchants.assign_store(f"{merchant}-1", merchant)
    member = admin.add_member("Guest", store_id="shop-1", tier=Tier.GOLD, balance=100_000)
    card = admin.issue_card(member).token_text
    coupon = admin.issue_coupon(member, amount_off=500)
    shop, spa = Till(server, tmp_path, "shop"), Till(server, tmp_path, "spa")  # enrolled with their rules
    shop.sync()  # the member
    at_shop = shop.op("sale", "100.00", "--card", card)["payload"]
    assert (at_shop["tier_disc"], at_shop["net"], at_shop["pts_earn"]) == (1_200, 8_800, 66)
    shop.sync()
    admin.update_member(member, store_id="spa-1")  # the spa's pulls now carry the member
    spa.sync()
    at_spa = spa.op("sale", "100.00", "--card", card)["payload"]
    assert (at_spa["tier_disc"], at_spa["net"], at_spa["pts_earn"]) == (1_500, 8_500, 127)

    refused = _declined(spa, "sale", "100.00", "--card", card, "--coupon", coupon)
    assert refused["error"] == "coupon_not_accepted"
    assert f"Coupon {coupon} is not accepted at this merchant's stores" in refused["message"]
    counter = open_counter(Settings(data_dir=spa.data_dir), authorize_online=False)  # the spa till, in zh and en
    try:
        tap = counter.tap(token_from_text(card))
        assert tap.claims is not None
        try:
            counter.sale(tap.claims, Money(10_000, "CNY"), tender="sv", coupon_ids=[coupon])
        except DomainError as exc:
            declined = exc
        else:
            raise AssertionError("the spa's till took a coupon the spa does not accept")
    finally:
        counter.close()
    assert words_for("zh").error(declined) == f"本商户不接受优惠券 {coupon}；请从本单去掉"
    assert words_for("en").error(declined) == refused["message"].removeprefix("declined: ")

    # The shop takes the program's coupon. A change to the spa's rules then reaches the spa's till at its next
    # pull, and not the shop's.
    spa.sync()
    admin.update_member(member, store_id="shop-1")
    shop.sync()
    with_coupon = shop.op("sale", "100.00", "--card", card, "--coupon", coupon)["payload"]
    assert (with_coupon["coupon_disc"], with_coupon["coupons"]) == (500, [coupon])
    held = {till.store: _held_rules_version(till) for till in (shop, spa)}
    merchants.update_merchant("spa", overrides={"tier_discount_bp": {"gold": 2_000}})
    admin.update_member(member, store_id="spa-1")
    shop.sync()
    spa.sync()
    assert _held_rules_version(shop) == held["shop-1"]
    assert _held_rules_version(spa) > held["spa-1"]
    after = spa.op("sale", "100.00", "--card", card)["payload"]
    assert (after["tier_disc"], after["net"]) == (2_000, 8_000)
    spa.sync()
    assert admin.verify_ledger() == []
    assert quarantine.list_quarantined() == []
