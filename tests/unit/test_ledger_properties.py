"""Properties: whatever order, overlap and repetition batches arrive in, every entry applies exactly once and the
derived balance and points equal the plain sums of the entries; a stored coupon is published byte for byte as
before the ledger used the kernel's coupon format."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardkit.core.money import CURRENCY_EXPONENTS
from cardkit.pulldocs import coupon_from_mapping
from ledger import admin, ingest, publish, store
from ledger.home import Ledger, init_ledger
from tests.fixtures.ledger import InProcessTill as Till
from tests.fixtures.ledger import enroll_in_process, sale, topup

ops = st.lists(st.tuples(st.sampled_from(["topup", "sale", "redeem"]), st.integers(1, 5_000), st.integers(0, 50)),
               min_size=1, max_size=25)
# Each send names a run of the journal: (first, length). Runs may repeat, overlap or jump ahead.
sends = st.lists(st.tuples(st.integers(1, 25), st.integers(1, 8)), max_size=25)


@pytest.fixture(scope="module")
def prop_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    home = init_ledger(tmp_path_factory.mktemp("prop") / "ledger", issuer="acme")
    yield home
    home.database.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=ops, noise=sends)
def test_any_delivery_order_applies_each_entry_once(prop_ledger: Ledger, plan: list[tuple[str, int, int]],
                                                    noise: list[tuple[int, int]]) -> None:
    ledger = prop_ledger
    member = admin.add_member("Prop", balance=200_000, points=2_000)
    _, code = admin.add_terminal("prop till")
    key = Ed25519PrivateKey.generate()
    body = enroll_in_process(ledger, code, key)
    till = Till(ledger, body["terminal_id"], key, bytes.fromhex(body["ledger_hpke_public_key"]))
    balance, points = 200_000, 2_000
    for kind, amount, pts in plan:
        if kind == "topup":
            till.append("topup", topup(member, amount))
            balance += amount
        elif kind == "sale":
            till.append("sale", sale(member, amount, pts_earn=pts))
            balance -= amount
            points += pts
        else:
            till.append("redeem", {"card": "card", "member": member, "pts": pts, "item": "gift", "offline": False})
            points -= pts
    n = len(till.entries)
    acked = 0
    # The noise first (gaps are refused, repeats counted as duplicates), then an in-order drain like a client's.
    drain = [(first, 5) for first in range(1, n + 1, 5)]
    for first, length in [(min(f, n), ln) for f, ln in noise] + drain:
        last = min(n, first + length - 1)
        try:
            result = till.ingest(first, last, batch_id=f"{first}-{last}")
        except ingest.IngestRejected as exc:
            assert exc.reason == "sequence_gap" and first > acked + 1 and exc.acked_seq == acked
            continue
        assert first <= acked + 1
        assert result.applied == max(0, last - acked) and result.duplicates == min(last, acked) - first + 1
        acked = max(acked, last)
    assert acked == n
    stored = store.AppliedEntry.select().where(store.AppliedEntry.terminal_id == till.terminal_id).count()
    assert stored == n
    view = admin.member_view(member)
    assert (view["balance"], view["points"]) == (balance, points)
    assert admin.verify_ledger() == []


def coupon_as_published_before(row: store.Coupon) -> dict[str, object]:
    """The snapshot coupon mapping exactly as the ledger built it by hand before it used the kernel's format."""
    return {"coupon_id": row.coupon_id, "currency": row.currency, "amount_off": row.amount_off,
            "percent_off_bp": row.percent_off_bp, "min_spend": row.min_spend, "valid_from": int(row.valid_from),
            "valid_until": int(row.valid_until), "stackable": bool(row.stackable)}


optional_minor = st.none() | st.integers(1, 10**12)
coupon_rows = st.fixed_dictionaries({
    "currency": st.sampled_from(sorted(CURRENCY_EXPONENTS)), "amount_off": optional_minor,
    "percent_off_bp": st.none() | st.integers(1, 10_000), "min_spend": optional_minor,
    "valid_from": st.integers(0, 2**40), "valid_until": st.integers(0, 2**62), "stackable": st.booleans(),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=coupon_rows)
def test_published_coupons_are_byte_identical_to_the_format_before(prop_ledger: Ledger,
                                                                    fields: dict[str, object]) -> None:
    coupon_id = uuid.uuid4().hex[:16]
    store.Coupon.create(coupon_id=coupon_id, member_id="m-coupons", issued_ms=0, **fields)
    row = store.Coupon.get_by_id(coupon_id)  # as the database hands it back
    published = publish.coupon_mapping(row)
    before = coupon_as_published_before(row)
    assert cbor2.dumps(published) == cbor2.dumps(before)  # same keys, same order, same types
    assert cbor2.dumps(published, canonical=True) == cbor2.dumps(before, canonical=True)
    assert json.dumps(published) == json.dumps(before)
    assert coupon_from_mapping(published) == publish.coupon_of(row)  # and the terminal reads back the same coupon
