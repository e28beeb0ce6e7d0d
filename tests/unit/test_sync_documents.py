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
    apply_documents,
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


# -- versions only move forward (terminal/sync/versions.py) ------------------------------------------------------
def revocations_held(store: TerminalStore) -> RevocationList:
    return RevocationList.from_bytes(documents.load_document(store.data_dir, REVOCATIONS_FILE) or b"")


def test_a_replayed_enrollment_delta_cannot_unrevoke_a_card(store: TerminalStore, enrollment: Enrollment,
                                                            card_world: CardWorld) -> None:
    root = card_world.root_key
    at_enrollment = sign_revocation_delta(RevocationDelta(0, 0), root)
    verify_and_save_documents(store, enrollment, {"revocations": b64(at_enrollment)})
    newer = sign_revocation_delta(RevocationDelta(0, 2, revoked=((CARD_A, "stolen"),)), root)
    assert apply_documents(store, enrollment, {"revocations": newer}).applied == {DOC_REVOCATIONS: 2}
    replay = apply_documents(store, enrollment, {"revocations": at_enrollment})
    assert replay.applied == {} and "version 0, older than version 2" in replay.refused[DOC_REVOCATIONS]
    assert revocations_held(store).version == 2 and revocations_held(store).reason(CARD_A) == "stolen"
    assert store.sync_state.document_version(DOC_REVOCATIONS) == 2
    # The same version with other content is refused too; the very same document again is a quiet no-op.
    other = sign_revocation_delta(RevocationDelta(1, 2, held=(CARD_B,)), root)
    assert "other content" in apply_documents(store, enrollment, {"revocations": other}).refused[DOC_REVOCATIONS]
    again = apply_documents(store, enrollment, {"revocations": newer})
    assert (again.applied, again.refused) == ({}, {})
    assert revocations_held(store).held_count == 0


def test_rules_and_trust_of_the_same_version_with_other_content_are_refused(
        store: TerminalStore, enrollment: Enrollment, card_world: CardWorld) -> None:
    root = card_world.root_key
    rules = pulldocs.sign_rules_document(Rules.from_mapping({**DEFAULT_RULES, "version": 4}), root)
    verify_and_save_documents(store, enrollment, {"rules": b64(rules)})
    other = dict(DEFAULT_RULES)
    other["offline"] = {**DEFAULT_RULES["offline"], "max_consecutive_offline_ops": 1}
    changed = pulldocs.sign_rules_document(Rules.from_mapping({**other, "version": 4}), root)
    outcome = apply_documents(store, enrollment, {"rules": changed})
    assert outcome.applied == {} and "rules version 4 with other content" in outcome.refused[DOC_RULES]
    assert documents.load_document(store.data_dir, RULES_FILE) == rules
    older = pulldocs.sign_rules_document(Rules.from_mapping({**DEFAULT_RULES, "version": 3}), root)
    assert "older than version 4" in apply_documents(store, enrollment, {"rules": older}).refused[DOC_RULES]
    verify_and_save_documents(store, enrollment, {"trust_list": b64(card_world.signed_trust_list(5))})
    assert "older" in apply_documents(store, enrollment,
                                      {"trust_list": card_world.signed_trust_list(4)}).refused[DOC_TRUST]


def test_a_member_snapshot_of_the_same_version_is_never_applied_again(
        store: TerminalStore, enrollment: Enrollment, card_world: CardWorld) -> None:
    """Re-applying it would move the synced seq the counter folds from past entries the snapshot never saw."""
    from terminal.offline.state import MEMBERS_SYNCED_SEQ

    root = card_world.root_key
    first = pulldocs.sign_member_snapshot(pulldocs.MemberSnapshot(9, 0, "store-1", [member("M1", 500)]), root)
    assert apply_documents(store, enrollment, {"members": first}).applied == {DOC_MEMBERS: 9}
    assert store.sync_state.get(MEMBERS_SYNCED_SEQ) == 0
    for i in range(2):
        store.journal.append("shift_open", {"shift": f"s{i}"}, "c1")
    store.journal.mark_synced(2)  # as a forged ack would have done before acks were signed
    again = apply_documents(store, enrollment, {"members": first})
    assert (again.applied, again.refused) == ({}, {}) and store.sync_state.get(MEMBERS_SYNCED_SEQ) == 0
    other = pulldocs.sign_member_snapshot(pulldocs.MemberSnapshot(9, 0, "store-1", [member("M1", 900)]), root)
    assert "other content" in apply_documents(store, enrollment, {"members": other}).refused[DOC_MEMBERS]
    older = pulldocs.sign_member_snapshot(pulldocs.MemberSnapshot(8, 0, "store-1", [member("M1", 900)]), root)
    assert "older" in apply_documents(store, enrollment, {"members": older}).refused[DOC_MEMBERS]
    skipping = pulldocs.sign_member_snapshot(pulldocs.MemberSnapshot(12, 10, "store-1", []), root)
    assert "since version 10" in apply_documents(store, enrollment, {"members": skipping}).refused[DOC_MEMBERS]
    cached = store.cache.get("M1")
    assert cached is not None and cached.balance == 500 and store.sync_state.get(MEMBERS_SYNCED_SEQ) == 0


def test_a_null_document_the_ledger_holds_newer_is_missing(store: TerminalStore, enrollment: Enrollment,
                                                           card_world: CardWorld) -> None:
    verify_and_save_documents(store, enrollment, {"trust_list": b64(card_world.signed_trust_list(3))})
    none: dict[str, bytes | None] = {"trust_list": None, "revocations": None, "rules": None, "members": None}
    current = apply_documents(store, enrollment, none,
                              ledger_versions={"trust": 3, "revocations": 0, "rules": 0, "members": 0})
    assert current.missing == {} and current.problem() is None
    behind = apply_documents(store, enrollment, none,
                             ledger_versions={"trust": 4, "revocations": 0, "rules": 1, "members": 7})
    assert set(behind.missing) == {DOC_TRUST, DOC_RULES, DOC_MEMBERS}
    assert "version 4 at the ledger, version 3 here" in behind.missing[DOC_TRUST]
    assert (behind.problem() or "").endswith("this sync does not count for the offline limits")
