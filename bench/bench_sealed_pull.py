"""The cost of sealing member snapshots to the terminal (issue 13), against the signed-only snapshot.

One member snapshot document of N members (the shape ``ledger.publish`` builds: names, phones, notes, coupons,
state), made by the ledger and checked by the terminal, both sides in this process, in alternating blocks:

- baseline: ``sign_member_snapshot`` (root signature over deterministic CBOR) + ``load_member_snapshot``;
- ours: ``seal_member_snapshot`` (HPKE to the terminal's key, then the same signature) +
  ``open_sealed_member_snapshot`` (signature, then HPKE open, then decode).

The figure is the ratio of the two (the sealing step's cost) for x25519 and for the hybrid ML-KEM suite, plus the
milliseconds added per pull (the slower suite). Sealing can come out cheaper: the signed payload is then a small
header and a byte string, so the terminal's deterministic-encoding check no longer re-encodes every member.
A drain pulls once per sync round, so at the ≥ 10,000 ops/s drain target a round of 20,000 entries (2 s) pays
this once: the last row gives that share.

Run: ``.venv/bin/python -c "import bench.bench_sealed_pull as b; print(b.run(quick=True))"``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.envelope import generate_hpke_private_key, hpke_public_key_bytes, load_hpke_private_key
from cardkit.pulldocs import (
    MemberSnapshot,
    load_member_snapshot,
    open_sealed_member_snapshot,
    seal_member_snapshot,
    sign_member_snapshot,
)

TARGET_RATIO = 1.5
DRAIN_ROUND_S = 20_000 / 10_000  # one sync round of 20,000 entries at the 10,000 ops/s target


def _members(n: int) -> list[dict[str, Any]]:
    return [{"member_id": f"M{i:05d}", "name": f"Member Number {i}", "phone": f"555-{i:04d}",
             "email": f"member{i}@example.org", "notes": "prefers oat milk" if i % 3 else "",
             "prefs": {"drink": "tea"} if i % 2 else {}, "tier": "standard", "balance": 10_000 + i,
             "points": i, "currency": "CNY", "yearly_spend": 50_000 + i,
             "coupons": [{"coupon_id": f"c{i}", "currency": "CNY", "amount_off": 500, "percent_off_bp": None,
                          "min_spend": None, "valid_from": 0, "valid_until": 2**40, "stackable": False}],
             "card_ids": [f"{i:016x}"],
             "state": {"tier": "standard", "balance": 10_000 + i, "points": i, "yearly_spend": 50_000 + i}}
            for i in range(n)]


def _time(fn: Callable[[], object], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def _compare(n: int, suite: str, rounds: int, repeat: int) -> tuple[float, float]:
    root = Ed25519PrivateKey.generate()
    root_public = root.public_key().public_bytes_raw()
    private_raw = generate_hpke_private_key(suite)
    private = load_hpke_private_key(suite, private_raw)
    public = hpke_public_key_bytes(suite, private_raw)
    snapshot = MemberSnapshot(version=7, since=0, store_id="store-1", members=_members(n))

    def signed() -> None:
        load_member_snapshot(sign_member_snapshot(snapshot, root), root_public)

    def sealed() -> None:
        doc = seal_member_snapshot(snapshot, root, terminal_id="t1", suite=suite, terminal_public_key=public)
        open_sealed_member_snapshot(doc, root_public, terminal_id="t1", suite=suite, private_key=private)

    ratios, base_times, our_times = [], [], []
    for _ in range(rounds):  # alternate, so background load on a shared machine hits both alike
        base = _time(signed, repeat)
        ours = _time(sealed, repeat)
        ratios.append(ours / base)
        base_times.append(base)
        our_times.append(ours)
    return statistics.median(ratios), statistics.median(our_times) - statistics.median(base_times)


def run(quick: bool = False) -> list[dict[str, Any]]:
    n = 500 if quick else 2_000
    rounds, repeat = (3, 3) if quick else (7, 5)
    rows: list[dict[str, Any]] = []
    added_ms = float("-inf")
    for suite in ("x25519", "mlkem768x25519"):
        ratio, added_s = _compare(n, suite, rounds, repeat)
        added_ms = max(added_ms, added_s * 1000)
        rows.append({"figure": f"member snapshot of {n:,} members sealed + opened ({suite}), time ratio",
                     "value": ratio, "unit": "x", "baseline": 1.0, "baseline_label": "signed only, same run",
                     "ratio": ratio, "target": f"<= {TARGET_RATIO}", "passed": ratio <= TARGET_RATIO})
    share = added_ms / 1000 / DRAIN_ROUND_S
    rows.append({"figure": f"ms added per pull of {n:,} members (negative: saved), share of a 20,000-entry round",
                 "value": added_ms, "unit": "ms", "baseline": DRAIN_ROUND_S * 1000,
                 "baseline_label": "ms of the round at 10,000 ops/s", "ratio": share, "target": "<= 0.05",
                 "passed": share <= 0.05})
    return rows
