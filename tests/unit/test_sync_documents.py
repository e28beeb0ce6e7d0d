"""Pulled documents are checked against the pinned root key before anything is saved (real store on disk)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit import pulldocs
from cardkit.cards.revocation import RevocationDelta, RevocationList, sign_revocation_delta
from cardkit.cards.signed_doc import sign_document
from cardkit.core.rules import DEFAULT_RULES, Rules
from cardkit.errors import SyncError
from terminal import documents
from terminal.documents import REVOCATIONS_FILE, RULES_FILE, TRUST_FILE, Enrollment
from terminal.offline.store import TerminalStore
from terminal.sync.service import (
    DOC_MEMBERS,
    DOC_REVOCATIONS,
    DOC_RULES,
    DOC_TRUST,
    verify_and_save_documents,
)
from tests.fixtures.cards import CardWorld
from tests.fixtures.offline import TEST_TERMINAL_ID

CARD_A, CARD_B = "00000000000000a1", "00000000000000b2"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def enrollment(card_world: CardWorld) -> Enrollment:
    return Enrollment(terminal_id=TEST_TERMINAL_ID, store_id="store-1", ledger_url="http://127.0.0.1:1",
                      ledger_hpke_public_key="00" * 32, hpke_suite="x25519",
                      root_public_key=card_world.root_public.hex(), issuer=card_world.issuer)


@pytest.fixture
def store(open_store: Callable[..., TerminalStore]) -> TerminalStore:
    return open_store()


def member(member_id: str, balance: int) -> dict[str, Any]:
    return {"member_id": member_id, "name": "Li Lei", "phone": "", "email": "", "notes": "", "prefs": {},
            "tier": "gold", "balance": balance, "points": 7, "currency": "CNY", "yearly_spend": 0, "coupons": [],
            "card_ids": [CARD_A], "state": {}}


def test_all_four_documents_are_checked_saved_and_versioned(store: TerminalStore, enrollment: Enrollment,
                                                             card_world: CardWorld) -> None:
    root = card_world.root_key
    rules = Rules.from_mapping({**DEFAULT_RULES, "version": 4})
    snapshot = pulldocs.MemberSnapshot(version=9, since=0, store_id="store-1", members=[member("M1", 500)])
    applied = verify_and_save_documents(store, enrollment, {
        "trust_list": b64(card_world.signed_trust_list(3)),
        "rules": b64(pulldocs.sign_rules_document(rules, root)),
        "revocations": b64(sign_revocation_delta(RevocationDelta(0, 2, revoked=((CARD_A, "lost"),)), root)),
        "members": b64(pulldocs.sign_member_snapshot(snapshot, root)),
    })
    assert applied == {DOC_TRUST: 3, DOC_RULES: 4, DOC_REVOCATIONS: 2, DOC_MEMBERS: 9}
    assert documents.load_document(store.data_dir, TRUST_FILE) == card_world.signed_trust_list(3)
    assert pulldocs.load_rules_document(documents.load_document(store.data_dir, RULES_FILE) or b"",
                                        card_world.root_public).version == 4
    merged = RevocationList.from_bytes(documents.load_document(store.data_dir, REVOCATIONS_FILE) or b"")
    assert merged.version == 2 and merged.reason(CARD_A) == "lost"
    assert store.sync_state.document_version(DOC_TRUST) == 3
    assert store.cache.snapshot_version == 9
    cached = store.cache.get("M1")
    assert cached is not None and cached.balance == 500


def test_revocation_deltas_merge_in_order(store: TerminalStore, enrollment: Enrollment,
                                          card_world: CardWorld) -> None:
    root = card_world.root_key
    verify_and_save_documents(store, enrollment, {
        "revocations": b64(sign_revocation_delta(RevocationDelta(0, 1, revoked=((CARD_A, "lost"),)), root))})
    verify_and_save_documents(store, enrollment, {
        "revocations": b64(sign_revocation_delta(RevocationDelta(1, 2, held=(CARD_B,)), root))})
    merged = RevocationList.from_bytes(documents.load_document(store.data_dir, REVOCATIONS_FILE) or b"")
    assert merged.version == 2 and merged.reason(CARD_A) == "lost" and merged.held_count == 1
    # A delta that does not start at our version is not merged; the next pull asks for the whole list.
    assert verify_and_save_documents(store, enrollment, {
        "revocations": b64(sign_revocation_delta(RevocationDelta(5, 6), root))}) == {}
    assert store.sync_state.document_version(DOC_REVOCATIONS) == 0


@pytest.mark.parametrize("field", ["trust_list", "rules", "revocations", "members"])
def test_a_document_signed_by_another_key_is_refused_and_nothing_is_saved(
        store: TerminalStore, enrollment: Enrollment, card_world: CardWorld, field: str) -> None:
    stranger = Ed25519PrivateKey.generate()
    good = {
        "trust_list": b64(card_world.signed_trust_list(1)),
        "rules": b64(pulldocs.sign_rules_document(Rules.default(), card_world.root_key)),
        "revocations": b64(sign_revocation_delta(RevocationDelta(0, 1), card_world.root_key)),
        "members": b64(pulldocs.sign_member_snapshot(pulldocs.MemberSnapshot(1, 0, "store-1", []),
                                                     card_world.root_key)),
    }
    forged = {
        "trust_list": lambda: sign_document({1: 1, 2: card_world.issuer, 3: []},
                                            "application/cardpos-trust-list+cbor", stranger),
        "rules": lambda: pulldocs.sign_rules_document(Rules.default(), stranger),
        "revocations": lambda: sign_revocation_delta(RevocationDelta(0, 1), stranger),
        "members": lambda: pulldocs.sign_member_snapshot(pulldocs.MemberSnapshot(1, 0, "store-1", []), stranger),
    }[field]()
    with pytest.raises(SyncError, match="failed its check and was not saved"):
        verify_and_save_documents(store, enrollment, {**good, field: b64(forged)})
    assert store.sync_state.document_versions() == {}
    assert store.cache.snapshot_version == 0
    for name in (TRUST_FILE, RULES_FILE, REVOCATIONS_FILE):
        assert documents.load_document(store.data_dir, name) is None


def test_one_document_type_cannot_pass_for_another(store: TerminalStore, enrollment: Enrollment,
                                                   card_world: CardWorld) -> None:
    with pytest.raises(SyncError, match="not a rules document"):
        verify_and_save_documents(store, enrollment, {"rules": b64(card_world.signed_trust_list(1))})


def test_foreign_issuer_and_foreign_store_are_refused(store: TerminalStore, enrollment: Enrollment,
                                                      card_world: CardWorld) -> None:
    other = CardWorld(issuer="someone-else")
    other.root_key = card_world.root_key
    with pytest.raises(SyncError, match="issuer 'someone-else'"):
        verify_and_save_documents(store, enrollment, {"trust_list": b64(other.signed_trust_list(1))})
    snap = pulldocs.MemberSnapshot(version=2, since=0, store_id="store-9", members=[member("M1", 1)])
    with pytest.raises(SyncError, match="store-9"):
        verify_and_save_documents(store, enrollment,
                                  {"members": b64(pulldocs.sign_member_snapshot(snap, card_world.root_key))})
    assert store.cache.snapshot_version == 0


def test_not_base64_is_a_clear_error(store: TerminalStore, enrollment: Enrollment) -> None:
    with pytest.raises(SyncError, match="not base64"):
        verify_and_save_documents(store, enrollment, {"rules": "%%%"})


def test_older_trust_list_does_not_replace_a_newer_one(store: TerminalStore, enrollment: Enrollment,
                                                       card_world: CardWorld) -> None:
    verify_and_save_documents(store, enrollment, {"trust_list": b64(card_world.signed_trust_list(5))})
    assert verify_and_save_documents(store, enrollment, {"trust_list": b64(card_world.signed_trust_list(4))}) == {}
    assert documents.load_document(store.data_dir, TRUST_FILE) == card_world.signed_trust_list(5)
