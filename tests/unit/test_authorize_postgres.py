"""The authorization decision on PostgreSQL reads everything in one statement and writes in one more (issue 14):
the same sequence of requests gets the same answers and leaves the same hold states on SQLite and on PostgreSQL,
and on PostgreSQL a decision is two round trips to the server (a replay too), counted on the real connection."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import psycopg2.extensions
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.authorization import AUTH_FIELD, AuthorizationRequest, request_digest
from ledger import admin, authorize, events, store
from ledger.home import Ledger, init_ledger
from tests.fixtures.ledger import InProcessTill as Till
from tests.fixtures.ledger import ManualClock as Clock
from tests.fixtures.ledger import enroll_in_process, sale

T0_MS = 1_790_000_000_000
TTL_MS = 60_000


def open_ledger(tmp_path: Path, db_url: str | None, clock: Clock) -> Ledger:
    home = init_ledger(tmp_path / "ledger", db_url, issuer="acme", clock=clock)
    home.randbytes = random.Random(14).randbytes
    authorize.open_holds()
    authorize.install()
    return home


def close_ledger(home: Ledger) -> None:
    events.unsubscribe(authorize._on_event)
    home.database.close()


def ask(member: str, clock: Clock, *, sv: int = 0, points: int = 0, coupons: tuple[str, ...] = (),
        entry_uuid: str | None = None, terminal_id: str = "t1") -> authorize.Outcome:
    req = AuthorizationRequest(entry_uuid=entry_uuid or str(uuid.uuid4()), member_id=member, card_id="card",
                               currency="CNY", sv=sv, points=points, coupons=coupons, nonce=b"n" * 16)
    return authorize.authorize(req, request_digest(req.body()), terminal_id=terminal_id, now_ms=clock.now_ms,
                               ttl_ms=TTL_MS)


def uuid_of(n: int) -> str:
    return str(uuid.UUID(int=n))


def story(home: Ledger, clock: Clock) -> list[tuple[str, ...]]:
    """A sequence touching every branch of the decision; what each step answered and the holds' states after."""
    member = admin.add_member("Holder", balance=1_000, points=50)
    coupon = admin.issue_coupon(member, amount_off=100)
    other = admin.add_member("Other", balance=10)
    foreign = admin.issue_coupon(other, amount_off=5)
    _, code = admin.add_terminal("till", "store-1")
    key = Ed25519PrivateKey.generate()
    body = enroll_in_process(home, code, key)
    till = Till(home, body["terminal_id"], key, bytes.fromhex(body["ledger_hpke_public_key"]))
    seen: list[tuple[str, ...]] = []

    def note(step: str, outcome: authorize.Outcome) -> None:
        answer = outcome.answer
        seen.append((step, str(answer.approved), answer.reason, str(outcome.replayed)))

    note("first", ask(member, clock, sv=600, entry_uuid=uuid_of(1)))  # InProcessTill's first entry uuid
    note("retry", ask(member, clock, sv=600, entry_uuid=uuid_of(1)))
    with pytest.raises(authorize.AuthorizationConflict):
        ask(member, clock, sv=5, entry_uuid=uuid_of(1))
    with pytest.raises(authorize.AuthorizationConflict):
        ask(member, clock, sv=600, entry_uuid=uuid_of(1), terminal_id="t2")
    note("over", ask(member, clock, sv=401, entry_uuid=uuid_of(100)))
    note("points", ask(member, clock, points=51, entry_uuid=uuid_of(101)))
    note("nobody", ask("nobody", clock, sv=1, entry_uuid=uuid_of(102)))
    note("foreign coupon", ask(member, clock, coupons=(foreign,), entry_uuid=uuid_of(103)))
    note("coupon", ask(member, clock, coupons=(coupon,), entry_uuid=uuid_of(104)))
    note("coupon again", ask(member, clock, coupons=(coupon,), entry_uuid=uuid_of(105)))
    till.append("sale", {**sale(member, 600), AUTH_FIELD: "0" * 16})
    till.append("sale", sale(member, 0, pts_earn=1))  # uuid_of(2), never authorized
    events.unsubscribe(authorize._on_event)  # applied by "another process": the decision must see it applied
    till.ingest(1, 2)
    authorize.install()
    note("after apply", ask(member, clock, sv=400, entry_uuid=uuid_of(106)))  # 1000 − 600 applied, not twice
    note("late duplicate", ask(member, clock, sv=600, entry_uuid=uuid_of(1)))
    note("recorded", ask(member, clock, points=1, entry_uuid=uuid_of(2)))
    clock.now_ms += TTL_MS
    note("after expiry", ask(member, clock, sv=400, coupons=(coupon,), entry_uuid=uuid_of(108)))
    for row in authorize.Authorization.select().order_by(authorize.Authorization.entry_uuid):
        seen.append(("state", str(row.entry_uuid), str(row.state), str(row.closed_ms)))
    return seen


@pytest.mark.postgres
def test_postgresql_answers_exactly_as_sqlite(tmp_path: Path, postgres_url: str) -> None:
    answers = []
    for name, db_url in (("sqlite", None), ("postgres", postgres_url)):
        clock = Clock()
        home = open_ledger(tmp_path / name, db_url, clock)
        try:
            answers.append(story(home, clock))
        finally:
            close_ledger(home)
    assert answers[0] == answers[1]
    steps = {row[0]: row[1:] for row in answers[0] if row[0] != "state"}
    assert steps["retry"] == ("True", "", "True") and steps["over"] == ("False", "insufficient_balance", "False")
    assert steps["coupon again"][1] == "coupon_held" and steps["after apply"][0] == "True"
    assert steps["recorded"][1] == "already_recorded" and steps["after expiry"][0] == "True"
    states = {row[1]: row[2] for row in answers[1] if row[0] == "state"}
    assert (states[uuid_of(1)], states[uuid_of(104)], states[uuid_of(106)]) == ("settled", "expired", "expired")


class CountingCursor(psycopg2.extensions.cursor):
    """Counts every query string sent (each one round trip to the server)."""

    sent: ClassVar[list[str]] = []

    def execute(self, query: Any, vars: Any = None) -> None:
        CountingCursor.sent.append(str(query))
        super().execute(query, vars)


@pytest.fixture
def pg_ledger(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Ledger, Clock]]:
    clock = Clock()
    home = open_ledger(tmp_path, postgres_url, clock)
    yield home, clock
    close_ledger(home)


@pytest.mark.postgres
def test_a_decision_on_postgresql_is_two_round_trips(pg_ledger: tuple[Ledger, Clock]) -> None:
    _, clock = pg_ledger
    member = admin.add_member("Holder", balance=1_000, points=50)
    coupon = admin.issue_coupon(member, amount_off=100)
    ask(member, clock, sv=10)  # connects
    connection = store.db.obj.connection()
    connection.cursor_factory = CountingCursor
    try:
        for kwargs in ({"sv": 100}, {"sv": 5_000}, {"coupons": (coupon,)}, {"points": 1}):
            CountingCursor.sent.clear()
            ask(member, clock, **kwargs)
            assert len(CountingCursor.sent) == 2, CountingCursor.sent
        held = ask(member, clock, sv=1)
        clock.now_ms += TTL_MS  # every hold expires: closing them rides on the insert's round trip
        CountingCursor.sent.clear()
        assert ask(member, clock, sv=1_000).answer.approved
        assert len(CountingCursor.sent) == 2
        CountingCursor.sent.clear()
        assert ask(member, clock, sv=1, entry_uuid=held.answer.entry_uuid).replayed
        assert len(CountingCursor.sent) == 2
    finally:
        connection.cursor_factory = psycopg2.extensions.cursor
