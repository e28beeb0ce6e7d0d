"""Cashier sign-in: salted PIN hashes, a clear reason for every refusal, lockout after five failures."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from cardkit.errors import CardposError, JournalError
from cardkit.locations import terminal_db
from terminal.offline.cashiers import LOCKOUT_MS, CashierAuthError, CashierRoleError, Role, require_role
from terminal.offline.store import TerminalStore

NOW = 1_780_000_000_000


def test_add_and_sign_in(terminal_store: TerminalStore) -> None:
    cashiers = terminal_store.cashiers
    added = cashiers.add("c-1", "Li Na", "cashier", "123456")
    assert (added.cashier_id, added.name, added.role) == ("c-1", "Li Na", Role.CASHIER)
    signed_in = cashiers.authenticate("c-1", "123456", now=NOW)
    assert (signed_in.name, signed_in.role) == ("Li Na", Role.CASHIER)
    assert [c.cashier_id for c in cashiers.list_all()] == ["c-1"]


def test_pins_are_salted_hashes_never_stored_in_clear(terminal_store: TerminalStore, data_dir: Path) -> None:
    terminal_store.cashiers.add("c-1", "A", "cashier", "483920")
    terminal_store.cashiers.add("c-2", "B", "cashier", "483920")
    with sqlite3.connect(terminal_db(data_dir)) as conn:
        rows = conn.execute("SELECT pin_salt, pin_hash, pin_params FROM cashier ORDER BY cashier_id").fetchall()
    conn.close()
    assert rows[0][0] != rows[1][0] and rows[0][1] != rows[1][1]  # same PIN, different salt, different hash
    assert all(b"483920" not in bytes(r[1]) for r in rows)
    assert rows[0][2].startswith("scrypt$")


def test_unknown_cashier(terminal_store: TerminalStore) -> None:
    with pytest.raises(CashierAuthError, match="no cashier with id ghost") as info:
        terminal_store.cashiers.authenticate("ghost", "1234", now=NOW)
    assert info.value.reason == "unknown"


def test_wrong_pins_count_down_then_lock_for_five_minutes(terminal_store: TerminalStore) -> None:
    cashiers = terminal_store.cashiers
    cashiers.add("c-1", "Li Na", "cashier", "1234")
    for left in (4, 3, 2, 1):
        with pytest.raises(CashierAuthError, match=f"wrong PIN: {left} attempts? left") as info:
            cashiers.authenticate("c-1", "9999", now=NOW)
        assert (info.value.reason, info.value.attempts_left) == ("wrong_pin", left)
    with pytest.raises(CashierAuthError, match="now locked until") as info:
        cashiers.authenticate("c-1", "9999", now=NOW)
    assert info.value.locked_until_ms == NOW + LOCKOUT_MS
    # While locked, even the right PIN is refused, and the reason names the time.
    with pytest.raises(CashierAuthError, match="locked until") as info:
        cashiers.authenticate("c-1", "1234", now=NOW + LOCKOUT_MS - 1)
    assert info.value.reason == "locked"
    # After five minutes the right PIN works and the count starts again.
    assert cashiers.authenticate("c-1", "1234", now=NOW + LOCKOUT_MS).cashier_id == "c-1"
    with pytest.raises(CashierAuthError, match="4 attempts left"):
        cashiers.authenticate("c-1", "0000", now=NOW + LOCKOUT_MS)


def test_a_correct_pin_resets_the_failure_count(terminal_store: TerminalStore) -> None:
    cashiers = terminal_store.cashiers
    cashiers.add("c-1", "Li Na", "cashier", "1234")
    for _ in range(4):
        with pytest.raises(CashierAuthError):
            cashiers.authenticate("c-1", "1111", now=NOW)
    cashiers.authenticate("c-1", "1234", now=NOW)
    with pytest.raises(CashierAuthError, match="4 attempts left"):
        cashiers.authenticate("c-1", "1111", now=NOW)


def test_unlock_and_set_pin(terminal_store: TerminalStore) -> None:
    cashiers = terminal_store.cashiers
    cashiers.add("c-1", "Li Na", "cashier", "1234")
    for _ in range(5):
        with pytest.raises(CashierAuthError):
            cashiers.authenticate("c-1", "1111", now=NOW)
    cashiers.unlock("c-1")
    cashiers.set_pin("c-1", "87654321")
    assert cashiers.authenticate("c-1", "87654321", now=NOW).cashier_id == "c-1"
    with pytest.raises(CashierAuthError, match="wrong PIN"):
        cashiers.authenticate("c-1", "1234", now=NOW)


@pytest.mark.parametrize("pin", ["123", "12a4", "", "1234567890123"])
def test_pin_format_is_checked(terminal_store: TerminalStore, pin: str) -> None:
    with pytest.raises(CardposError, match="4 to 12 digits"):
        terminal_store.cashiers.add("c-1", "Li Na", "cashier", pin)


def test_duplicates_and_unknown_roles_are_refused(terminal_store: TerminalStore) -> None:
    terminal_store.cashiers.add("c-1", "Li Na", "cashier", "1234")
    with pytest.raises(JournalError, match="already exists"):
        terminal_store.cashiers.add("c-1", "Other", "cashier", "1234")
    with pytest.raises(JournalError, match="unknown role"):
        terminal_store.cashiers.add("c-2", "X", "manager", "1234")


def test_roles(terminal_store: TerminalStore) -> None:
    cashiers = terminal_store.cashiers
    sup = cashiers.add("s-1", "Boss", Role.SUPERVISOR, "1234")
    cas = cashiers.add("c-1", "Till", "cashier", "1234")
    tech = cashiers.add("t-1", "Fixer", "technician", "1234")
    require_role(sup, "cashier")
    require_role(sup, Role.SUPERVISOR)
    cashiers.require_role(cas, "cashier")
    require_role(tech, "technician")
    with pytest.raises(CashierRoleError, match="this needs a supervisor; c-1 is a cashier"):
        require_role(cas, "supervisor")
    with pytest.raises(CashierRoleError, match="needs a cashier"):
        require_role(tech, "cashier")


def test_lockout_survives_a_restart(data_dir: Path, open_store: Callable[..., TerminalStore]) -> None:
    store = open_store()
    store.cashiers.add("c-1", "Li Na", "cashier", "1234")
    for _ in range(5):
        with pytest.raises(CashierAuthError):
            store.cashiers.authenticate("c-1", "0000", now=NOW)
    store.close()
    again = open_store()  # the till was switched off and on: still locked
    with pytest.raises(CashierAuthError, match="locked until") as info:
        again.cashiers.authenticate("c-1", "1234", now=NOW + 1_000)
    assert info.value.reason == "locked"
    assert again.cashiers.get("c-1").locked_until_ms == NOW + LOCKOUT_MS  # type: ignore[union-attr]


def test_a_clock_jumping_back_never_stretches_a_lockout(terminal_store: TerminalStore) -> None:
    cashiers = terminal_store.cashiers
    cashiers.add("c-1", "Li Na", "cashier", "1234")
    for _ in range(5):
        with pytest.raises(CashierAuthError):
            cashiers.authenticate("c-1", "0000", now=NOW)
    earlier = NOW - 3_600_000  # the clock is pulled back an hour
    with pytest.raises(CashierAuthError, match="locked until") as info:
        cashiers.authenticate("c-1", "1234", now=earlier)
    assert info.value.locked_until_ms == earlier + LOCKOUT_MS  # at most five minutes from the clock's "now"
    assert cashiers.authenticate("c-1", "1234", now=earlier + LOCKOUT_MS).cashier_id == "c-1"
