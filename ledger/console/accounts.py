"""Admin accounts: add, list, disable, enable, reset, change password, sign in (with lockout and TOTP).

Every change is written to the ledger's audit log in the same transaction (actor, action, subject = the account).
A sign-in checks the password with scrypt (``passwords``) and, when the account has one, a TOTP code (``totp``).
Five wrong sign-ins in a row lock the account for ``LOCK_MS``; a reset by an owner unlocks it. A failure for a
name that has no account runs the KDF anyway (no timing tells which names exist) and stores nothing: an
unauthenticated caller must not be able to grow the database.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

from ledger import store
from ledger.console import passwords, totp
from ledger.console.models import AdminAccount, ConsoleSession
from ledger.console.roles import Role
from ledger.errors import LedgerError
from ledger.home import Ledger, current

log = logging.getLogger("cardpos.ledger.console")

MAX_FAILURES = 5
LOCK_MS = 15 * 60 * 1000
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/l/I
TOTP_ISSUER = "cardpos console"
# Each sign-in holds 32 MiB for a moment; at most this many at once, so a flood of attempts cannot exhaust memory.
_kdf_slots = threading.BoundedSemaphore(2)


class SigninRefused(LedgerError):
    """A sign-in that did not succeed; ``reason`` for the log: unknown, password, totp, locked, disabled."""

    title = "Sign-in refused"

    def __init__(self, reason: str) -> None:
        super().__init__("wrong name, password or code, or the account is locked")
        self.reason = reason


@dataclass(frozen=True)
class AdminView:
    name: str
    role: Role
    status: str
    has_totp: bool
    failed_signins: int
    locked_until_ms: int | None
    created_ms: int
    last_signin_ms: int | None
    merchant_id: str | None

    def locked(self, now_ms: int) -> bool:
        return self.locked_until_ms is not None and self.locked_until_ms > now_ms

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role.value, "status": self.status, "totp": self.has_totp,
                "failed_signins": self.failed_signins, "locked_until_ms": self.locked_until_ms,
                "created_ms": self.created_ms, "last_signin_ms": self.last_signin_ms,
                "merchant_id": self.merchant_id}


@dataclass(frozen=True)
class Credentials:
    """What an add or a reset hands out, shown once: a generated password, a TOTP secret and its URI."""

    name: str
    password: str | None = None
    totp_secret: str | None = None
    totp_uri: str | None = None


def _view(row: AdminAccount) -> AdminView:
    return AdminView(name=str(row.name), role=Role(str(row.role)), status=str(row.status),
                     has_totp=bool(row.totp_secret), failed_signins=int(row.failed_signins),
                     locked_until_ms=row.locked_until_ms, created_ms=int(row.created_ms),
                     last_signin_ms=row.last_signin_ms, merchant_id=row.merchant_id)


def _audit(ledger: Ledger, actor: str, action: str, subject: str, **details: Any) -> None:
    store.AuditLog.create(at_ms=ledger.now_ms(), actor=actor, action=action, subject=subject, details=details)


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise LedgerError("an admin name is 1 to 64 lowercase letters, digits, dots, dashes or underscores, "
                          "starting with a letter or digit")
    return name


def generate_password(randbytes: Any) -> str:
    """Four groups of five characters from PASSWORD_ALPHABET (about 116 bits), drawn without modulo bias."""
    limit = 256 - 256 % len(PASSWORD_ALPHABET)
    chars: list[str] = []
    while len(chars) < 20:
        chars.extend(PASSWORD_ALPHABET[b % len(PASSWORD_ALPHABET)] for b in randbytes(32) if b < limit)
    return "-".join("".join(chars[i:i + 5]) for i in range(0, 20, 5))


def _hash(ledger: Ledger, password: str) -> str:
    passwords.check_password_rules(password)
    with _kdf_slots:
        return passwords.hash_password(password, ledger.randbytes(passwords.SALT_BYTES))


def _new_totp(ledger: Ledger, name: str) -> tuple[str, str]:
    secret = ledger.randbytes(totp.SECRET_BYTES)
    return totp.secret_to_text(secret), totp.provisioning_uri(secret, name, TOTP_ISSUER)


def _row(name: str) -> AdminAccount:
    row = AdminAccount.get_or_none(AdminAccount.name == name)
    if row is None:
        raise LedgerError(f"there is no admin {name!r}")
    return row


def add_admin(name: str, role: str | Role, *, password: str | None = None, with_totp: bool = False,
              merchant_id: str | None = None, actor: str) -> Credentials:
    """Create an account; without ``password`` one is generated (returned once, never stored in clear)."""
    ledger = current()
    name = check_name(name)
    role = Role.parse(role) if isinstance(role, str) else role
    merchant_id = _check_merchant(role, (merchant_id or "").strip() or None)
    generated = password is None
    secret = generate_password(ledger.randbytes) if password is None else password
    stored = _hash(ledger, secret)
    totp_text, uri = _new_totp(ledger, name) if with_totp else (None, None)
    now = ledger.now_ms()
    with store.atomic_write():
        if AdminAccount.get_or_none(AdminAccount.name == name) is not None:
            raise LedgerError(f"admin {name} already exists")
        AdminAccount.create(name=name, role=role.value, merchant_id=merchant_id, password_hash=stored,
                            totp_secret=totp_text, created_ms=now, password_changed_ms=now)
        _audit(ledger, actor, "admin_add", name, role=role.value, totp=with_totp, merchant_id=merchant_id)
    return Credentials(name=name, password=secret if generated else None, totp_secret=totp_text, totp_uri=uri)


def _check_merchant(role: Role, merchant_id: str | None) -> str | None:
    """A merchant manager looks after one existing merchant (their console scope); no other role has one."""
    from ledger.merchants.models import Merchant

    if role is not Role.MERCHANT_MANAGER:
        if merchant_id is not None:
            raise LedgerError("only a merchant manager looks after one merchant; leave out --merchant")
        return None
    if merchant_id is None:
        raise LedgerError("a merchant manager needs the merchant they look after (--merchant M; see: cardpos ledger "
                          "merchant list)")
    if Merchant.get_or_none(Merchant.merchant_id == merchant_id) is None:
        raise LedgerError(f"there is no merchant {merchant_id!r} (see: cardpos ledger merchant list)")
    return merchant_id


def list_admins() -> list[AdminView]:
    return [_view(row) for row in AdminAccount.select().order_by(AdminAccount.name)]


def get_admin(name: str) -> AdminView | None:
    row = AdminAccount.get_or_none(AdminAccount.name == name)
    return _view(row) if row is not None else None


def _end_sessions(name: str) -> int:
    return int(ConsoleSession.delete().where(ConsoleSession.admin == name).execute())


def _set_status(name: str, status: str, actor: str) -> None:
    ledger = current()
    with store.atomic_write():
        row = _row(name)
        if status == "disabled" and row.role == Role.OWNER.value and row.status == "active":
            owners = AdminAccount.select().where((AdminAccount.role == Role.OWNER.value)
                                                 & (AdminAccount.status == "active")).count()
            if owners <= 1:
                raise LedgerError(f"{name} is the last active owner; add another owner before disabling it")
        row.status = status
        row.save()
        ended = _end_sessions(name) if status == "disabled" else 0
        _audit(ledger, actor, f"admin_{'disable' if status == 'disabled' else 'enable'}", name, sessions_ended=ended)


def disable_admin(name: str, *, actor: str) -> None:
    """Refuse the account's sign-ins and end its sessions (``enable_admin`` undoes it)."""
    _set_status(name, "disabled", actor)


