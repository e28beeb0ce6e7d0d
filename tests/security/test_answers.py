"""The terminal believes only the ledger: forged acks, replayed pulls and rolled-back revocations are refused.

A real ``cardpos ledger serve`` process, terminal data dirs enrolled with the real CLI, the sync service in-process
on the terminal's real SQLite files, and a man in the middle on 127.0.0.1 (``tests/fixtures/answer_proxy.py``)
that forges, alters and replays the ledger's answers as a network attacker would (issue 13: "Unauthenticated
acknowledgements", "Rolled-back revocations", "a captured pull can be replayed").
"""

from __future__ import annotations

import base64
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cardkit import wire
from cardkit.cards.revocation import RevocationList, load_revocation_delta
from cardkit.cards.verdict import RejectReason
from cardkit.enrollment import decode_answer
from cardkit.errors import SyncError
from ledger import admin
from terminal import documents
from terminal.documents import REVOCATIONS_FILE
from terminal.offline.store import TerminalStore
from terminal.service.figures import MemberFigures
from terminal.service.loader import load_verifier
from tests.fixtures.answer_proxy import AnswerProxy, Intercepted, answer_json, http_answer, with_header, with_json
from tests.fixtures.sync import SyncWorld, init_world
from tests.integration.test_sync_ledger import make_service, open_terminal, sale

ProxyFactory = Callable[[tuple[str, int]], AnswerProxy]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncWorld]:
    """One ledger for the module; each test enrolls its own terminal behind its own proxy and uses its own member."""
    world = init_world(tmp_path_factory.mktemp("answers"), n_members=6)
    world.server()
    try:
        yield world
    finally:
        world.stop_all()


def enroll_behind_proxy(world: SyncWorld, factory: ProxyFactory, name: str) -> tuple[AnswerProxy, Path]:
    proxy = factory(("127.0.0.1", world.ledger.port))
    _terminal_id, data_dir = world.enroll(name, proxy.url)
    return proxy, data_dir


def counter_balance(store: TerminalStore, member_id: str) -> int:
    """The member's stored value as the counter shows it: the ledger's snapshot with unsent entries folded on."""
    fold, _cached = MemberFigures(store).fold(member_id, currency="CNY")
    return fold.state.balance


def attempt(sync: Callable[[], object]) -> SyncError | None:
    try:
        sync()
    except SyncError as exc:
        return exc
    return None


def verdict_of(data_dir: Path, token: bytes) -> RejectReason | None:
    """What the terminal's card check says about ``token`` now (None: accepted)."""
    verifier = load_verifier(data_dir, documents.require_enrollment(data_dir), clock_skew_s=300)
    return verifier.verify(token, int(time.time())).reason


def test_a_forged_ack_marks_nothing_synced_and_the_counter_keeps_counting_unsent_spends(
        world: SyncWorld, answer_proxy_factory: ProxyFactory) -> None:
    proxy, data_dir = enroll_behind_proxy(world, answer_proxy_factory, "forged ack till")
    member = "M000"
    card = world.members[member]
    opening = world.opening[member][0]
    with open_terminal(data_dir) as store:
        service = make_service(store, url=proxy.url)
        service.sync_once()  # the member snapshot arrives; the attacker records this pull answer
        captured_pull = proxy.last("GET", wire.PULL_PATH).answer
        assert captured_pull is not None
        for amount in (10_000, 15_000):  # two stored-value spends the ledger has not seen yet
            store.journal.append("sale", sale(member, card, amount), cashier_id="c1")
        assert counter_balance(store, member) == opening - 25_000

        def forge(request: Intercepted) -> bytes | None:
            if request.path.startswith(wire.BATCHES_PATH):  # never reaches the ledger: "acked" by the attacker
                return http_answer(200, {"acked_seq": 2, "applied": 2, "duplicates": 0})
            if request.path.startswith(wire.PULL_PATH):  # the same snapshot version again, as captured
                return captured_pull
            return None

        proxy.intercept = forge
        refused = attempt(service.sync_once)
        assert store.journal.synced_seq == 0 and store.journal.queue_depth == 2
        assert counter_balance(store, member) == opening - 25_000  # the unsent spends still count
        assert refused is not None and "not signed by the ledger" in str(refused)
        assert service.status.last_error == str(refused)

        proxy.intercept = None  # the network heals: the spends reach the ledger once
        report = service.sync_once()
        assert (report.acked_seq, report.applied) == (2, 2) and store.journal.queue_depth == 0
        assert counter_balance(store, member) == opening - 25_000
    world.open_admin()
    assert admin.member_view(member, history=0)["balance"] == opening - 25_000


def test_an_ack_signed_for_another_nonce_marks_nothing_synced(world: SyncWorld,
                                                               answer_proxy_factory: ProxyFactory) -> None:
    proxy, data_dir = enroll_behind_proxy(world, answer_proxy_factory, "other nonce till")
    member = "M001"
    card = world.members[member]
    opening = world.opening[member][0]

    def swap_nonce(request: Intercepted) -> bytes | None:
        # The attacker forwards the terminal's real batch under its own nonce: the ledger applies it and signs
        # a genuine ack -- for the attacker's nonce, which the terminal never chose.
        if request.path.startswith(wire.BATCHES_PATH):
            return request.forward(head=with_header(request.head, wire.NONCE_HEADER, "ab" * 16))
        return None

    with open_terminal(data_dir) as store:
        service = make_service(store, url=proxy.url)
        store.journal.append("sale", sale(member, card, 7_000), cashier_id="c1")
        proxy.intercept = swap_nonce
        refused = attempt(service.sync_once)
        assert store.journal.synced_seq == 0 and store.journal.queue_depth == 1
        assert refused is not None and "not signed by the ledger for this request" in str(refused)
        forwarded = answer_json(proxy.last("POST", wire.BATCHES_PATH).answer or b"")
        assert forwarded["acked_seq"] == 1 and len(forwarded["signature"]) == 128  # a real ack, other nonce

        proxy.intercept = None
        report = service.sync_once()  # the same entry again: a duplicate at the ledger, now acked for our nonce
        assert (report.acked_seq, report.applied, report.duplicates) == (1, 0, 1)
        assert store.journal.queue_depth == 0
    world.open_admin()
    assert admin.member_view(member, history=0)["balance"] == opening - 7_000  # applied once


