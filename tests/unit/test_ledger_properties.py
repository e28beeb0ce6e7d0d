"""Property: whatever order, overlap and repetition batches arrive in, every entry applies exactly once and the
derived balance and points equal the plain sums of the entries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardkit.cards.keys import public_key_bytes
from ledger import admin, ingest, store
from ledger.enroll import enroll_terminal
from ledger.home import Ledger, init_ledger
from tests.fixtures.ledger import InProcessTill as Till
from tests.fixtures.ledger import sale, topup

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
    body = enroll_terminal(ledger, code, public_key_bytes(key).hex(), "x25519")
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
