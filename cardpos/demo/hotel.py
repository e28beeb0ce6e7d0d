"""The demo program is a hotel: one membership across its restaurant, shop and spa (issue 17).

The restaurant owns ``store-1``, where the demo's counter app stands. The shop and the spa each have a live till
of their own: enrolled with the ledger into ``<demo>/shop`` and ``<demo>/spa``, pricing with their merchant's
rules as they pulled them (the shop earns a point per 2.00, the spa gives gold and platinum members more and takes
only its own coupons), and kept in sync by a ``cardpos terminal sync`` process each while the demo runs. The
morning's operations are made at those tills when the demo starts (``run_demo_day``): members who also eat at
the restaurant topped up at the shop, spent at the spa, used the spa's own coupon there. Anyone can then work
them with ``cardpos terminal op ... --data-dir <demo>/shop``. The settlement of the demo day is one command away
(``settle_command``).
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cardkit.cards.textform import token_from_text
from cardkit.cards.verdict import CardClaims
from cardkit.config import Settings
from cardkit.core.money import Money
from cardkit.errors import ConfigError
from ledger import admin
from ledger.merchants import admin as merchants

if TYPE_CHECKING:
    from terminal.service.counter import Counter

DEMO_CASHIER = "1001"
HOTEL = "Grand Hotel 大酒店"
MERCHANTS: tuple[tuple[str, str, str, dict[str, object]], ...] = (  # id, name, store, overrides
    ("restaurant", "Restaurant 餐厅", "store-1", {}),
    ("shop", "Gift shop 礼品店", "shop-1", {"earn_minor_per_point": 200}),
    ("spa", "Spa 水疗", "spa-1", {"tier_discount_bp": {"gold": 1500, "platinum": 2000}, "coupons": "own"}),
)


@dataclass(frozen=True)
class HotelTill:
    """A merchant's till registered for the demo: enrolled by the runner into ``<demo>/<merchant_id>``."""

    merchant_id: str
    store_id: str
    name: str
    terminal_id: str
    code: str


def seed_hotel(member_ids: list[str]) -> tuple[list[HotelTill], str]:
    """Merchants, stores, the shop's and the spa's tills (to enroll) and the spa's own coupon for Wang Fang;
    returns the tills and the coupon's id. ``member_ids``: the demo members, Li Wei first."""
    merchants.set_program(name=HOTEL, point_cost=(1, 1), reserve_bp=3000, actor="demo")
    for merchant_id, name, store_id, overrides in MERCHANTS:
        merchants.add_merchant(name, merchant_id=merchant_id, overrides=overrides, actor="demo")
        merchants.assign_store(store_id, merchant_id, name=name, actor="demo")
    tills = []
    for merchant_id, name, store_id, _ in MERCHANTS[1:]:
        terminal_id, code = admin.add_terminal(f"{name} till", store_id, actor="demo")
        tills.append(HotelTill(merchant_id, store_id, name, terminal_id, code))
    wang = member_ids[3]
    spa_coupon = admin.issue_coupon(wang, amount_off=3_000, min_spend=10_000, actor="demo")
    merchants.set_coupon_funder(spa_coupon, "spa", actor="demo")
    return tills, spa_coupon


def run_demo_day(tills: dict[str, Settings], cards: dict[str, str], spa_coupon: str) -> None:
    """The hotel's morning, made at the shop's and the spa's own tills (enrolled, each priced by its merchant's
    rules as it pulled them, members looked up online) and synced to the ledger as it goes.
    ``tills``: each till's settings by merchant id; ``cards``: a demo member's card text by first name."""
    from terminal.compose import attach_lookups
    from terminal.documents import require_enrollment
    from terminal.service.loader import open_counter

    def at(merchant_id: str, operation: Callable[[Counter, Callable[[str], CardClaims]], object]) -> None:
        settings = tills[merchant_id]
        enrollment = require_enrollment(settings.data_dir)
        counter = open_counter(settings)
        lookups = attach_lookups(counter, settings, enrollment)
        try:
            def tap(name: str) -> CardClaims:
                found = counter.tap(token_from_text(cards[name]))
                if not found.accepted:
                    raise ConfigError(f"the demo's {merchant_id} till refused {name}'s card")
                return found.claims

            operation(counter, tap)
        finally:
            lookups.close()
            counter.close()
        sync_once(settings)

    for settings in tills.values():  # their first pull: members, and a successful sync for the offline limits
        sync_once(settings)

    def cny(minor: int) -> Money:
        return Money(minor, "CNY")

    # Zhang Min tops up 500.00 at the shop (50.00 bonus) and spends 120.00 of it at the spa.
    at("shop", lambda c, tap: c.topup(tap("Zhang"), cny(50_000), tender="cash", cashier_id=DEMO_CASHIER))
    at("spa", lambda c, tap: c.sale(tap("Zhang"), cny(12_000), tender="sv", cashier_id=DEMO_CASHIER))
    # Chen Jing tops up 200.00 at the spa (10.00 bonus) and buys a 45.00 gift at the shop with stored value.
    at("spa", lambda c, tap: c.topup(tap("Chen"), cny(20_000), tender="bank_card", cashier_id=DEMO_CASHIER))
    at("shop", lambda c, tap: c.sale(tap("Chen"), cny(4_500), tender="sv", cashier_id=DEMO_CASHIER))
    # Wang Fang pays a 680.00 spa day from stored value with the spa's own 30.00 coupon.
    at("spa", lambda c, tap: c.sale(tap("Wang"), cny(68_000), tender="sv", coupon_ids=[spa_coupon],
                                    cashier_id=DEMO_CASHIER))


def sync_once(settings: Settings) -> None:
    """One sync of a demo till (push its journal, pull its documents); a failure stops the demo's set-up."""
    from terminal.documents import require_enrollment
    from terminal.offline.store import TerminalStore
    from terminal.sync.service import SyncService, load_identity_key

    enrollment = require_enrollment(settings.data_dir)
    with TerminalStore.open(settings.data_dir, enrollment.terminal_id) as till_store:
        service = SyncService(till_store, enrollment, load_identity_key(settings.data_dir), settings=settings.sync,
                              rng=random.SystemRandom())
        try:
            service.sync_once()
        finally:
            service.client.close()


def settle_command(ledger_dir: str, now_s: int) -> str:
    """The one command that shows the demo day's settlement."""
    moment = datetime.datetime.fromtimestamp(now_s, datetime.UTC)
    return f"cardpos ledger settlement show --period {moment.year:04d}-{moment.month:02d} --ledger-dir {ledger_dir}"
