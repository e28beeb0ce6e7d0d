"""Member cache: snapshot deltas from the ledger, lookups by member and card, versions only forward."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cardkit.core.money import Money
from cardkit.errors import JournalError, MoneyError
from terminal.offline.store import TerminalStore


def member(member_id: str = "m-1", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "member_id": member_id, "name": "Han Meimei", "phone": "13800000000", "email": "hm@example.cn",
        "notes": "regular", "prefs": {"lang": "zh"}, "tier": "preferred", "balance": 15_050, "points": 420,
        "currency": "CNY", "coupons": [{"coupon_id": "cp-1", "amount_off": 500, "min_spend": 5000}],
        "card_ids": ["card-1", "card-2"], "yearly_spend": 230_000,
    }
    base.update(overrides)
    return base


def test_snapshot_round_trips(terminal_store: TerminalStore) -> None:
    cache = terminal_store.cache
    assert cache.snapshot_version == 0
    assert cache.apply_snapshot([member()], version=7)
    got = cache.get("m-1")
    assert got is not None
    assert (got.name, got.phone, got.email, got.notes, got.prefs) == (
        "Han Meimei", "13800000000", "hm@example.cn", "regular", {"lang": "zh"})
    assert (got.tier, got.balance, got.points, got.currency, got.yearly_spend) == ("preferred", 15_050, 420, "CNY",
                                                                                   230_000)
    assert got.balance_money == Money(15_050, "CNY")
    assert got.coupons == [{"coupon_id": "cp-1", "amount_off": 500, "min_spend": 5000}]
    assert got.card_ids == ("card-1", "card-2")
    assert got.snapshot_version == 7 and cache.snapshot_version == 7
    assert cache.by_card("card-2") == got
    assert cache.get("nobody") is None and cache.by_card("nocard") is None


def test_delta_replaces_listed_members_only_and_can_delete(terminal_store: TerminalStore) -> None:
    cache = terminal_store.cache
    cache.apply_snapshot([member("m-1"), member("m-2", card_ids=["card-9"])], version=1)
    cache.apply_snapshot([member("m-1", balance=0, card_ids=["card-3"]), {"member_id": "m-2", "deleted": True}],
                         version=2)
    one = cache.get("m-1")
    assert one is not None and one.balance == 0 and one.card_ids == ("card-3",)
    assert cache.by_card("card-1") is None  # a replaced card no longer finds the member
    assert cache.get("m-2") is None and cache.by_card("card-9") is None
    assert cache.member_ids() == ["m-1"] and cache.count() == 1


def test_a_card_moving_to_another_member_follows_the_newest_snapshot(terminal_store: TerminalStore) -> None:
    cache = terminal_store.cache
    cache.apply_snapshot([member("m-1", card_ids=["card-x"])], version=1)
    cache.apply_snapshot([member("m-2", card_ids=["card-x"])], version=2)
    moved = cache.by_card("card-x")
    assert moved is not None and moved.member_id == "m-2"


def test_older_versions_are_ignored(terminal_store: TerminalStore) -> None:
    cache = terminal_store.cache
    cache.apply_snapshot([member(balance=900)], version=5)
    assert not cache.apply_snapshot([member(balance=100)], version=4)
    assert cache.get("m-1").balance == 900  # type: ignore[union-attr]
    assert cache.apply_snapshot([member(balance=800)], version=5)  # a retried pull of the same version
    assert cache.get("m-1").balance == 800  # type: ignore[union-attr]


@pytest.mark.parametrize(("bad", "error", "match"), [
    ({"balance": 12.5}, JournalError, "must be an integer"),
    ({"points": True}, JournalError, "must be an integer"),
    ({"currency": "XXX"}, MoneyError, "unknown currency"),
    ({"name": 5}, JournalError, "must be text"),
    ({"member_id": ""}, JournalError, "no member_id"),
    ({"prefs": ["x"]}, JournalError, "prefs .* must be a mapping"),
    ({"coupons": ["cp-1"]}, JournalError, "coupons .* must be a list of coupon records"),
    ({"card_ids": "card-1"}, JournalError, "card_ids .* must be a list"),
    ({"card_ids": [7]}, JournalError, "card_ids .* must be a list"),
])
def test_bad_snapshots_apply_nothing(terminal_store: TerminalStore, bad: dict[str, Any],
                                     error: type[Exception], match: str) -> None:
    cache = terminal_store.cache
    cache.apply_snapshot([member("m-0")], version=1)
    with pytest.raises(error, match=match):
        cache.apply_snapshot([member("m-1"), {**member("m-2"), **bad}], version=2)
    assert cache.member_ids() == ["m-0"] and cache.snapshot_version == 1


def test_large_snapshot_applies_in_one_go(terminal_store: TerminalStore) -> None:
    members = [member(f"m-{i:04d}", card_ids=[f"c-{i}a", f"c-{i}b"]) for i in range(1_200)]
    assert terminal_store.cache.apply_snapshot(members, version=1)
    assert terminal_store.cache.count() == 1_200
    found = terminal_store.cache.by_card("c-1199b")
    assert found is not None and found.member_id == "m-1199"


def test_the_cache_is_shared_with_another_handle(open_store: Callable[..., TerminalStore]) -> None:
    """The sync worker writes snapshots; the counter in another handle (or process) reads them."""
    writer, reader = open_store(), open_store()
    writer.cache.apply_snapshot([member()], version=3)
    assert reader.cache.snapshot_version == 3
    assert reader.cache.by_card("card-1") is not None
