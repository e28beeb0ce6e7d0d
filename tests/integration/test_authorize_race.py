"""Online authorization races: two terminals online against one ledger spend the same member at the same moment.

Real parts throughout: the ledger is a ``cardpos ledger serve`` process (SQLite; PostgreSQL with two worker
processes), the terminals are enrolled with the real CLI and work through the same counter the app and
``cardpos terminal op`` use, each in its own thread. In every round both terminals pay at once; together the
rounds ask for more than the member has. The ledger must approve no more than the balance (zero overdrafts), every
refusal must carry the ledger's reason, and after both terminals sync the ledger's balance is the opening balance
less exactly the approved payments, and ``ledger verify`` passes. The same for single-use coupons: each used once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cardkit.config import Settings
from cardkit.core.money import Money
from cardkit.errors import DomainError
from ledger import admin
from terminal.service.authorization import AUTH_FIELD
from terminal.service.counter import Counter
from terminal.service.loader import open_counter
from tests.fixtures.sync import SyncWorld, init_world

MEMBER = "M000"
OPENING = 50_000  # init_world: member 0 opens with 500.00
PAYMENT = 150
ROUNDS = 200  # 400 payments of 1.50 ask for 600.00 of a 500.00 balance
COUPONS = 12


@dataclass
class Till:
    counter: Counter
    data_dir: Path
    receipts: list[Any] = field(default_factory=list)
    declines: list[DomainError] = field(default_factory=list)


@dataclass
class RaceWorld:
    world: SyncWorld
    token: bytes
    tills: list[Till]

    def close(self) -> None:
        for till in self.tills:
            till.counter.close()
        self.world.stop_all()


def open_till(data_dir: Path, timeout_s: float) -> Counter:
    settings = Settings(data_dir=data_dir)
    settings.sync.authorize_timeout_s = timeout_s
    return open_counter(settings)


def race_world(root: Path, *, db_url: str | None = None, workers: int = 1, coupons: int = 0,
               timeout_s: float = 20.0) -> tuple[RaceWorld, list[str]]:
    world = init_world(root, n_members=1, db_url=db_url, workers=workers)
    tills: list[Till] = []
    try:
        token = admin.issue_card(MEMBER).token
        coupon_ids = [admin.issue_coupon(MEMBER, amount_off=100) for _ in range(coupons)]
        server = world.server()
        for name in ("till-a", "till-b"):
            _, data_dir = world.enroll(name, server.url)
            done = world.cardpos(data_dir, "terminal", "sync", "--once")
            assert done.returncode == 0, done.stderr
            tills.append(Till(open_till(data_dir, timeout_s), data_dir))
    except BaseException:
        RaceWorld(world, b"", tills).close()  # no ledger process outlives a failed setup
        raise
    return RaceWorld(world, token, tills), coupon_ids


def run_rounds(race: RaceWorld, rounds: int, pay: Callable[[Till, int], Any]) -> None:
    """Each round, both tills pay at the same moment (a barrier); receipts and declines are kept per till."""
    barrier = threading.Barrier(len(race.tills))
    errors: list[BaseException] = []

    def work(till: Till) -> None:
        try:
            for i in range(rounds):
                barrier.wait(timeout=60)
                try:
                    till.receipts.append(pay(till, i))
                except DomainError as exc:
                    till.declines.append(exc)
        except BaseException as exc:  # surfaced below with the till's name
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(till,)) for till in race.tills]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert not errors, errors


def sync_all(race: RaceWorld) -> None:
    for till in race.tills:
        done = race.world.cardpos(till.data_dir, "terminal", "sync", "--once")
        assert done.returncode == 0, done.stderr


def check_payments(race: RaceWorld) -> None:
    receipts = [r for till in race.tills for r in till.receipts]
    declines = [d for till in race.tills for d in till.declines]
    assert len(receipts) + len(declines) == 2 * ROUNDS
    assert all(r.payload[AUTH_FIELD] != "offline" and not r.offline for r in receipts), "every payment online"
    spent = sum(int(r.payload["sv"]) for r in receipts)
    # Zero overdrafts, and no payment refused while the balance still covered it.
    assert spent <= OPENING
    assert OPENING - spent < PAYMENT
    assert declines, "the rounds ask for more than the balance"
    assert {(d.code, d.params["reason"]) for d in declines} == {("ledger_declined", "insufficient_balance")}
    sync_all(race)
    shown = race.world.member_show(MEMBER)
    assert shown["balance"] == OPENING - spent >= 0
    verified = race.world.verify()
    assert verified.returncode == 0, verified.stdout + verified.stderr


def pay_sv(race: RaceWorld) -> Callable[[Till, int], Any]:
    claims = {id(till): till.counter.tap(race.token).claims for till in race.tills}

    def pay(till: Till, _: int) -> Any:
        return till.counter.sale(claims[id(till)], Money(PAYMENT, "CNY"), tender="sv")

    return pay


@pytest.fixture
def sqlite_race(tmp_path: Path) -> Iterator[RaceWorld]:
    race, _ = race_world(tmp_path)
    try:
        yield race
    finally:
        race.close()


def test_two_online_terminals_never_overdraw_one_member(sqlite_race: RaceWorld) -> None:
    run_rounds(sqlite_race, ROUNDS, pay_sv(sqlite_race))
    check_payments(sqlite_race)


@pytest.mark.postgres
def test_two_ledger_workers_on_postgresql_never_overdraw(postgres_url: str, tmp_path: Path) -> None:
    race, _ = race_world(tmp_path, db_url=postgres_url, workers=2)
    try:
        run_rounds(race, ROUNDS, pay_sv(race))
        check_payments(race)
    finally:
        race.close()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_single_use_coupon_is_used_exactly_once(backend: str, request: pytest.FixtureRequest,
                                                  tmp_path: Path) -> None:
    db_url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    race, coupon_ids = race_world(tmp_path, db_url=db_url, workers=2 if db_url else 1, coupons=COUPONS)
    try:
        claims = {id(till): till.counter.tap(race.token).claims for till in race.tills}

        def use(till: Till, i: int) -> Any:
            return till.counter.sale(claims[id(till)], Money(1_000, "CNY"), tender="cash",
                                     coupon_ids=[coupon_ids[i]])

        run_rounds(race, COUPONS, use)
        used = sorted(c for till in race.tills for r in till.receipts for c in r.payload["coupons"])
        assert used == sorted(coupon_ids), "each coupon used exactly once"
        reasons = {(d.code, d.params["reason"]) for till in race.tills for d in till.declines}
        assert reasons <= {("ledger_declined", "coupon_held"), ("ledger_declined", "coupon_used")}
        assert sum(len(till.declines) for till in race.tills) == COUPONS
        sync_all(race)
        verified = race.world.verify()
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        race.close()


def test_the_headless_op_authorizes_online_and_falls_back_offline(tmp_path: Path) -> None:
    """``cardpos terminal op`` goes through the same counter: online while the ledger answers, offline limits after
    it stops; the receipt says which path was taken, in English and Chinese."""
    import subprocess
    import sys

    from cardkit.cards.textform import token_to_text
    from terminal.i18n import words_for
    from tests.conftest import REPO_ROOT

    race, _ = race_world(tmp_path)
    try:
        till = race.tills[0]
        till.counter.close()

        def op(lang: str, amount: str) -> subprocess.CompletedProcess[str]:
            env = {**race.world.terminal_env(till.data_dir), "CARDPOS_TERMINAL_LANG": lang}
            return subprocess.run([sys.executable, "-m", "cardpos", "terminal", "op", "sale", amount, "--card",
                                   token_to_text(race.token), "--no-print"], env=env, cwd=REPO_ROOT,
                                  capture_output=True, text=True, timeout=120)

        online_en = op("en", "1.50")
        assert online_en.returncode == 0, online_en.stderr
        assert "Authorized online by the ledger" in " ".join(online_en.stdout.split())
        counter = open_till(till.data_dir, 20.0)  # the app's path: the same receipt, said in Chinese
        try:
            receipt = counter.sale(counter.tap(race.token).claims, Money(250, "CNY"), tender="sv")
        finally:
            counter.close()
        assert any("已由总账在线授权" in line for line in receipt.printed(words_for("zh")))
        race.world.ledger.stop()
        offline_en = op("en", "3.50")
        assert offline_en.returncode == 0, offline_en.stderr
        assert "Approved offline within the offline limits" in " ".join(offline_en.stdout.split())
        assert "OFFLINE" in offline_en.stdout
    finally:
        race.close()
