"""Online authorization, pure parts: the request's bounded decoding, the signed answer, the ledger's decision."""

from __future__ import annotations

import contextlib
import json
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit import authorization, wire
from cardkit.answers import UnauthenticAnswer
from cardkit.authorization import AuthorizationAnswer, AuthorizationRefused, AuthorizationRequest
from cardkit.cards.keys import public_key_bytes
from ledger.authorize_decision import LiveFigures, OpenHold, decide

ROOT = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ROOT_PUBLIC = public_key_bytes(ROOT.public_key())
UUID = "7a1f0c2e-3b4d-4e5f-8a6b-7c8d9e0f1a2b"


def request(**changes: object) -> AuthorizationRequest:
    fields: dict[str, object] = dict(entry_uuid=UUID, member_id="M000", card_id="c0011223344", currency="CNY",
                                     sv=1_250, points=0, coupons=(), nonce=bytes(16))
    fields.update(changes)
    return AuthorizationRequest(**fields)  # type: ignore[arg-type]


# -- the request on the wire --------------------------------------------------------------------------------------
def test_the_request_round_trips_and_its_digest_is_in_the_signed_path() -> None:
    req = request(coupons=("cA1", "cB2"), points=300)
    body = req.body()
    assert authorization.parse_request(body) == req
    assert authorization.signed_path(body) == f"/v1/authorize?digest={authorization.request_digest(body).hex()}"


