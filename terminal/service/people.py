"""Who works the counter: a cashier's sign-in (journaled, as is the lockout it may cause) and a supervisor's
approval of a refund or void."""

from __future__ import annotations

from cardkit.journal import EntryKind
from terminal.offline.cashiers import LOCKOUT_MS, Cashier, CashierAuthError, Role, require_role
from terminal.service.desk import Desk


def sign_in(desk: Desk, cashier_id: str, pin: str) -> Cashier:
    """Check a cashier's PIN; journal the sign-in, or the lockout when this attempt caused one."""
    now_ms = desk.clock() * 1000
    try:
        cashier = desk.store.cashiers.authenticate(cashier_id, pin, now=now_ms)
    except CashierAuthError as exc:
        if exc.reason == "locked" and exc.locked_until_ms == now_ms + LOCKOUT_MS:  # this attempt locked it
            with desk.operation_lock.hold():
                desk.store.journal.append(EntryKind.CASHIER_EVENT, {"event": "lockout", "cashier": cashier_id})
        raise
    with desk.operation_lock.hold():
        desk.store.journal.append(EntryKind.CASHIER_EVENT, {"event": "sign_in", "cashier": cashier_id}, cashier_id)
    return cashier


def authorize_supervisor(desk: Desk, cashier_id: str, pin: str) -> Cashier:
    """A supervisor's approval (PIN checked, role required) for a refund or void."""
    supervisor = desk.store.cashiers.authenticate(cashier_id, pin, now=desk.clock() * 1000)
    require_role(supervisor, Role.SUPERVISOR)
    return supervisor
