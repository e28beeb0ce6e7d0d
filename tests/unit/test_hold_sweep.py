"""Held authorizations as the clock and the admins see them (``ledger.holds``), in-process on real SQLite files
(and the sweep on PostgreSQL) with a pinned clock: the sweep expires what is past its time and audits each
expiry, settles what is applied without an audit line; an admin's release is audited and refused, with the
reason, for a hold that holds nothing; the list filters; the interval jobs run on time and one that fails does not
stop the others."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.authorization import AUTH_FIELD, AuthorizationRequest, request_digest
from ledger import admin, authorize, events, holds, periodic
from ledger.home import Ledger, init_ledger
from tests.fixtures.ledger import InProcessTill as Till
from tests.fixtures.ledger import ManualClock as Clock
from tests.fixtures.ledger import enroll_in_process, in_process_ledger, sale

T0_MS = 1_790_000_000_000
TTL_MS = 60_000


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    db_url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    with in_process_ledger(tmp_path / "ledger", clock, seed=14, db_url=db_url, holds=True) as home:
        yield home


@pytest.fixture
def member(ledger: Ledger) -> str:
    return admin.add_member("Holder", balance=1_000, points=50)


def ask(member: str, clock: Clock, sv: int = 0, points: int = 0, entry_uuid: str | None = None) -> authorize.Outcome:
    req = AuthorizationRequest(entry_uuid=entry_uuid or str(uuid.uuid4()), member_id=member, card_id="card",
                               currency="CNY", sv=sv, points=points, coupons=(), nonce=b"n" * 16)
    return authorize.authorize(req, request_digest(req.body()), terminal_id="t1", now_ms=clock.now_ms, ttl_ms=TTL_MS)


def state_of(entry_uuid: str) -> str:
    return str(authorize.Authorization.get_by_id(entry_uuid).state)


def audit(action: str) -> list[dict[str, object]]:
    return [row for row in admin.audit_log(limit=500) if row["action"] == action]


def test_the_sweep_expires_what_is_past_its_time_and_audits_each(member: str, clock: Clock) -> None:
    early = ask(member, clock, sv=400)
    clock.now_ms += 10_000
    late = ask(member, clock, sv=300, points=20)
    assert ask(member, clock, sv=301).answer.reason == "insufficient_balance"
    clock.now_ms = T0_MS + TTL_MS  # the first is due, the second not yet
    report = holds.sweep(clock.now_ms)
    assert report.expired == [early.answer.auth_id] and not report.skipped
    assert (state_of(early.answer.entry_uuid), state_of(late.answer.entry_uuid)) == ("expired", "held")
    (line,) = audit("hold_expire")
    assert (line["actor"], line["subject"]) == ("hold-sweep", early.answer.auth_id)
    details = line["details"]
    assert isinstance(details, dict)
    assert (details["member"], details["sv"], details["entry"]) == (member, 400, early.answer.entry_uuid)
    assert holds.sweep(clock.now_ms).expired == []  # nothing twice
    clock.now_ms += 10_000
    assert holds.sweep(clock.now_ms).expired == [late.answer.auth_id]
    assert len(audit("hold_expire")) == 2
    assert ask(member, clock, sv=1_000, points=50).answer.approved  # all available again


def test_the_sweep_settles_an_applied_hold_without_an_audit_line(ledger: Ledger, member: str, clock: Clock) -> None:
    _, code = admin.add_terminal("till", "store-1")
    key = Ed25519PrivateKey.generate()
    body = enroll_in_process(ledger, code, key)
    till = Till(ledger, body["terminal_id"], key, bytes.fromhex(body["ledger_hpke_public_key"]))
    entry_uuid = str(uuid.UUID(int=1))  # the uuid InProcessTill gives its first entry
    held = ask(member, clock, sv=600, entry_uuid=entry_uuid)
    events.unsubscribe(authorize._on_event)  # as if the batch was applied by another process: not marked yet
    till.append("sale", {**sale(member, 600), AUTH_FIELD: held.answer.auth_id})
    till.ingest(1, 1)
    assert state_of(entry_uuid) == "held"
    clock.now_ms += TTL_MS  # past its expiry too: settled wins, it is applied
    report = holds.sweep(clock.now_ms)
    assert (report.settled, report.expired) == (1, [])
    assert state_of(entry_uuid) == "settled" and audit("hold_expire") == []


def test_an_admin_release_is_audited_and_refused_when_nothing_is_held(member: str, clock: Clock) -> None:
    held = ask(member, clock, sv=1_000)
    assert ask(member, clock, sv=1).answer.reason == "insufficient_balance"
    with pytest.raises(holds.HoldRefused, match="--reason must say why"):
        holds.release(held.answer.auth_id, reason="   ", actor="ops", now_ms=clock.now_ms)
    with pytest.raises(holds.HoldRefused, match="at most 200 characters"):
        holds.release(held.answer.auth_id, reason="x" * 201, actor="ops", now_ms=clock.now_ms)
    released = holds.release(held.answer.auth_id, reason="till broke  before printing", actor="ops",
                             now_ms=clock.now_ms)
    assert (released["state"], released["member"], released["sv"]) == ("released", member, 1_000)
    (line,) = audit("hold_release")
    assert (line["actor"], line["subject"]) == ("ops", held.answer.auth_id)
    assert isinstance(line["details"], dict) and line["details"]["reason"] == "till broke before printing"
    assert ask(member, clock, sv=1_000).answer.approved  # available again at once

    with pytest.raises(holds.HoldRefused, match="was already released at "):
        holds.release(held.answer.entry_uuid, reason="again", actor="ops", now_ms=clock.now_ms)
    declined = ask(member, clock, sv=5)
    with pytest.raises(holds.HoldRefused, match="was declined; it never held anything"):
        holds.release(declined.answer.auth_id, reason="why not", actor="ops", now_ms=clock.now_ms)
    with pytest.raises(holds.HoldRefused, match="no authorization 'feedfacefeedface'"):
        holds.release("feedfacefeedface", reason="typo", actor="ops", now_ms=clock.now_ms)
    clock.now_ms += TTL_MS
    expiring = ask(member, clock, points=10)
    clock.now_ms += TTL_MS
    holds.sweep(clock.now_ms)
    with pytest.raises(holds.HoldRefused, match="already expired at "):
        holds.release(expiring.answer.auth_id, reason="late", actor="ops", now_ms=clock.now_ms)
    assert len(audit("hold_release")) == 1, "a refused release leaves no audit line"


def test_a_hold_whose_operation_is_applied_is_refused_as_settled(ledger: Ledger, member: str, clock: Clock) -> None:
    _, code = admin.add_terminal("till", "store-1")
    key = Ed25519PrivateKey.generate()
    body = enroll_in_process(ledger, code, key)
    till = Till(ledger, body["terminal_id"], key, bytes.fromhex(body["ledger_hpke_public_key"]))
    held = ask(member, clock, sv=600, entry_uuid=str(uuid.UUID(int=1)))
    events.unsubscribe(authorize._on_event)  # applied, not yet marked settled
    till.append("sale", {**sale(member, 600), AUTH_FIELD: held.answer.auth_id})
    till.ingest(1, 1)
    with pytest.raises(holds.HoldRefused, match="is already settled: its operation is applied"):
        holds.release(held.answer.auth_id, reason="mistake", actor="ops", now_ms=clock.now_ms)
    assert state_of(held.answer.entry_uuid) == "held" and audit("hold_release") == []


def test_the_list_filters_by_member_state_and_terminal(ledger: Ledger, member: str, clock: Clock) -> None:
    other = admin.add_member("Other", balance=500)
    a = ask(member, clock, sv=100)
    clock.now_ms += 1
    b = ask(other, clock, sv=600)  # declined
    clock.now_ms += 1
    c = ask(other, clock, sv=200)
    every = holds.list_holds(now_ms=clock.now_ms)
    assert [r["auth_id"] for r in every] == [c.answer.auth_id, b.answer.auth_id, a.answer.auth_id]
    assert every[0]["sv_text"] == "2.00" and every[0]["currency"] == "CNY"
    assert [r["auth_id"] for r in holds.list_holds(member=other, state="held", now_ms=clock.now_ms)] == [
        c.answer.auth_id]
    assert [r["state"] for r in holds.list_holds(member=other, now_ms=clock.now_ms)] == ["held", "declined"]
    assert holds.list_holds(terminal="elsewhere", now_ms=clock.now_ms) == []
    assert holds.list_holds(now_ms=clock.now_ms + TTL_MS)[0]["past_expiry"] is True
    with pytest.raises(holds.HoldRefused, match="--state is one of"):
        holds.list_holds(state="gone", now_ms=clock.now_ms)


def test_the_sweep_is_an_interval_job_and_a_failing_job_stops_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[tuple[str, int]] = []

    def broken(now_ms: int) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(periodic, "_jobs", {})
    monkeypatch.setenv(holds.SWEEP_ENV, "5")
    monkeypatch.setenv(holds.TTL_ENV, "not a number")
    settings = holds.install()
    assert (settings.sweep_s, settings.ttl_s) == (5, authorize.DEFAULT_HOLD_TTL_MS // 1000)
    assert periodic.registered() == [holds.SWEEP_JOB]
    periodic.register(holds.SWEEP_JOB, 5, lambda now: ran.append(("sweep", now)))  # the same slot, observed
    periodic.register("broken", 1, broken)
    periodic.register("other", 2, lambda now: ran.append(("other", now)))
    assert periodic.run_due(T0_MS) == [holds.SWEEP_JOB, "other"]  # "broken" raised: logged, the rest ran
    assert periodic.run_due(T0_MS + 1_000) == []
    assert periodic.run_due(T0_MS + 2_000) == ["other"]
    assert periodic.run_due(T0_MS + 5_000) == [holds.SWEEP_JOB, "other"]
    monkeypatch.setenv(holds.TTL_ENV, "0")
    assert holds.settings_from_env().ttl_s == 1, "brought within range"


@pytest.mark.postgres
def test_on_postgresql_one_worker_sweeps_at_a_time(postgres_url: str, tmp_path: Path, clock: Clock) -> None:
    """Another worker process holding the sweep's lock: this one skips the round, expiring and auditing nothing;
    the next round, with the lock free, does it once."""
    import psycopg2

    home = init_ledger(tmp_path / "ledger", postgres_url, issuer="acme", clock=clock)
    authorize.open_holds()
    try:
        member = admin.add_member("Holder", balance=1_000)
        held = ask(member, clock, sv=500)
        clock.now_ms += TTL_MS
        other = psycopg2.connect(postgres_url)
        try:
            with other.cursor() as cursor:  # a transaction of the other worker's sweep, still open
                cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", (holds.PG_SWEEP_LOCK,))
                assert cursor.fetchone() == (True,)
            assert holds.sweep(clock.now_ms).skipped
            assert state_of(held.answer.entry_uuid) == "held" and audit("hold_expire") == []
        finally:
            other.rollback()
            other.close()
        assert holds.sweep(clock.now_ms).expired == [held.answer.auth_id]
        assert len(audit("hold_expire")) == 1
    finally:
        home.database.close()
