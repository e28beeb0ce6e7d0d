"""Card verification cost and revocation-list memory.

Figures (baselines measured in the same run):
- verify cost per card, with a 1,000,000-id revocation list loaded, as a ratio to one bare Ed25519 verify of the
  same token's signed bytes (target <= 1.3x): the envelope parsing, claim checks, trust and time checks and the
  revocation lookup together should cost under a third of the signature check itself.
- revocation lookup alone (not revoked, the common case) against a Python ``set`` of the same ids.
- RevocationList memory for 1M ids (tracemalloc), against a Python ``set[int]`` of the same ids.
- revocations.bin size and load time for 1M ids.
Run: .venv/bin/python -c "import bench.bench_verify as b; print(b.run())"
"""

from __future__ import annotations

import gc
import itertools
import random
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from bench import figure_row
from cardkit.cards.keys import IssuerKey, private_key_from_bytes, public_key_bytes, public_key_from_bytes
from cardkit.cards.revocation import RevocationDelta, RevocationList
from cardkit.cards.token import decode_card_token, sign_card_token
from cardkit.cards.trust import TrustList
from cardkit.cards.verdict import CardClaims
from cardkit.cards.verify import CardVerifier
from cardkit.core.members import Tier

NOW = 1_790_000_000
DAY = 86_400
REVOKED = 1_000_000
CHUNK = 50_000


def _revocation_list(ids: list[int]) -> RevocationList:
    rl = RevocationList()
    for start in range(0, len(ids), CHUNK):  # chunks keep the delta's tuples from dominating peak memory
        chunk = tuple((f"{i:016x}", "lost") for i in ids[start:start + CHUNK])
        rl.apply(RevocationDelta(rl.version, rl.version + 1, revoked=chunk))
    return rl


def _best_per_call(fn: Callable[[], object], calls: int, repeats: int) -> float:
    """Best (least disturbed) mean seconds per call over ``repeats`` runs of ``calls`` calls."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - started) / calls)
    return best


def run(quick: bool = False) -> list[dict[str, Any]]:
    count = 100_000 if quick else REVOKED
    rng = random.Random(1)
    ids = [rng.getrandbits(64) | 1 for _ in range(count)]

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    revocations = _revocation_list(ids)
    gc.collect()
    list_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    as_set = set(ids)
    set_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()

    stored = revocations.to_bytes()
    started = time.perf_counter()
    RevocationList.from_bytes(stored)
    load_s = time.perf_counter() - started

    issuer_key = private_key_from_bytes(bytes([2]) * 32)
    trust = TrustList(1, "acme", (IssuerKey("k1", "acme", public_key_bytes(issuer_key), NOW - 365 * DAY,
                                            NOW + 365 * DAY),))
    verifier = CardVerifier(trust, revocations, issuer="acme")
    tokens = [sign_card_token(CardClaims(1, "acme", f"{rng.getrandbits(64):016x}", f"M{n:06d}", Tier.GOLD,
                                         NOW - DAY, NOW - DAY, NOW + 1000 * DAY), issuer_key, "k1")
              for n in range(64)]
    assert all(verifier.verify(t, NOW).accepted for t in tokens)
    public = public_key_from_bytes(public_key_bytes(issuer_key))
    signed = [(d.sign1.signature, d.sign1.to_be_signed()) for d in map(decode_card_token, tokens)]
    revoked_token = sign_card_token(CardClaims(1, "acme", f"{ids[0]:016x}", "M1", Tier.GOLD, NOW - DAY, NOW - DAY,
                                               NOW + DAY), issuer_key, "k1")
    assert verifier.verify(revoked_token, NOW).reason is not None

    next_token = itertools.cycle(tokens).__next__
    next_signed = itertools.cycle(signed).__next__

    def one_verify() -> None:
        verifier.verify(next_token(), NOW)

    def one_bare() -> None:
        signature, message = next_signed()
        public.verify(signature, message)

    calls, repeats = (500, 5) if quick else (2000, 7)
    verify_s = bare_s = float("inf")
    for _ in range(repeats):  # interleaved, so both see the same machine load
        verify_s = min(verify_s, _best_per_call(one_verify, calls, 1))
        bare_s = min(bare_s, _best_per_call(one_bare, calls, 1))

    card_ids = [f"{rng.getrandbits(64):016x}" for _ in range(1000)]
    lookup_s = _best_per_call(lambda: [revocations.status(c) for c in card_ids], 20, 5) / len(card_ids)
    set_s = _best_per_call(lambda: [int(c, 16) in as_set for c in card_ids], 20, 5) / len(card_ids)

    n = f"{count:,}"
    mb = 1_000_000
    return [
        figure_row(f"card verify incl. revocation lookup ({n} revoked ids loaded)", verify_s * 1e6, "us",
                   bare_s * 1e6, "one bare Ed25519 verify (cryptography/OpenSSL)", "<= 1.3x",
                   verify_s <= 1.3 * bare_s),
        figure_row(f"revocation lookup, card not revoked ({n} ids)", lookup_s * 1e6, "us", set_s * 1e6,
                   "Python set[int] membership of the same ids", "O(1), < 5 us", lookup_s < 5e-6),
        figure_row(f"RevocationList memory for {n} revoked ids (tracemalloc)", list_bytes / mb, "MB", set_bytes / mb,
                   "Python set[int] of the same ids (hash table only)", "<= 20 MB at 1M ids",
                   list_bytes / mb <= 20),
        figure_row(f"revocations.bin load for {n} ids ({len(stored) / mb:.1f} MB file)", load_s * 1e3, "ms",
                   len(stored) / mb, "file size in MB (not a time)", "< 1 s", load_s < 1.0),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
