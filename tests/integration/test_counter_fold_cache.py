"""The counter keeps each member's fold and each card's entries between operations (issue 8): its figures must
stay exactly those of a counter that folds the whole journal from the snapshot again."""

from __future__ import annotations

from cardkit.core.money import Money
from terminal.service.counter import SNAPSHOT_SYNCED_SEQ, Counter
from tests.fixtures.counter import CARD_GOLD, CounterWorld

M = Money.parse


def _figures(counter: Counter, claims: object) -> tuple[object, ...]:
    view = counter.member_view(claims)  # type: ignore[arg-type]
    return (view.state, view.notes, dict(view.prefs), view.offline_estimate, [c.coupon_id for c in view.coupons],
            [op.uuid for op in view.recent])


def test_cached_folds_match_a_fresh_fold_through_other_writers_and_a_new_snapshot(
        counter_world: CounterWorld) -> None:
    counter = counter_world.counter()
    other = counter_world.counter()  # a second writer on the same journal (as `cardpos terminal op` is)
    claims = counter.tap(counter_world.token()).claims
    assert claims is not None
    for i in range(6):
        writer = counter if i % 2 == 0 else other
        writer.sale(claims, M(f"{10 + i}.00"), tender="cash", cashier_id="c1")
        if i == 2:
            other.update_member("M0001", notes="window seat", cashier_id="c1")
        if i == 3:
            counter.sale(claims, M("80.00"), tender="sv", coupon_ids=["C10"], cashier_id="c1")
        assert _figures(counter, claims) == _figures(counter_world.counter(), claims)
    # The ledger acknowledges everything and sends a snapshot that includes it and a top-up made at another
    # terminal: the fold starts again from the snapshot (a stale fold would miss the 100.00).
    last = counter.store.journal.last_seq
    after = counter.member_view(claims).state
    counter.store.journal.mark_synced(last)
    counter.store.sync_state.set(SNAPSHOT_SYNCED_SEQ, last)
    counter.store.cache.apply_snapshot([{
        "member_id": "M0001", "name": "Li Na", "tier": "gold", "balance": after.balance + 10_000,
        "points": after.points, "currency": "CNY", "yearly_spend": after.yearly_spend, "card_ids": [CARD_GOLD],
        "coupons": [], "notes": "window seat",
    }], 2)
    assert _figures(counter, claims) == _figures(counter_world.counter(), claims)
    assert counter.member_view(claims).state.balance == after.balance + 10_000
    other.sale(claims, M("7.00"), tender="sv", cashier_id="c1")
    assert _figures(counter, claims) == _figures(counter_world.counter(), claims)
    assert counter.member_view(claims).state.balance < after.balance + 10_000  # folded onto the snapshot
    # The offline limits read the card's entries incrementally too: both counters agree on the same usage.
    assert counter.preview_sale(claims, M("1.00"), tender="sv") == \
        counter_world.counter().preview_sale(claims, M("1.00"), tender="sv")
