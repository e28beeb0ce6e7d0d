"""The ledger's side of members at every store and refunds anywhere (issue 14), in-process on a real SQLite file:
the signed, sealed member look-up, the signed original-operation answer, and which members a store's pulls carry.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.answers import UnauthenticAnswer, new_nonce
from cardkit.cards.keys import public_key_bytes
from cardkit.enrollment import open_answer
from cardkit.errors import CardError
from cardkit.lookup_answers import verify_lookup_answer, verify_original_answer
from cardkit.pulldocs import open_sealed_member_snapshot
from ledger import admin, lookup, publish
from ledger.enroll import Caller, RequestRefused, enroll_terminal
from ledger.enroll_guard import AttemptGuard
from ledger.home import Ledger, init_ledger
from tests.fixtures.ledger import InProcessTill, enroll_request, sale
from tests.fixtures.ledger import ManualClock as Clock

T0_MS = 1_790_000_000_000
DAY_MS = 86_400_000


@dataclass
class Terminal:
    caller: Caller
    members_key: bytes
    till: InProcessTill


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    home = init_ledger(tmp_path / "ledger", issuer="acme", clock=clock)
    home.randbytes = random.Random(7).randbytes
    yield home
    home.database.close()


def enroll(ledger: Ledger, store_id: str) -> Terminal:
    _, code = admin.add_terminal(f"till at {store_id}", store_id)
    key = Ed25519PrivateKey.generate()
    proof, mac_key, members_key = enroll_request(code, key)
    answer = open_answer(mac_key, proof, enroll_terminal(ledger, proof.to_json(), source="test",
                                                         attempts=AttemptGuard()))
    caller = Caller(terminal_id=answer.terminal_id, store_id=store_id, time_ms=ledger.now_ms())
    return Terminal(caller, members_key, InProcessTill(ledger, answer.terminal_id, key, answer.ledger_hpke_key))


def root(ledger: Ledger) -> bytes:
    return public_key_bytes(ledger.keys.root())


def test_a_member_is_looked_up_signed_sealed_and_audited(ledger: Ledger) -> None:
    member_id = admin.add_member("Li Wei", store_id="store-1", balance=80_000, points=1_200,
                                 notes="allergic to nuts", prefs={"drink": "green tea"})
    card = admin.issue_card(member_id)
    away, other = enroll(ledger, "store-2"), enroll(ledger, "store-2")
    nonce = new_nonce()
    answer = lookup.member_lookup(ledger, away.caller, card.card_id, nonce, origin="127.0.0.1")
    checked = verify_lookup_answer(answer, root(ledger), terminal_id=away.caller.terminal_id, nonce=nonce,
                                   card_id=card.card_id)
    assert checked.member_id == member_id and checked.folded_seq == 0
    snapshot = open_sealed_member_snapshot(checked.document, root(ledger), terminal_id=away.caller.terminal_id,
                                           suite="x25519", private_key=away.members_key)
    [member] = snapshot.members
    assert (member["name"], member["balance"], member["points"]) == ("Li Wei", 80_000, 1_200)
    assert (member["notes"], member["prefs"], member["card_ids"]) == ("allergic to nuts", {"drink": "green tea"},
                                                                     [card.card_id])
    # Bound to this request: another nonce, card or terminal, or one flipped bit, and nothing is believed.
    for changes in ({"nonce": new_nonce()}, {"card_id": "someone-else"},
                    {"terminal_id": other.caller.terminal_id}):
        args = {"terminal_id": away.caller.terminal_id, "nonce": nonce, "card_id": card.card_id, **changes}
        with pytest.raises(UnauthenticAnswer):
            verify_lookup_answer(answer, root(ledger), **args)  # type: ignore[arg-type]
    forged = {**answer, "folded_seq": 5}
    with pytest.raises(UnauthenticAnswer):
        verify_lookup_answer(forged, root(ledger), terminal_id=away.caller.terminal_id, nonce=nonce,
                             card_id=card.card_id)
    # Sealed to the asking terminal: another terminal of the same store cannot open it.
    with pytest.raises(CardError):
        open_sealed_member_snapshot(checked.document, root(ledger), terminal_id=other.caller.terminal_id,
                                    suite="x25519", private_key=other.members_key)
    [audit] = [row for row in admin.audit_log() if row["action"] == "member_lookup"]
    assert audit["actor"] == f"terminal:{away.caller.terminal_id}"
    assert audit["details"]["member_ids"] == [member_id]


def test_unknown_and_revoked_cards_are_refused(ledger: Ledger) -> None:
    away = enroll(ledger, "store-2")
    with pytest.raises(RequestRefused) as caught:
        lookup.member_lookup(ledger, away.caller, "no-such-card", new_nonce(), origin="")
    assert (caught.value.status, caught.value.code) == (404, "unknown_card")
    card = admin.issue_card(admin.add_member("Gone", store_id="store-1"))
    admin.revoke_card(card.card_id, "lost")
    with pytest.raises(RequestRefused) as caught:
        lookup.member_lookup(ledger, away.caller, card.card_id, new_nonce(), origin="")
    assert (caught.value.status, caught.value.code) == (403, "card_revoked")
    assert not [row for row in admin.audit_log() if row["action"] == "member_lookup"]  # nothing was sent


def test_the_folded_seq_names_the_callers_entries_the_snapshot_counts(ledger: Ledger) -> None:
    member_id = admin.add_member("Visitor", store_id="store-1", balance=10_000)
    card = admin.issue_card(member_id)
    away = enroll(ledger, "store-2")
    away.till.append("sale", sale(member_id, 1_000, card=card.card_id))
    away.till.append("sale", sale(member_id, 2_000, card=card.card_id))
    away.till.ingest(1, 2)
    nonce = new_nonce()
    checked = verify_lookup_answer(lookup.member_lookup(ledger, away.caller, card.card_id, nonce, origin=""),
                                   root(ledger), terminal_id=away.caller.terminal_id, nonce=nonce,
                                   card_id=card.card_id)
    snapshot = open_sealed_member_snapshot(checked.document, root(ledger), terminal_id=away.caller.terminal_id,
                                           suite="x25519", private_key=away.members_key)
    assert checked.folded_seq == 2 and snapshot.members[0]["balance"] == 10_000 - 3_000


def test_the_original_of_a_sale_and_what_is_left_to_refund(ledger: Ledger) -> None:
    member_id = admin.add_member("Chen", store_id="store-1", balance=50_000)
    card_id = admin.issue_card(member_id).card_id
    home, away = enroll(ledger, "store-1"), enroll(ledger, "store-2")
    original = home.till.append("sale", sale(member_id, 20_000, card=card_id, pts_earn=200))
    home.till.append("refund", {"orig": original.uuid, "member": member_id, "card": card_id, "cur": "CNY",
                                "amount": 5_000, "tender": "sv", "sv": 5_000, "pts_back": 0, "pts_rev": 50,
                                "supervisor": "s1", "offline": False})
    home.till.ingest(1, 2)
    nonce = new_nonce()
    answer = lookup.original_operation(ledger, away.caller, original.uuid, nonce)
    got = verify_original_answer(answer, root(ledger), terminal_id=away.caller.terminal_id, nonce=nonce,
                                 entry_uuid=original.uuid)
    assert (got.kind, got.member_id, got.card_id, got.terminal_id) == ("sale", member_id, card_id,
                                                                       home.caller.terminal_id)
    assert (got.payload["net"], got.refunded, got.voided) == (20_000, 5_000, False)
    with pytest.raises(UnauthenticAnswer):
        verify_original_answer(answer, root(ledger), terminal_id=away.caller.terminal_id, nonce=new_nonce(),
                               entry_uuid=original.uuid)
    with pytest.raises(RequestRefused) as caught:
        lookup.original_operation(ledger, away.caller, "00000000-0000-4000-8000-000000000000", new_nonce())
    assert caught.value.code == "unknown_operation"
    with pytest.raises(RequestRefused) as caught:
        lookup.original_operation(ledger, away.caller, home.till.entries[1].uuid, new_nonce())
    assert caught.value.code == "not_reversible"


def test_a_store_pulls_its_members_and_its_recent_visitors(ledger: Ledger, clock: Clock) -> None:
    local = admin.add_member("Local", store_id="store-2")
    visitor = admin.add_member("Visitor", store_id="store-1")
    stranger = admin.add_member("Stranger", store_id="store-1")
    home, away = enroll(ledger, "store-1"), enroll(ledger, "store-2")

    def ids(since: int) -> tuple[set[str], set[str]]:
        delta = publish.members_delta("store-2", since, ledger.now_s())
        return ({m["member_id"] for m in delta.members if not m.get("deleted")},
                {m["member_id"] for m in delta.members if m.get("deleted")})

    assert ids(0) == ({local}, set())
    before = publish.members_version()
    away.till.wall_ms = clock.now_ms
    away.till.append("sale", sale(visitor, 1_000, sv=0))  # the visitor uses a card at store 2
    away.till.ingest(1, 1)
    assert ids(before) == ({visitor}, set()) and ids(0) == ({local, visitor}, set())
    # A change made at the home store reaches store 2 while the visit is recent ...
    before = publish.members_version()
    home.till.wall_ms = clock.now_ms
    home.till.append("sale", sale(visitor, 500, sv=0))
    home.till.ingest(1, 1)
    assert ids(before) == ({visitor}, set())
    # ... and once the visit is older than the window, the next change drops the visitor from store 2's caches.
    clock.now_ms += (publish.VISITOR_DAYS + 1) * DAY_MS
    before = publish.members_version()
    home.till.wall_ms = clock.now_ms
    home.till.append("sale", sale(visitor, 500, sv=0))
    home.till.append("sale", sale(stranger, 500, sv=0))
    home.till.ingest(2, 3)
    assert ids(before) == (set(), {visitor})  # never a deletion naming a member store 2 never saw
    assert ids(0) == ({local}, set())


def test_the_signature_texts_match_the_documented_vectors() -> None:
    import hashlib

    from cardkit import wire

    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    text = wire.lookup_answer_signature_text("t1", bytes(range(16)), "c1", "M1", hashlib.sha256(b"member").digest(), 7)
    assert text.hex() == ("877163617264706f732d6c6f6f6b75702d763162743150000102030405060708090a0b0c0d0e0f626331624d"
                          "315820e31ab643c44f7a0ec824b59d1194d60dac334200d845e61d2d289daa0f087ea407")
    assert key.sign(text).hex() == ("446194ed6cd56ab81c5aceba290432ac351638f02849ec81c6b23019afcc3db131503f6771b370"
                                    "25855065dceb49e101bab2006b162f2fc05f630bf7f6129e0e")
    text = wire.original_answer_signature_text("t1", bytes(range(16)), "u-1", hashlib.sha256(b"original").digest())
    assert text.hex() == ("857363617264706f732d6f726967696e616c2d763162743150000102030405060708090a0b0c0d0e0f63752d"
                          "3158200682c5f2076f099c34cfdd15a9e063849ed437a49677e6fcc5b4198c76575be5")
