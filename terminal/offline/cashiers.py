"""Cashiers, supervisors and technicians of this terminal: PIN sign-in with lockout, and role checks.

PINs are stored as salted scrypt hashes (``hashlib.scrypt``, n=2**14, r=8, p=1; parameters kept per row so they
can be raised later). Five wrong PINs in a row lock the account for five minutes; a correct PIN resets the count.
Names are PII and stored encrypted. PINs never appear in errors or logs.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from peewee import SqliteDatabase

from cardkit.errors import CardposError, JournalError
from terminal.offline.db import db_path, guard
from terminal.offline.models import CashierRow
from terminal.offline.pii import PiiCipher

MAX_FAILURES = 5
LOCKOUT_MS = 5 * 60 * 1000
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_PIN_RE = re.compile(r"^\d{4,12}$")
_TABLE = "cashier"


class Role(enum.StrEnum):
    CASHIER = "cashier"
    SUPERVISOR = "supervisor"
    TECHNICIAN = "technician"


# Which roles satisfy a required role: a supervisor can do a cashier's work; a technician maintains the
# terminal but does not sell or approve refunds.
_GRANTS: dict[Role, frozenset[Role]] = {
    Role.CASHIER: frozenset({Role.CASHIER}),
    Role.SUPERVISOR: frozenset({Role.CASHIER, Role.SUPERVISOR}),
    Role.TECHNICIAN: frozenset({Role.TECHNICIAN}),
}


class CashierAuthError(CardposError):
    """Sign-in refused. ``reason`` is ``unknown``, ``wrong_pin`` or ``locked`` (said as ``error.signin.<reason>``
    in the terminal's catalogue)."""

    title = "Sign-in refused"

    def __init__(self, message: str, *, reason: str, attempts_left: int | None = None,
                 locked_until_ms: int | None = None, cashier_id: str = "") -> None:
        until = _clock_text(locked_until_ms) if locked_until_ms else ""
        last = reason == "wrong_pin" and attempts_left == 1
        super().__init__(message, sentence="signin.wrong_pin_last" if last else f"signin.{reason}",
                         params={"who": cashier_id, "left": attempts_left, "until": until})
        self.reason = reason
        self.attempts_left = attempts_left
        self.locked_until_ms = locked_until_ms


class CashierRoleError(CardposError):
    """The signed-in person lacks the role an operation needs (e.g. a refund needs a supervisor)."""

    title = "Not allowed"

    def __init__(self, message: str, *, needed: str = "", who: str = "", role: str = "") -> None:
        super().__init__(message, sentence="role_needed" if needed else None,
                         params={"needed": needed, "who": who, "role": role})


@dataclass(frozen=True, slots=True)
class Cashier:
    cashier_id: str
    name: str
    role: Role
    failed_attempts: int = 0
    locked_until_ms: int = 0


def _hash_pin(pin: str, salt: bytes, params: str) -> bytes:
    algo, n, r, p = params.split("$")
    if algo != "scrypt":
        raise JournalError(f"unknown PIN hash scheme {algo!r}")
    return hashlib.scrypt(pin.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=32)


def _check_pin_format(pin: str) -> None:
    if not isinstance(pin, str) or not _PIN_RE.match(pin):
        raise CardposError("a PIN is 4 to 12 digits", title="Bad PIN")


def _clock_text(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%H:%M:%S UTC")


def require_role(cashier: Cashier, role: Role | str) -> None:
    """Raise CashierRoleError unless ``cashier`` may act as ``role``."""
    needed = Role(role)
    if needed not in _GRANTS[cashier.role]:
        raise CashierRoleError(f"this needs a {needed.value}; {cashier.cashier_id} is a {cashier.role.value}",
                               needed=needed.value, who=cashier.cashier_id, role=cashier.role.value)


class CashierStore:
    def __init__(self, db: SqliteDatabase, pii: PiiCipher, *,
                 randbytes: Callable[[int], bytes] = os.urandom) -> None:
        self._db = db
        self._pii = pii
        self._randbytes = randbytes
        self._path = db_path(db)

    require_role = staticmethod(require_role)

    def _row(self, cashier_id: str) -> CashierRow | None:
        with guard(self._path, "reading cashiers"):
            row: CashierRow | None = (CashierRow.select().where(CashierRow.cashier_id == cashier_id)
                                      .bind(self._db).first())
        return row

    def _to_cashier(self, row: CashierRow) -> Cashier:
        cashier_id = str(row.cashier_id)
        name = self._pii.decrypt_text(bytes(row.name_enc), table=_TABLE, column="name_enc", row_id=cashier_id)
        return Cashier(cashier_id=cashier_id, name=name, role=Role(row.role),
                       failed_attempts=int(row.failed_attempts), locked_until_ms=int(row.locked_until_ms))

    def add(self, cashier_id: str, name: str, role: Role | str, pin: str) -> Cashier:
        if not cashier_id or not cashier_id.strip():
            raise JournalError("a cashier needs an id")
        try:
            role = Role(role)
        except ValueError:
            raise JournalError(f"unknown role {role!r} (one of: cashier, supervisor, technician)") from None
        _check_pin_format(pin)
        salt = self._randbytes(16)
        params = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}"
        row = {
            "cashier_id": cashier_id, "role": role.value, "pin_salt": salt, "pin_params": params,
            "pin_hash": _hash_pin(pin, salt, params), "failed_attempts": 0, "locked_until_ms": 0,
            "name_enc": self._pii.encrypt_text(name, table=_TABLE, column="name_enc", row_id=cashier_id),
        }
        with guard(self._path, "adding a cashier"), self._db.atomic("IMMEDIATE"):
            if self._row(cashier_id) is not None:
                raise JournalError(f"cashier {cashier_id} already exists")
            CashierRow.insert(**row).execute(self._db)
        return Cashier(cashier_id=cashier_id, name=name, role=role)

    def get(self, cashier_id: str) -> Cashier | None:
        row = self._row(cashier_id)
        return self._to_cashier(row) if row is not None else None

    def list_all(self) -> list[Cashier]:
        with guard(self._path, "reading cashiers"):
            rows = list(CashierRow.select().order_by(CashierRow.cashier_id).bind(self._db))
        return [self._to_cashier(row) for row in rows]

    def set_pin(self, cashier_id: str, pin: str) -> None:
        _check_pin_format(pin)
        salt = self._randbytes(16)
        params = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}"
        digest = _hash_pin(pin, salt, params)
        with guard(self._path, "changing a PIN"):
            changed = (CashierRow.update(pin_salt=salt, pin_hash=digest, pin_params=params, failed_attempts=0,
                                         locked_until_ms=0)
                       .where(CashierRow.cashier_id == cashier_id).execute(self._db))
        if not changed:
            raise CashierAuthError(f"no cashier with id {cashier_id}", reason="unknown", cashier_id=cashier_id)

    def unlock(self, cashier_id: str) -> None:
        """Clear a lockout (a supervisor's decision; the counter journals it as a cashier_event)."""
        with guard(self._path, "unlocking a cashier"):
            (CashierRow.update(failed_attempts=0, locked_until_ms=0)
             .where(CashierRow.cashier_id == cashier_id).execute(self._db))

    def authenticate(self, cashier_id: str, pin: str, *, now: int) -> Cashier:
        """Check a PIN at ``now`` (epoch ms). Raises CashierAuthError saying why: unknown, wrong PIN, locked."""
        now = int(now)
        row = self._row(cashier_id)
        if row is None:
            raise CashierAuthError(f"no cashier with id {cashier_id}", reason="unknown", cashier_id=cashier_id)
        locked_until = int(row.locked_until_ms)
        if locked_until > now + LOCKOUT_MS:
            # The wall clock jumped back after the lock was set: re-anchor the lock to this clock, so it lasts one
            # lockout period from now rather than until the clock catches up with the old time.
            locked_until = now + LOCKOUT_MS
            with guard(self._path, "re-anchoring a lockout"):
                (CashierRow.update(locked_until_ms=locked_until)
                 .where(CashierRow.cashier_id == cashier_id).execute(self._db))
        if locked_until > now:
            raise CashierAuthError(
                f"cashier {cashier_id} is locked until {_clock_text(locked_until)} after {MAX_FAILURES} wrong PINs",
                reason="locked", locked_until_ms=locked_until, attempts_left=0, cashier_id=cashier_id,
            )
        # Hash outside the write lock: scrypt takes tens of ms and journal appends must not wait for it.
        good = isinstance(pin, str) and hmac.compare_digest(
            _hash_pin(pin, bytes(row.pin_salt), str(row.pin_params)), bytes(row.pin_hash))
        with guard(self._path, "recording a sign-in attempt"), self._db.atomic("IMMEDIATE"):
            fresh = self._row(cashier_id)
            if fresh is None:
                raise CashierAuthError(f"no cashier with id {cashier_id}", reason="unknown", cashier_id=cashier_id)
            fresh_lock = min(int(fresh.locked_until_ms), now + LOCKOUT_MS)
            if fresh_lock > now:  # another sign-in locked it while we were hashing
                raise CashierAuthError(
                    f"cashier {cashier_id} is locked until {_clock_text(fresh_lock)}",
                    reason="locked", locked_until_ms=fresh_lock, attempts_left=0, cashier_id=cashier_id,
                )
            failures = int(fresh.failed_attempts)  # a lockout resets the count, so an expired lock starts afresh
            if good:
                (CashierRow.update(failed_attempts=0, locked_until_ms=0)
                 .where(CashierRow.cashier_id == cashier_id).execute(self._db))
            else:
                failures += 1
                lock = now + LOCKOUT_MS if failures >= MAX_FAILURES else 0
                (CashierRow.update(failed_attempts=0 if lock else failures, locked_until_ms=lock)
                 .where(CashierRow.cashier_id == cashier_id).execute(self._db))
        if good:
            return Cashier(cashier_id=cashier_id, name=self._to_cashier(fresh).name, role=Role(fresh.role))
        if failures >= MAX_FAILURES:
            raise CashierAuthError(
                f"wrong PIN: cashier {cashier_id} is now locked until {_clock_text(now + LOCKOUT_MS)}",
                reason="locked", attempts_left=0, locked_until_ms=now + LOCKOUT_MS, cashier_id=cashier_id,
            )
        left = MAX_FAILURES - failures
        raise CashierAuthError(f"wrong PIN: {left} attempt{'s' if left != 1 else ''} left",
                               reason="wrong_pin", attempts_left=left, cashier_id=cashier_id)
