"""The demo program is a hotel: one membership across its restaurant, shop and spa (issue 17).

The restaurant owns ``store-1``, where the demo's live counter stands. The shop and the spa each have a till of
their own, registered at their store with a recorded demo day: members who also eat at the restaurant topped up at
the shop, spent at the spa, used a spa coupon at the shop. Those tills are recorded history, not running
counters, so they are disabled once their day is in (a disabled till's syncs are refused).
The settlement of the demo day is then one command away (``settle_command``).
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable

from cardkit.core.loyalty import Quote, quote_sale, quote_topup
from cardkit.core.members import Coupon
from cardkit.core.money import Money
from cardkit.core.rules import Rules
from cardkit.journal import GENESIS_HASH, JournalEntry, make_entry
from ledger import admin, apply, projection, publish, store
from ledger.merchants import admin as merchants
from ledger.merchants import rules as merchant_rules
from ledger.merchants.overrides import rules_for_merchant

HOTEL = "Grand Hotel 大酒店"
MERCHANTS: tuple[tuple[str, str, str, dict[str, object]], ...] = (  # id, name, store, overrides
    ("restaurant", "Restaurant 餐厅", "store-1", {}),
    ("shop", "Gift shop 礼品店", "shop-1", {"earn_minor_per_point": 200}),
    ("spa", "Spa 水疗", "spa-1", {"tier_discount_bp": {"gold": 1500, "platinum": 2000}, "coupons": "own"}),
)


class _Till:
    """A till's recorded entries, applied the way ingest applies a synced batch."""

    def __init__(self, terminal_id: str, clock_ms: Callable[[], int]) -> None:
        self.terminal_id = terminal_id
        self.head: JournalEntry | None = None
        self.clock_ms = clock_ms

    def record(self, quote: Quote, wall_ms: int) -> JournalEntry:
        head = self.head
        entry = make_entry(terminal_id=self.terminal_id, seq=head.seq + 1 if head else 1,
                           prev_hash=head.hash if head else GENESIS_HASH, wall_ms=wall_ms, mono_ns=0,
                           cashier_id="demo", kind=quote.kind.value, payload=quote.payload,
                           entry_uuid=str(uuid.uuid4()))
        with store.atomic_write():
            apply.apply_entries([entry], batch_id=f"demo-{self.terminal_id}-{entry.seq}", now_ms=self.clock_ms())
            store.Terminal.update(last_seq=entry.seq, last_hash=entry.hash, last_seen_ms=self.clock_ms()).where(
                store.Terminal.terminal_id == self.terminal_id).execute()
        self.head = entry
        return entry


def _card(member_id: str) -> str:
    row = (store.Card.select().where((store.Card.member_id == member_id) & (store.Card.status == "active"))
           .order_by(store.Card.issued_at).first())
    return str(row.card_id) if row is not None else ""


def _coupons(member_id: str) -> list[Coupon]:
    rows = list(store.Coupon.select().where(store.Coupon.member_id == member_id))
    funders = merchant_rules.merchant_funders([str(c.coupon_id) for c in rows])
    return [publish.coupon_of(c, funders.get(str(c.coupon_id))) for c in rows]


def seed_hotel(member_ids: list[str], *, now_s: int, clock_ms: Callable[[], int]) -> list[str]:
    """Merchants, stores, tills and the recorded demo day; returns the shop's and the spa's till ids.
    ``member_ids``: the demo members, Li Wei first (left alone: the live counter's own story is about him)."""
    merchants.set_program(name=HOTEL, point_cost=(1, 1), reserve_bp=3000, actor="demo")
    for merchant_id, name, store_id, overrides in MERCHANTS:
        merchants.add_merchant(name, merchant_id=merchant_id, overrides=overrides, actor="demo")
        merchants.assign_store(store_id, merchant_id, name=name, actor="demo")
    rules = publish.current_rules()
    tills = {}
    for merchant_id, name, store_id, _ in MERCHANTS[1:]:
        terminal_id, _code = admin.add_terminal(f"{name} till", store_id, actor="demo")
        tills[merchant_id] = _Till(terminal_id, clock_ms)
    _li, zhang, chen, wang = member_ids
    spa_coupon = admin.issue_coupon(wang, amount_off=3_000, min_spend=10_000, actor="demo")
    merchants.set_coupon_funder(spa_coupon, "spa", actor="demo")
    day = int(datetime.datetime.fromtimestamp(now_s, datetime.UTC).replace(hour=0, minute=0, second=0)
              .timestamp()) * 1000
    at = [day + hours * 3_600_000 for hours in (1, 2, 3, 4, 5)]
    at = [min(t, now_s * 1000 - 60_000 + i) for i, t in enumerate(at)]  # never in the future

    def state(member: str) -> projection.MemberState:
        return projection.projected_state(store.Member.get_by_id(member))

    def local(merchant_id: str) -> Rules:
        return rules_for_merchant(rules, merchants.merchant_overrides(merchant_id), merchant_id)

    shop, spa = tills["shop"], tills["spa"]
    # Zhang Min tops up 500.00 at the shop (50.00 bonus) and spends 120.00 of it at the spa.
    shop.record(quote_topup(state(zhang), rules, amount=Money(50_000, "CNY"), tender="cash", card_id=_card(zhang),
                            offline=False), at[0])
    spa.record(quote_sale(state(zhang), _coupons(zhang), local("spa"),
                          amount=Money(12_000, "CNY"), tender="sv", now=clock_ms() // 1000, card_id=_card(zhang),
                          offline=False), at[1])
    # Chen Jing tops up 200.00 at the spa (10.00 bonus) and buys a 45.00 gift at the shop with stored value.
    spa.record(quote_topup(state(chen), rules, amount=Money(20_000, "CNY"), tender="bank_card", card_id=_card(chen),
                           offline=False), at[2])
    shop.record(quote_sale(state(chen), _coupons(chen), local("shop"),
                           amount=Money(4_500, "CNY"), tender="sv", now=clock_ms() // 1000, card_id=_card(chen),
                           offline=False), at[3])
    # Wang Fang pays a 680.00 spa day from stored value with the spa's own 30.00 coupon.
    spa.record(quote_sale(state(wang), _coupons(wang), local("spa"),
                          amount=Money(68_000, "CNY"), coupon_ids=[spa_coupon], tender="sv", now=clock_ms() // 1000,
                          card_id=_card(wang), offline=False), at[4])
    for till in tills.values():
        admin.disable_terminal(till.terminal_id, actor="demo")
    return [till.terminal_id for till in tills.values()]


def settle_command(ledger_dir: str, now_s: int) -> str:
    """The one command that shows the demo day's settlement."""
    moment = datetime.datetime.fromtimestamp(now_s, datetime.UTC)
    return f"cardpos ledger settlement show --period {moment.year:04d}-{moment.month:02d} --ledger-dir {ledger_dir}"