@pytest.mark.parametrize(("mutate", "why"), [
    (lambda d: d.update(uuid="not-a-uuid"), "uuid"),
    (lambda d: d.update(uuid=UUID.upper()), "uuid"),
    (lambda d: d.update(sv=1.5), "sv"),
    (lambda d: d.update(sv=True), "sv"),
    (lambda d: d.update(sv=10**14), "sv"),
    (lambda d: d.update(pts="3"), "pts"),
    (lambda d: d.update(coupons=["c1", "c1"]), "coupons"),
    (lambda d: d.update(coupons=[f"c{i}" for i in range(17)]), "coupons"),
    (lambda d: d.update(cur="cny"), "cur"),
    (lambda d: d.update(member="M 1"), "member"),
    (lambda d: d.update(nonce=""), "nonce"),
    (lambda d: d.update(extra=1), "unknown fields"),
])
def test_malformed_requests_are_refused_in_one_sentence(mutate: object, why: str) -> None:
    data = json.loads(request().body())
    mutate(data)  # type: ignore[operator]
    with pytest.raises(AuthorizationRefused) as caught:
        authorization.parse_request(json.dumps(data).encode())
    assert why in str(caught.value) and "\n" not in str(caught.value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_are_parsed_or_refused_never_crash(data: bytes) -> None:
    with contextlib.suppress(AuthorizationRefused):
        authorization.parse_request(data)


def test_deep_or_large_bodies_are_refused_before_decoding() -> None:
    with pytest.raises(AuthorizationRefused, match="nesting"):
        authorization.parse_request(b"[" * 1000)
    with pytest.raises(AuthorizationRefused, match="bytes"):
        authorization.parse_request(b" " * (authorization.MAX_AUTHORIZE_BYTES + 1))


# -- the signed answer --------------------------------------------------------------------------------------------
def signed(req: AuthorizationRequest, answer: AuthorizationAnswer, *, terminal_id: str = "t1",
           key: Ed25519PrivateKey = ROOT) -> dict[str, str]:
    digest = authorization.request_digest(req.body())
    return authorization.answer_fields(answer, terminal_id=terminal_id, nonce=req.nonce, digest=digest, root_key=key)


APPROVAL = AuthorizationAnswer(UUID, authorization.APPROVED, "", "0123456789abcdef")
DECLINE = AuthorizationAnswer(UUID, authorization.DECLINED, "insufficient_balance", "fedcba9876543210")


def verify(req: AuthorizationRequest, data: object, terminal_id: str = "t1") -> AuthorizationAnswer:
    return authorization.verify_answer(data, ROOT_PUBLIC, terminal_id=terminal_id, request=req,
                                       digest=authorization.request_digest(req.body()))


def test_a_signed_answer_verifies_for_its_request() -> None:
    req = request()
    assert verify(req, signed(req, APPROVAL)) == APPROVAL
    assert verify(req, signed(req, DECLINE)) == DECLINE


def test_a_decline_cannot_be_turned_into_an_approval() -> None:
    req = request()
    forged = {**signed(req, DECLINE), "decision": "approved", "reason": ""}
    with pytest.raises(UnauthenticAnswer):
        verify(req, forged)


@pytest.mark.parametrize("other", [
    {"nonce": bytes([1]) * 16},  # an answer replayed from another request
    {"sv": 1},  # the same uuid and nonce, another amount
    {"coupons": ("cX",)},
])
def test_an_answer_for_another_request_is_not_believed(other: dict[str, object]) -> None:
    req = request()
    with pytest.raises(UnauthenticAnswer):
        verify(request(**other), signed(req, APPROVAL))


def test_an_answer_for_another_terminal_or_by_another_key_is_not_believed() -> None:
    req = request()
    with pytest.raises(UnauthenticAnswer):
        verify(req, signed(req, APPROVAL, terminal_id="t2"))
    with pytest.raises(UnauthenticAnswer):
        verify(req, signed(req, APPROVAL, key=Ed25519PrivateKey.generate()))


@pytest.mark.parametrize("data", [None, [], "approved", {"decision": "approved"},
                                  {**{"uuid": UUID, "decision": "maybe", "reason": "", "auth_id": "0" * 16,
                                      "signature": "00" * 64}}])
def test_malformed_answers_are_not_believed(data: object) -> None:
    with pytest.raises(UnauthenticAnswer):
        verify(request(), data)


def test_the_signature_text_is_canonical_cbor_of_the_listed_fields() -> None:
    text = wire.authorization_signature_text("t1", bytes(16), bytes(32), UUID, "approved", "", "0123456789abcdef")
    import cbor2

    assert cbor2.loads(text) == ["cardpos-auth-v1", "t1", bytes(16), bytes(32), UUID, "approved", "",
                                 "0123456789abcdef"]


# -- the ledger's decision ----------------------------------------------------------------------------------------
FIGURES = LiveFigures(currency="CNY", balance=10_000, points=500, used_coupons=frozenset({"cUsed"}),
                      member_coupons=frozenset({"cUsed", "cFree", "cHeld"}))


def hold(sv: int = 0, points: int = 0, coupons: tuple[str, ...] = ()) -> OpenHold:
    return OpenHold(str(uuid.uuid4()), sv, points, coupons)


def test_open_holds_reduce_what_is_available() -> None:
    assert decide(request(sv=10_000), FIGURES, []).approved
    declined = decide(request(sv=10_000), FIGURES, [hold(sv=1)])
    assert (declined.approved, declined.reason, declined.available_balance) == (False, "insufficient_balance", 9_999)
    assert decide(request(sv=0, points=500), FIGURES, [hold(points=1)]).reason == "insufficient_points"


def test_credits_never_add_to_what_is_available_before_they_are_applied() -> None:
    assert decide(request(sv=10_001), FIGURES, [hold(sv=-5_000)]).reason == "insufficient_balance"
    assert decide(request(sv=-2_000, points=-10), FIGURES, [hold(sv=10_000)]).approved  # a refund is approved


@pytest.mark.parametrize(("coupon", "holds", "reason"), [
    ("cUsed", [], "coupon_used"),
    ("cHeld", [hold(coupons=("cHeld",))], "coupon_held"),
    ("cOther", [], "coupon_unknown"),
    ("cFree", [], ""),
])
def test_a_coupon_is_free_once(coupon: str, holds: list[OpenHold], reason: str) -> None:
    decision = decide(request(sv=0, coupons=(coupon,)), FIGURES, holds)
    assert (decision.approved, decision.reason) == (reason == "", reason)


def test_another_currency_is_declined() -> None:
    assert decide(request(currency="USD"), FIGURES, []).reason == "currency"


@given(st.lists(st.integers(min_value=-5_000, max_value=5_000), max_size=30),
       st.integers(min_value=1, max_value=20_000))
def test_approved_payments_never_exceed_the_balance(held: list[int], ask: int) -> None:
    holds = [hold(sv=s) for s in held]
    decision = decide(request(sv=ask), FIGURES, holds)
    taken = sum(s for s in held if s > 0)
    assert decision.approved == (taken + ask <= FIGURES.balance)


def test_the_documented_vector() -> None:
    """docs/sync-protocol.md, "3c. Online authorization": the request, its signed path and the signed answer."""
    req = AuthorizationRequest(entry_uuid=UUID, member_id="M000", card_id="c0011223344", currency="CNY", sv=1_250,
                               points=0, coupons=("c5566778899",), nonce=bytes(range(16)))
    body = req.body()
    assert body == (b'{"card":"c0011223344","coupons":["c5566778899"],"cur":"CNY","member":"M000",'
                    b'"nonce":"000102030405060708090a0b0c0d0e0f","pts":0,"sv":1250,'
                    b'"uuid":"7a1f0c2e-3b4d-4e5f-8a6b-7c8d9e0f1a2b"}')
    assert authorization.signed_path(body) == \
        "/v1/authorize?digest=9c0c30925e0967711fe4d5b924a11def0c837b15506d4e3ba532e9c62003b452"
    answer = AuthorizationAnswer(UUID, "approved", "", "0123456789abcdef")
    fields = signed(req, answer, terminal_id="t-0001")
    assert fields["signature"] == ("208cf1c02dbd03013ad2f0ae2d358ec8585de17c909b1977dd4d4bd7f3381ec2d24f21d1b33ac98"
                                   "8942a075606c0a1c64fcdff3833729410318a64518caf4f08")
    assert verify(req, fields, terminal_id="t-0001") == answer
