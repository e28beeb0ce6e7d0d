"""100,000 random or mutated tokens through the verifier: no accepts, no exceptions other than a verdict."""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit.cards.cose import decode_sign1, sign1
from cardkit.cards.revocation import RevocationList, load_revocation_delta
from cardkit.cards.textform import token_from_text
from cardkit.cards.trust import load_trust_list
from cardkit.cards.verdict import RejectReason
from cardkit.errors import CardError
from tests.fixtures.cards import NOW, CardWorld, key_from_seed

ROUNDS = 100_000


def _mutator(world: CardWorld, rng: random.Random) -> Callable[[], bytes]:
    seeds = [world.token(), world.challenge_token(), world.token(member_id="M" * 32, card_id="f" * 16)]
    forger = key_from_seed(bytes([99]) * 32)

    def pick() -> bytearray:
        return bytearray(rng.choice(seeds))

    def flips() -> bytes:
        t = pick()
        for _ in range(rng.randint(1, 6)):
            t[rng.randrange(len(t))] ^= rng.randint(1, 255)
        return bytes(t)

    def insert_delete() -> bytes:
        t = pick()
        pos = rng.randrange(len(t) + 1)
        if rng.random() < 0.5 and len(t) > 1:
            del t[pos:pos + rng.randint(1, 4)]
        else:
            t[pos:pos] = rng.randbytes(rng.randint(1, 4))
        return bytes(t)

    def splice() -> bytes:
        a, b = rng.choice(seeds), rng.choice(seeds)
        return a[:rng.randrange(len(a))] + b[rng.randrange(len(b)):]

    def random_bytes() -> bytes:
        return rng.randbytes(rng.choice([0, 1, 2, 8, 64, 136, 171, 200, 513, 2000]))

    def random_prefix() -> bytes:  # right envelope head, random rest
        return b"\xd2\x84" + rng.randbytes(rng.randint(0, 200))

    def forged_payload() -> bytes:  # well-formed envelope, random CBOR-ish claims, signed by a forger
        claims: dict[object, object] = {k: rng.choice([0, -1, 2**40, "acme", b"\x00" * 8, [], {}, None, 1.5, True])
                  for k in rng.sample([1, 2, 4, 5, 6, 7, -1, -2, -3, 8, "x"], rng.randint(0, 10))}
        return sign1(cbor2.dumps(claims), {1: -8, 4: b"k1"}, forger)

    def swapped_signature() -> bytes:  # a real signature from another real token
        a, b = rng.sample(seeds, 2)
        return a[:-64] + b[-64:]

    mutators = [flips, insert_delete, splice, random_bytes, random_prefix, forged_payload, swapped_signature]

    def mutated() -> bytes:
        # A mutation can undo itself (two flips of one byte, a cut and rejoin at the same point, a delete past
        # the end); such a genuine token is not a test case, so draw again (a few times at most).
        for _ in range(20):
            token = rng.choice(mutators)()
            if token not in seeds:
                return token
        raise AssertionError("the mutators keep producing genuine tokens")

    return mutated


@pytest.mark.slow
def test_100k_random_or_mutated_tokens_are_all_rejected() -> None:
    world = CardWorld()
    verifier = world.verifier()
    rng = random.Random(20261123)
    mutated = _mutator(world, rng)
    reasons: Counter[RejectReason | None] = Counter()
    accepted: list[bytes] = []
    started = time.perf_counter()
    for _ in range(ROUNDS):
        token = mutated()
        verdict = verifier.verify(token, NOW)  # any exception fails the test
        reasons[verdict.reason] += 1
        if verdict.accepted:
            accepted.append(token)
    elapsed = time.perf_counter() - started
    assert accepted == []
    assert sum(reasons.values()) == ROUNDS
    assert reasons[RejectReason.MALFORMED] > ROUNDS // 2 and reasons[RejectReason.BAD_SIGNATURE] > 1000
    print(f"\n100k fuzz: {elapsed:.1f} s, {dict(reasons)}")


# -- hypothesis: every parser in terminal/cards fails only with our own error ---------------------------------

cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.floats() | st.binary(max_size=40)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.integers(-30, 30) | st.text(max_size=3), inner,
                                                                max_size=5),
    max_leaves=20,
)
WORLD = CardWorld()
VERIFIER = WORLD.verifier()


def _tagged(value: object) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(18, value))


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=300), cbor_values.map(cbor2.dumps), cbor_values.map(_tagged),
                 st.tuples(cbor_values, cbor_values, cbor_values, cbor_values).map(lambda t: _tagged(list(t)))))
def test_parsers_fail_only_with_card_errors(data: bytes) -> None:
    assert not VERIFIER.verify(data, NOW).accepted
    parsers: list[Callable[[], object]] = [
        lambda: decode_sign1(data, strict=True),
        lambda: decode_sign1(data, strict=False),
        lambda: load_trust_list(data, WORLD.root_public),
        lambda: load_revocation_delta(data, WORLD.root_public),
        lambda: RevocationList.from_bytes(data),
        lambda: token_from_text("CP1:" + data.decode("latin-1")),
    ]
    for parse in parsers:
        with contextlib.suppress(CardError):  # CoseError and TokenFormatError are CardErrors; anything else fails
            parse()


@settings(max_examples=200, deadline=None)
@given(payload=cbor_values, kid=st.binary(max_size=40))
def test_forged_envelopes_with_random_claims_never_pass(payload: object, kid: bytes) -> None:
    token = sign1(cbor2.dumps(payload), {1: -8, 4: kid}, key_from_seed(bytes([98]) * 32))
    assert not VERIFIER.verify(token, NOW).accepted