def test_a_replayed_pull_answer_is_refused_and_does_not_count_as_a_sync(world: SyncWorld,
                                                                         answer_proxy_factory: ProxyFactory) -> None:
    proxy, data_dir = enroll_behind_proxy(world, answer_proxy_factory, "replayed pull till")
    world.open_admin()
    stolen = admin.issue_card("M002")
    with open_terminal(data_dir) as store:
        service = make_service(store, url=proxy.url)
        service.sync_once()
        captured = proxy.last("GET", wire.PULL_PATH).answer
        assert captured is not None
        synced_at = store.sync_state.last_sync_ms
        world.open_admin()
        admin.revoke_card(stolen.card_id, "stolen")
        time.sleep(0.01)  # the replay would be recorded with a later time

        proxy.intercept = lambda request: captured if request.path.startswith(wire.PULL_PATH) else None
        refused = attempt(service.sync_once)
        assert store.sync_state.last_sync_ms == synced_at  # the replay did not pass for a fresh sync
        assert refused is not None and "pull answer is not signed by the ledger for this request" in str(refused)
        assert verdict_of(data_dir, stolen.token) is None  # the terminal has not heard of the revocation yet

        proxy.intercept = None
        service.sync_once()
        assert verdict_of(data_dir, stolen.token) is RejectReason.REVOKED


def test_a_replayed_enrollment_revocation_delta_does_not_unrevoke_a_stolen_card(
        world: SyncWorld, answer_proxy_factory: ProxyFactory) -> None:
    proxy, data_dir = enroll_behind_proxy(world, answer_proxy_factory, "rollback till")
    # The enrollment answer is CBOR authenticated by the code (cardkit.enrollment); the attacker on the wire reads it.
    sealed_answer = answer_json(proxy.last("POST", wire.ENROLL_PATH).answer or b"")["answer"]
    enrolled = decode_answer(base64.b64decode(sealed_answer))
    enrollment_delta = base64.b64encode(enrolled.revocations).decode()  # genuine, root-signed, from version 0
    assert load_revocation_delta(enrolled.revocations, enrolled.root_key).from_version == 0
    world.open_admin()
    stolen = admin.issue_card("M003")
    admin.revoke_card(stolen.card_id, "stolen")
    with open_terminal(data_dir) as store:
        service = make_service(store, url=proxy.url)
        service.sync_once()
        assert verdict_of(data_dir, stolen.token) is RejectReason.REVOKED

        def roll_back(request: Intercepted) -> bytes | None:
            # The attacker slips the enrollment-time delta (from version 0) into the ledger's real answer.
            if not request.path.startswith(wire.PULL_PATH):
                return None
            real = request.forward()
            return with_json(real, {**answer_json(real), "revocations": enrollment_delta})

        proxy.intercept = roll_back
        refused = attempt(service.sync_once)
        assert verdict_of(data_dir, stolen.token) is RejectReason.REVOKED
        assert refused is not None and "not signed by the ledger" in str(refused)


class Recorded(logging.Handler):
    """The sync log's records, taken at its own logger (other tests may stop ``cardpos`` propagating to root)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_an_older_revocation_list_from_a_restored_ledger_is_refused_and_reported(sync_world: SyncWorld) -> None:
    """Even the ledger itself, restored from a backup, cannot move a terminal back to an older revocation list."""
    ledger = sync_world.server()
    _tid, data_dir = sync_world.enroll("restored till", ledger.url)
    sync_world.open_admin()
    stolen = admin.issue_card("M004")
    backup = sync_world.root / "ledger-backup"
    ledger.stop()
    shutil.copytree(sync_world.ledger_dir, backup)  # before the card was revoked
    ledger.start()
    sync_world.open_admin()
    version = admin.revoke_card(stolen.card_id, "stolen")
    with open_terminal(data_dir) as store:
        service = make_service(store)
        service.sync_once()
        assert verdict_of(data_dir, stolen.token) is RejectReason.REVOKED
        ledger.stop()
        shutil.rmtree(sync_world.ledger_dir)
        shutil.copytree(backup, sync_world.ledger_dir)
        ledger.start()
        recorded = Recorded()
        sync_log = logging.getLogger("cardpos.sync")
        sync_log.addHandler(recorded)
        level = sync_log.level
        sync_log.setLevel(logging.WARNING)
        try:
            report = service.sync_once()  # the ledger now sends its list from version 0, as it was at the backup
        finally:
            sync_log.removeHandler(recorded)
            sync_log.setLevel(level)
        held = RevocationList.from_bytes(documents.load_document(data_dir, REVOCATIONS_FILE) or b"")
        assert held.version == version and held.reason(stolen.card_id) == "stolen"
        assert verdict_of(data_dir, stolen.token) is RejectReason.REVOKED
        assert "older than version" in report.refused["revocations"]  # the sync report
        assert "revocations" in service.status.documents_refused  # the technician screen's status
        assert "older than version" in (service.status.last_error or "")
        assert "pulled document refused" in recorded.messages  # the log line
        # Refused, not missing: the terminal keeps a newer list than the ledger's, so the sync still counts.
        assert not report.missing and store.sync_state.last_sync_ms is not None
