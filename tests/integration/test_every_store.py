"""Members at every store (issue 14), end to end: a real ledger process, terminal data dirs of two stores enrolled
with the real CLI, the counter each terminal runs with its online look-up.

A store-2 terminal serves a store-1 member with name, balance, preferences and notes (looked up online, signed and
sealed); once the ledger stops, a member it was never sent takes the unknown-balance path; a member it looked up
before is served from its cache. Refunds and voids anywhere: a sale made at store 1 is refunded at store 2 online,
and refused there offline with the reason.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cardkit.config import SyncSettings
from cardkit.core.money import Money
from cardkit.errors import DomainError
from ledger import admin
from terminal import documents
from terminal.offline.cashiers import Role
from terminal.offline.store import TerminalStore
from terminal.service.counter import Counter
from terminal.service.loader import load_rules, load_verifier
from terminal.sync.lookup import LedgerLookup
from terminal.sync.service import Backoff, SyncService, load_identity_key
from tests.fixtures.sync import SyncWorld, init_world


def M(text: str) -> Money:
    return Money.parse(text, "CNY")


@dataclass
class Till:
    """One enrolled terminal data dir and the counter it runs (with its online look-up), as the app builds it."""

    data_dir: Path
    url: str
    online: list[bool] = field(default_factory=lambda: [True])
    counter: Counter | None = None

    def open(self) -> Counter:
        enrollment = documents.require_enrollment(self.data_dir)
        store = TerminalStore.open(self.data_dir, enrollment.terminal_id)
        lookups = LedgerLookup(self.data_dir, enrollment, load_identity_key(self.data_dir), ledger_url=self.url)
        self.counter = Counter(store, load_verifier(self.data_dir, enrollment, clock_skew_s=300),
                               load_rules(self.data_dir, enrollment), terminal_id=enrollment.terminal_id,
                               online=lambda: self.online[0], lookups=lookups)
        return self.counter

    def sync(self) -> None:
        assert self.counter is not None
        enrollment = documents.require_enrollment(self.data_dir)
        service = SyncService(self.counter.store, enrollment, load_identity_key(self.data_dir),
                              settings=SyncSettings(ledger_url=self.url, interval_s=0.2, timeout_s=5.0),
                              rng=random.Random(0), sleep=lambda s: None, backoff=Backoff(base_s=0.01, cap_s=0.05))
        try:
            report = service.sync_once()
        finally:
            service.client.close()
        assert not report.refused and not report.missing and report.queue_depth == 0, report.to_dict()

    def close(self) -> None:
        if self.counter is not None:
            assert self.counter.lookups is not None
            self.counter.lookups.close()  # type: ignore[attr-defined]
            self.counter.close()


@dataclass
class Program:
    world: SyncWorld
    tills: list[Till] = field(default_factory=list)

    def till(self, name: str, store_id: str) -> Till:
        self.world.open_admin()
        _, code = admin.add_terminal(name, store_id)
        url = self.world.ledger.url
        data_dir = self.world.root / f"till-{name.replace(' ', '-')}"
        data_dir.mkdir()
        done = self.world.cardpos(data_dir, "terminal", "enroll", "--ledger", url, "--code", code)
        assert done.returncode == 0, done.stderr
        till = Till(data_dir, url)
        self.tills.append(till)
        till.open()
        return till


@pytest.fixture
def program(tmp_path: Path) -> Iterator[Program]:
    world = init_world(tmp_path, n_members=2)
    world.server()
    program = Program(world)
    try:
        yield program
    finally:
        for till in program.tills:
            till.close()
        world.stop_all()


def store1_member(world: SyncWorld, name: str, **details: object) -> admin.IssuedCard:
    world.open_admin()
    member_id = admin.add_member(name, store_id="store-1", balance=80_000, points=1_200, **details)  # type: ignore[arg-type]
    return admin.issue_card(member_id)


def supervisor(counter: Counter) -> object:
    counter.store.cashiers.add("s1", "Sue", Role.SUPERVISOR, "4321")
    return counter.authorize_supervisor("s1", "4321")


def test_a_store2_terminal_serves_a_store1_member_then_the_unknown_balance_path(program: Program) -> None:
    world = program.world
    guest = store1_member(world, "Li Wei", phone="13800000001", notes="allergic to nuts; prefers window seat",
                          prefs={"drink": "green tea", "pillow": "firm"})
    stranger = store1_member(world, "Zhang Min", notes="never seen at store 2")
    home = program.till("home till", "store-1")
    away = program.till("away till", "store-2")
    home.sync()
    away.sync()
    assert home.counter is not None and away.counter is not None
    assert home.counter.store.cache.get(guest.member_id) is not None  # the home store pulls its members
    assert away.counter.store.cache.get(guest.member_id) is None  # another store's pulls do not carry them

    started = time.perf_counter()
    tap = away.counter.tap(guest.token)
    looked_up_ms = (time.perf_counter() - started) * 1000
    view = tap.member
    assert view is not None and view.known and view.balance_known and not view.lookup_problem
    assert (view.name, view.balance, view.points) == ("Li Wei", M("800.00"), 1_200)
    assert view.prefs == {"drink": "green tea", "pillow": "firm"}
    assert view.notes == "allergic to nuts; prefers window seat"
    assert view.to_dict()["balance"] == "800.00"
    print(f"member look-up at store 2: {looked_up_ms:.1f} ms")
    # The read of personal data was audited like a pull, naming the terminal.
    world.open_admin()
    lookups = [row for row in admin.audit_log(limit=50) if row["action"] == "member_lookup"]
    assert len(lookups) == 1 and lookups[0]["actor"].startswith("terminal:")

    # Served at store 2 with stored value, online, and the ledger applies it to the member's one balance.
    receipt = away.counter.sale(tap.claims, M("120.00"), tender="sv")
    assert receipt.after is not None and receipt.after.balance == 80_000 - 12_000
    away.sync()
    shown = world.member_show(guest.member_id)
    assert shown["balance"] == 80_000 - 12_000
    # The visitor is now in store 2's regular pulls (recent visitors), with the ledger's figures.
    assert away.counter.store.cache.looked_up_seq(guest.member_id) is None
    assert away.counter.member_view(tap.claims).balance == M("680.00")

    # The ledger stops. The member already served here is served from the cache, as an estimate ...
    world.ledger.stop()
    away.online[0] = False
    again = away.counter.tap(guest.token).member
    assert again is not None and again.known and again.balance == M("680.00") and again.offline_estimate
    # ... and a member this terminal was never sent still verifies, on the unknown-balance path.
    unknown = away.counter.tap(stranger.token)
    assert unknown.accepted and unknown.member is not None
    member = unknown.member
    assert not member.balance_known and member.lookup_problem
    assert member.to_dict()["balance"] is None and member.to_dict()["points"] is None
    for attempt in (lambda: away.counter.sale(unknown.claims, M("10.00"), tender="sv"),
                    lambda: away.counter.sale(unknown.claims, M("10.00"), tender="cash", redeem_points=100),
                    lambda: away.counter.redeem(unknown.claims, 100, "mug")):
        with pytest.raises(DomainError) as caught:
            attempt()
        assert caught.value.code == "unknown_balance" and "balance is not known" in str(caught.value)
    cash = away.counter.sale(unknown.claims, M("50.00"), tender="cash")
    assert cash.entry.payload["pts_earn"] == 50 and cash.entry.payload["offline"] is True

    # Back online, the points earned on the unknown-balance path are credited at the ledger.
    world.server()
    away.online[0] = True
    away.sync()
    assert world.member_show(stranger.member_id)["points"] == 1_200 + 50


def test_refunds_and_voids_anywhere(program: Program) -> None:
    world = program.world
    guest = store1_member(world, "Chen Jie")
    home = program.till("home till", "store-1")
    away = program.till("away till", "store-2")
    home.sync()
    away.sync()
    assert home.counter is not None and away.counter is not None
    claims = home.counter.tap(guest.token).claims
    sale = home.counter.sale(claims, M("200.00"), tender="sv")
    topup = home.counter.topup(claims, M("100.00"), tender="bank_card")
    home.sync()

    boss = supervisor(away.counter)
    # Online at store 2: the original is fetched from the ledger and refunded here, against what is left.
    refund = away.counter.refund(sale.uuid, M("50.00"), supervisor=boss)  # type: ignore[arg-type]
    assert refund.entry.payload["orig"] == sale.uuid and refund.entry.payload["amount"] == 5_000
    away.sync()
    with pytest.raises(DomainError) as caught:
        away.counter.refund(sale.uuid, M("151.00"), supervisor=boss)  # type: ignore[arg-type]
    assert caught.value.code == "refund_exceeds"
    away.counter.void(topup.uuid, supervisor=boss)  # type: ignore[arg-type]
    away.sync()
    shown = world.member_show(guest.member_id)
    assert shown["balance"] == 80_000 - 20_000 + 5_000
    # The ledger's invariants hold with reversals made at another store.
    verified = world.verify()
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # Offline at store 2: only this terminal's originals; another terminal's sale is refused with the reason.
    other = home.counter.sale(claims, M("30.00"), tender="cash")
    home.sync()
    world.ledger.stop()
    away.online[0] = False
    with pytest.raises(DomainError) as caught:
        away.counter.refund(other.uuid, M("10.00"), supervisor=boss)  # type: ignore[arg-type]
    assert caught.value.code == "original_unavailable"
    assert "ledger cannot be reached" in str(caught.value)
    json.dumps(caught.value.params)  # the reason's params are plain values (shown by the app in both languages)


@pytest.mark.parametrize("check", ["test_a_member_is_looked_up_signed_sealed_and_audited",
                                   "test_the_folded_seq_names_the_callers_entries_the_snapshot_counts",
                                   "test_the_original_of_a_sale_and_what_is_left_to_refund",
                                   "test_a_store_pulls_its_members_and_its_recent_visitors"])
def test_the_ledgers_side_on_postgresql(check: str, postgres_url: str, tmp_path: Path) -> None:
    """The look-ups and the store policy's queries (a correlated EXISTS) on PostgreSQL, as on SQLite."""
    import inspect

    from ledger.home import init_ledger
    from tests.unit import test_member_lookup as on_sqlite

    clock = on_sqlite.Clock()
    home = init_ledger(tmp_path / "pg-ledger", db_url=postgres_url, issuer="acme", clock=clock)
    home.randbytes = random.Random(7).randbytes
    try:
        test = getattr(on_sqlite, check)
        test(**{name: {"ledger": home, "clock": clock}[name] for name in inspect.signature(test).parameters})
    finally:
        home.database.close()
