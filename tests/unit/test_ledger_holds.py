"""The ledger's authorization holds in-process, on real SQLite files with a pinned clock: the state machine
(held → settled | expired | released, declined kept), idempotent retries, and settlement by the synced entry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.authorization import AUTH_FIELD, AuthorizationRequest, request_digest
from ledger import admin, authorize
from ledger.home import Ledger
from tests.fixtures.ledger import InProcessTill as Till
from tests.fixtures.ledger import ManualClock as Clock
from tests.fixtures.ledger import enroll_in_process, in_process_ledger, sale

T0_MS = 1_790_000_000_000


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    with in_process_ledger(tmp_path / "ledger", clock, seed=14, holds=True) as home:
        yield home


@pytest.fixture
def member(ledger: Ledger) -> str:
    return admin.add_member("Holder", balance=1_000, points=50)


def ask(member: str, clock: Clock, sv: int = 0, points: int = 0, coupons: tuple[str, ...] = (),
        entry_uuid: str | None = None) -> authorize.Outcome:
    req = AuthorizationRequest(entry_uuid=entry_uuid or str(uuid.uuid4()), member_id=member, card_id="card",
                               currency="CNY", sv=sv, points=points, coupons=coupons, nonce=b"n" * 16)
    return authorize.authorize(req, request_digest(req.body()), terminal_id="t1", now_ms=clock.now_ms)


def state_of(entry_uuid: str) -> str:
    return str(authorize.Authorization.get_by_id(entry_uuid).state)


def test_the_holds_live_in_their_own_file_next_to_the_ledger(ledger: Ledger) -> None:
    path = authorize.holds_path()
    assert path is not None and path.parent == (ledger.ledger_dir / "ledger.sqlite3").parent and path.exists()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_retry_replays_and_never_holds_twice(member: str, clock: Clock) -> None:
    first = ask(member, clock, sv=700, entry_uuid="00000000-0000-4000-8000-000000000001")
    again = ask(member, clock, sv=700, entry_uuid="00000000-0000-4000-8000-000000000001")
    assert first.answer.approved and again.replayed and again.answer == first.answer
    assert ask(member, clock, sv=300).answer.approved
    assert ask(member, clock, sv=1).answer.reason == "insufficient_balance"
    with pytest.raises(authorize.AuthorizationConflict):
        ask(member, clock, sv=5, entry_uuid="00000000-0000-4000-8000-000000000001")


def test_declines_are_recorded_and_replayed(member: str, clock: Clock) -> None:
    declined = ask(member, clock, points=51, entry_uuid="00000000-0000-4000-8000-000000000002")
    assert (declined.answer.approved, declined.answer.reason) == (False, "insufficient_points")
    assert state_of("00000000-0000-4000-8000-000000000002") == "declined"
    assert ask(member, clock, points=51, entry_uuid="00000000-0000-4000-8000-000000000002").answer == declined.answer
    assert ask("nobody", clock, sv=1).answer.reason == "unknown_member"


def test_an_unfollowed_hold_expires_and_releases_its_amount(member: str, clock: Clock) -> None:
    held = ask(member, clock, sv=1_000)
    assert held.answer.approved and ask(member, clock, sv=1).answer.reason == "insufficient_balance"
    clock.now_ms += authorize.DEFAULT_HOLD_TTL_MS
    assert ask(member, clock, sv=1_000).answer.approved  # the first hold expired at this decision
    assert state_of(held.answer.entry_uuid) == "expired"
    clock.now_ms += authorize.DEFAULT_HOLD_TTL_MS
    assert authorize.sweep(clock.now_ms) == {"settled": 0, "expired": 1}


def test_a_released_hold_no_longer_counts(member: str, clock: Clock) -> None:
    held = ask(member, clock, sv=1_000, coupons=())
    assert authorize.release(held.answer.entry_uuid, clock.now_ms)
    assert state_of(held.answer.entry_uuid) == "released"
    assert not authorize.release(held.answer.entry_uuid, clock.now_ms)
    assert ask(member, clock, sv=1_000).answer.approved


def test_the_synced_entry_settles_its_hold_and_is_counted_once(ledger: Ledger, member: str, clock: Clock) -> None:
    _, code = admin.add_terminal("till", "store-1")
    key = Ed25519PrivateKey.generate()
    body = enroll_in_process(ledger, code, key)
    till = Till(ledger, body["terminal_id"], key, bytes.fromhex(body["ledger_hpke_public_key"]))
    entry_uuid = str(uuid.UUID(int=1))  # the uuid InProcessTill gives its first entry
    held = ask(member, clock, sv=600, entry_uuid=entry_uuid)
    entry = till.append("sale", {**sale(member, 600), AUTH_FIELD: held.answer.auth_id})
    assert entry.uuid == entry_uuid
    till.ingest(1, 1)
    assert state_of(entry_uuid) == "settled"  # by the BatchApplied observer
    assert ask(member, clock, sv=400).answer.approved  # 1000 − 600 applied, the hold no longer counted
    assert ask(member, clock, sv=1).answer.reason == "insufficient_balance"
    assert ask(member, clock, sv=600, entry_uuid=entry_uuid).replayed  # a late duplicate of the request
    assert ask(member, clock, sv=5, entry_uuid=str(uuid.uuid4())).answer.approved is False