def enable_admin(name: str, *, actor: str) -> None:
    _set_status(name, "active", actor)


def reset_admin(name: str, *, password: str | None = None, with_totp: bool | None = None,
                actor: str) -> Credentials:
    """A new password (generated unless given), unlocked, every session ended; ``with_totp`` True gives a new
    TOTP secret, False removes it, None keeps it."""
    ledger = current()
    generated = password is None
    secret = generate_password(ledger.randbytes) if password is None else password
    stored = _hash(ledger, secret)
    totp_text, uri = _new_totp(ledger, name) if with_totp else (None, None)
    with store.atomic_write():
        row = _row(name)
        row.password_hash = stored
        row.password_changed_ms = ledger.now_ms()
        row.failed_signins = 0
        row.locked_until_ms = None
        if with_totp is not None:
            row.totp_secret = totp_text
            row.totp_last_step = -1
        row.save()
        ended = _end_sessions(name)
        _audit(ledger, actor, "admin_reset", name, totp={None: "kept", True: "new", False: "removed"}[with_totp],
               sessions_ended=ended)
    return Credentials(name=name, password=secret if generated else None, totp_secret=totp_text, totp_uri=uri)


def change_password(name: str, old: str, new: str, *, origin: str) -> None:
    """An admin changing their own password (the old one proves it is them); other sessions are ended."""
    ledger = current()
    row = _row(name)
    with _kdf_slots:
        matches = passwords.verify_password(old, str(row.password_hash))
    if not matches:
        raise LedgerError("the current password is wrong")
    stored = _hash(ledger, new)
    with store.atomic_write():
        AdminAccount.update(password_hash=stored, password_changed_ms=ledger.now_ms()).where(
            AdminAccount.name == name).execute()
        _audit(ledger, name, "admin_password_change", name, origin=origin)


