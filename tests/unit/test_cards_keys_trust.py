"""Issuer keys and the signed trust list."""

from __future__ import annotations

import cbor2
import pytest

from cardkit.cards.cose import sign1
from cardkit.cards.keys import (
    IssuerKey,
    check_can_issue,
    generate_issuer_key,
    private_key_from_bytes,
    private_key_to_bytes,
    public_key_bytes,
    public_key_from_bytes,
    public_key_from_hex,
)
from cardkit.cards.revocation import RevocationDelta, sign_revocation_delta
from cardkit.cards.trust import CONTENT_TYPE, TrustList, load_trust_list, sign_trust_list
from cardkit.errors import CardError
from tests.fixtures.cards import DAY, NOW, CardWorld, key_from_seed


def test_generate_issuer_key_is_reproducible_with_a_seed() -> None:
    private, record = generate_issuer_key("k9", "acme", now=NOW, valid_days=30, randbytes=lambda n: bytes([7]) * n)
    again, record2 = generate_issuer_key("k9", "acme", now=NOW, valid_days=30, randbytes=lambda n: bytes([7]) * n)
    assert record == record2
    assert private_key_to_bytes(private) == bytes([7]) * 32 == private_key_to_bytes(again)
    assert record.public_key == public_key_bytes(private)
    assert (record.not_before, record.not_after, record.retired_at) == (NOW, NOW + 30 * DAY, None)


def test_generate_issuer_key_uses_the_os_by_default() -> None:
    a, _ = generate_issuer_key("k9", "acme", now=NOW, valid_days=1)
    b, _ = generate_issuer_key("k9", "acme", now=NOW, valid_days=1)
    assert private_key_to_bytes(a) != private_key_to_bytes(b)
    with pytest.raises(CardError):
        generate_issuer_key("k9", "acme", now=NOW, valid_days=0)


def test_issuer_key_window_and_retirement() -> None:
    _, key = generate_issuer_key("k1", "acme", now=NOW, valid_days=10, randbytes=bytes)
    assert key.may_issue(NOW) and key.may_issue(NOW + 10 * DAY)
    assert not key.may_issue(NOW - 1) and not key.may_issue(NOW + 10 * DAY + 1)
    check_can_issue(key, NOW + DAY)
    with pytest.raises(CardError, match="issuing window"):
        check_can_issue(key, NOW + 11 * DAY)
    retired = IssuerKey(**{**key.to_dict(), "public_key": key.public_key, "retired_at": NOW + DAY})
    assert not retired.is_retired(NOW) and retired.is_retired(NOW + DAY)
    with pytest.raises(CardError, match="retired"):
        check_can_issue(retired, NOW + DAY)


def test_issuer_key_dict_round_trip() -> None:
    _, key = generate_issuer_key("k1", "acme", now=NOW, valid_days=10, randbytes=bytes)
    assert IssuerKey.from_dict(key.to_dict()) == key
    with pytest.raises(CardError, match="damaged"):
        IssuerKey.from_dict({"kid": "k1"})


@pytest.mark.parametrize("change", [
    {"kid": ""}, {"kid": "a b"}, {"issuer": ""}, {"public_key": bytes(31)}, {"not_before": -1},
    {"not_after": NOW - 1}, {"retired_at": 1.5},
])
def test_issuer_key_refuses_bad_fields(change: dict[str, object]) -> None:
    fields: dict[str, object] = {"kid": "k1", "issuer": "acme", "public_key": bytes(32), "not_before": NOW,
                                 "not_after": NOW + DAY, **change}
    with pytest.raises(CardError):
        IssuerKey(**fields)  # type: ignore[arg-type]


def test_raw_key_helpers() -> None:
    key = private_key_from_bytes(bytes([3]) * 32)
    raw = public_key_bytes(key)
    assert public_key_bytes(public_key_from_bytes(raw)) == raw
    assert public_key_bytes(public_key_from_hex(raw.hex() + "\n")) == raw
    for bad in (bytes(31), bytes(33)):
        with pytest.raises(CardError):
            public_key_from_bytes(bad)
        with pytest.raises(CardError):
            private_key_from_bytes(bad)
    with pytest.raises(CardError):
        public_key_from_hex("zz")


def test_trust_list_round_trip(card_world: CardWorld) -> None:
    _, second = generate_issuer_key("k2", "acme", now=NOW, valid_days=10, randbytes=bytes)
    retired = IssuerKey("k0", "acme", bytes(32), NOW - 900 * DAY, NOW - 400 * DAY, retired_at=NOW - DAY)
    card_world.keys.extend([second, retired])
    tl = card_world.trust_list(version=7)
    loaded = load_trust_list(sign_trust_list(tl, card_world.root_key), card_world.root_public)
    assert loaded == tl
    assert loaded.key("k2") == second and loaded.key("nope") is None


def test_trust_list_refuses_a_wrong_root_and_tampering(card_world: CardWorld) -> None:
    data = card_world.signed_trust_list()
    with pytest.raises(CardError, match="signature"):
        load_trust_list(data, public_key_bytes(key_from_seed(bytes([9]) * 32)))
    for pos in range(len(data)):
        tampered = data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1:]
        with pytest.raises(CardError):
            load_trust_list(tampered, card_world.root_public)


def test_trust_list_is_not_a_revocation_delta_or_token(card_world: CardWorld) -> None:
    delta = sign_revocation_delta(RevocationDelta(0, 1), card_world.root_key)
    with pytest.raises(CardError, match="not a trust list"):
        load_trust_list(delta, card_world.root_public)
    token = card_world.token(key=card_world.root_key)
    with pytest.raises(CardError):
        load_trust_list(token, card_world.root_public)


@pytest.mark.parametrize("body", [
    {1: 1, 2: "acme"},
    {1: 1, 2: "acme", 3: [["k1", "acme", bytes(32), 0, 1]]},
    {1: 1, 2: "acme", 3: [["k1", "acme", bytes(31), 0, 1, None]]},
    {1: 1, 2: "acme", 3: [["k1", "acme", bytes(32), 0, 1, None], ["k1", "acme", bytes(32), 0, 1, None]]},
    {1: -1, 2: "acme", 3: []},
    [1, "acme", []],
])
def test_trust_list_refuses_signed_but_off_bodies(card_world: CardWorld, body: object) -> None:
    data = sign1(cbor2.dumps(body, canonical=True), {1: -8, 3: CONTENT_TYPE}, card_world.root_key)
    with pytest.raises(CardError, match="layout"):
        load_trust_list(data, card_world.root_public)


def test_trust_list_requires_unique_kids_and_an_issuer() -> None:
    key = IssuerKey("k1", "acme", bytes(32), 0, 1)
    with pytest.raises(CardError):
        TrustList(1, "acme", (key, key))
    with pytest.raises(CardError):
        TrustList(1, "", ())
