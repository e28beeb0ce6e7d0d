"""The ledger's side of new cards (ledger.cards_issue, ledger.signup) in-process: one card per request, the same card
again on a retry, a challenge card's key sealed to the asking terminal, refusals with a reason, waiting requests
listed, and sign-ups created or merged by phone; each on SQLite and on PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.card_issue import open_card_key, verify_new_card
from cardkit.cards.keys import public_key_bytes
from cardkit.enrollment import open_answer
from ledger import admin, cards_issue, signup, store
from ledger.enroll import Caller, RequestRefused, enroll_terminal
from ledger.enroll_guard import AttemptGuard
from ledger.home import Ledger, init_ledger
from tests.fixtures.ledger import InProcessTill, answer_fields, enroll_request

T0_MS = 1_790_000_000_000
NONCE = bytes(range(16))


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """The same ledger on SQLite and on PostgreSQL (a database of its own on the session's server)."""
    db_url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    home = init_ledger(tmp_path / "ledger", db_url, issuer="acme", clock=lambda: T0_MS)
    home.randbytes = random.Random(5).randbytes
    cards_issue.create_tables()
    yield home
    home.database.close()


class Till(InProcessTill):
    members_key: bytes = b""

    @property
    def caller(self) -> Caller:
        return Caller(terminal_id=self.terminal_id, store_id="store-1", time_ms=T0_MS)

    def ask(self, request: str, card: str = "") -> dict[str, Any]:
        return cards_issue.new_card_answer(self.ledger, self.caller, request_id=request, card_id=card, nonce=NONCE)


def _till(ledger: Ledger) -> Till:
    _, code = admin.add_terminal("till", "store-1")
    key = Ed25519PrivateKey.generate()
    proof, mac_key, members_key = enroll_request(code, key)
    body = answer_fields(open_answer(mac_key, proof, enroll_terminal(ledger, proof.to_json(), source="test",
                                                                      attempts=AttemptGuard())))
    till = Till(ledger, body["terminal_id"], key, bytes.fromhex(body["ledger_hpke_public_key"]))
    till.members_key = members_key
    return till


def _upgrade(till: Till, member: str, card: str, to: str = "gold") -> str:
    entry = till.append("tier_upgrade", {"member": member, "card": card, "from": "standard", "to": to})
    till.ingest(entry.seq, entry.seq)
    return entry.uuid


def test_one_card_per_upgrade_the_same_card_on_retry_and_the_old_card_revoked(ledger: Ledger) -> None:
    till = _till(ledger)
    ann = admin.add_member("Ann Lee", balance=12_300)
    old = admin.issue_card(ann).card_id
    request = _upgrade(till, ann, old)
    assert [(r["card_id"], r["tier"]) for r in cards_issue.pending_requests()] == [(old, "gold")]
    first = till.ask(request, old)
    card = verify_new_card(first, ledger.keys.root_public(), terminal_id=till.terminal_id, nonce=NONCE,
                           request=request, old_card=old)
    assert (card.member_id, card.tier, card.sealed_key) == (ann, "gold", None)
    assert store.Card.get_by_id(card.card_id).tier == "gold"
    again = till.ask(request, old)
    assert again == first  # the very same card and signature: never a second live card
    cards = {c["card_id"]: c for c in admin.member_view(ann)["cards"]}
    assert cards[old]["status"] == "replaced" and cards[card.card_id]["status"] == "active"
    assert admin.member_view(ann)["balance"] == 12_300
    assert cards_issue.pending_requests() == []
    assert [r["new_card"] for r in cards_issue.issued_requests(ann)] == [card.card_id]


def test_refusals_name_their_reason(ledger: Ledger) -> None:
    till, other = _till(ledger), _till(ledger)
    ann = admin.add_member("Ann Lee")
    old = admin.issue_card(ann).card_id
    with pytest.raises(RequestRefused) as not_synced:
        till.ask("00000000-0000-0000-0000-00000000abcd", old)
    assert (not_synced.value.status, not_synced.value.code) == (409, "upgrade_not_synced")
    request = _upgrade(till, ann, old)
    with pytest.raises(RequestRefused) as someone_else:
        other.ask(request, old)  # another terminal cannot claim this upgrade's card
    assert someone_else.value.code == "upgrade_not_synced"
    with pytest.raises(RequestRefused) as wrong_card:
        till.ask(request, "not-the-card")
    assert wrong_card.value.code == "request_mismatch"
    admin.revoke_card(old, "lost")
    with pytest.raises(RequestRefused) as revoked:
        till.ask(request, old)
    assert revoked.value.code == "card_not_active"
    assert cards_issue.pending_requests() == []  # a revoked card waits for no new card


def test_a_challenge_cards_key_is_sealed_to_the_asking_terminal(ledger: Ledger) -> None:
    till = _till(ledger)
    ann = admin.add_member("Ann Lee")
    old = admin.issue_card(ann, challenge=True).card_id
    request = _upgrade(till, ann, old)
    card = verify_new_card(till.ask(request, old), ledger.keys.root_public(), terminal_id=till.terminal_id,
                           nonce=NONCE, request=request, old_card=old)
    assert card.sealed_key is not None
    key = open_card_key(card.sealed_key, terminal_id=till.terminal_id, request=request, suite="x25519",
                        private_key=till.members_key)
    public = Ed25519PrivateKey.from_private_bytes(key).public_key()
    row = store.Card.get_by_id(card.card_id)
    assert bytes(row.card_public_key) == public_key_bytes(public) and row.challenge


def test_signups_create_a_member_or_merge_onto_the_one_with_the_same_phone(ledger: Ledger) -> None:
    till_a, till_b = _till(ledger), _till(ledger)

    def sign_up(till: Till, provisional: str, phone: str, **consent: bool) -> str:
        entry = till.append("member_signup", {
            "member": provisional, "name": "Li Na", "phone": phone, "birthday": "1990-05-17", "language": "zh",
            "consent": {"sms": consent.get("sms", False), "mail": consent.get("mail", False),
                        "wording": "consent_1"}, "store": "store-1", "cur": "CNY"})
        till.ingest(entry.seq, entry.seq)
        return entry.uuid

    first = sign_up(till_b, "Pb", "13800138000", mail=True)
    till_a.wall_ms = till_b.wall_ms + 60_000  # a minute later (at one instant a withdrawal would win over a grant)
    second = sign_up(till_a, "Pa", "138 0013 8000", sms=True)
    other = sign_up(till_a, "Pc", "139 0000 0000")
    records = {r["provisional_id"]: r for r in signup.signups()}
    assert records["Pb"]["outcome"] == "created" and records["Pc"]["outcome"] == "created"
    assert records["Pa"]["outcome"] == "merged" and records["Pa"]["member_id"] == records["Pb"]["member_id"]
    assert [r["provisional_id"] for r in signup.signups(merged_only=True)] == ["Pa"]
    member = records["Pb"]["member_id"]
    assert [m["member_id"] for m in admin.find_members(phone="13800138000")] == [member]
    from ledger import member_facts

    # The latest statements: SMS granted at till A, mail granted at till B and then not at till A.
    assert member_facts.has_consent(member, "sms") and not member_facts.has_consent(member, "mail")
    # Each sign-up asks for its card: both go to the one member.
    assert {r["kind"] for r in cards_issue.pending_requests()} == {"signup"}
    card_b = verify_new_card(till_b.ask(first), ledger.keys.root_public(), terminal_id=till_b.terminal_id,
                             nonce=NONCE, request=first, old_card="")
    card_a = verify_new_card(till_a.ask(second), ledger.keys.root_public(), terminal_id=till_a.terminal_id,
                             nonce=NONCE, request=second, old_card="")
    assert card_a.member_id == card_b.member_id == member and card_a.card_id != card_b.card_id
    assert till_a.ask(second) == till_a.ask(second)
    with pytest.raises(RequestRefused):
        till_b.ask(other)  # another terminal's sign-up
    assert [r["request"] for r in cards_issue.pending_requests()] == [other]