_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = passwords.hash_password("not an account's password", b"cardpos-dummy-salt")
    return _DUMMY_HASH


def authenticate(name: str, password: str, code: str, *, origin: str) -> AdminView:
    """Check a sign-in; returns the account, or raises ``SigninRefused`` (one message for every reason)."""
    ledger = current()
    now = ledger.now_ms()
    row = AdminAccount.get_or_none(AdminAccount.name == name) if NAME_PATTERN.fullmatch(name) else None
    if row is None:
        with _kdf_slots:
            passwords.verify_password(password, _dummy_hash())
        log.warning("console sign-in refused", extra={"fields": {"reason": "unknown", "origin": origin}})
        raise SigninRefused("unknown")
    if row.locked_until_ms is not None and row.locked_until_ms > now:
        _refused(ledger, name, "locked", origin, count=False)
    with _kdf_slots:
        password_ok = passwords.verify_password(password, str(row.password_hash))
    if not password_ok:
        _refused(ledger, name, "password", origin)
    step: int | None = None
    if row.totp_secret:
        step = totp.verify(totp.secret_from_text(str(row.totp_secret)), code, now // 1000,
                           after_step=int(row.totp_last_step))
        if step is None:
            _refused(ledger, name, "totp", origin)
    if row.status != "active":
        _refused(ledger, name, "disabled", origin, count=False)
    with store.atomic_write():
        changes: dict[Any, Any] = {AdminAccount.failed_signins: 0, AdminAccount.locked_until_ms: None,
                                   AdminAccount.last_signin_ms: now}
        if step is not None:
            changes[AdminAccount.totp_last_step] = step
        AdminAccount.update(changes).where(AdminAccount.name == name).execute()
        _audit(ledger, name, "admin_signin", name, origin=origin)
    refreshed = get_admin(name)
    assert refreshed is not None
    return refreshed


def _refused(ledger: Ledger, name: str, reason: str, origin: str, *, count: bool = True) -> None:
    """Record a refused sign-in of an existing account (bounded: the account locks after MAX_FAILURES)."""
    now = ledger.now_ms()
    with store.atomic_write():
        row = _row(name)
        details: dict[str, Any] = {"reason": reason, "origin": origin}
        if count:
            row.failed_signins = int(row.failed_signins) + 1
            if row.failed_signins >= MAX_FAILURES:
                row.locked_until_ms = now + LOCK_MS
                row.failed_signins = 0
                details["locked_until_ms"] = row.locked_until_ms
            row.save()
        if reason != "locked":  # a locked account's further attempts are not stored: the lock bounds the log
            _audit(ledger, "-", "admin_signin_refused", name, **details)
        if "locked_until_ms" in details:
            _audit(ledger, "-", "admin_locked", name, origin=origin, until_ms=details["locked_until_ms"])
    log.warning("console sign-in refused", extra={"fields": {"reason": reason, "admin": name, "origin": origin}})
    raise SigninRefused(reason)
