"""Signed-in sessions: a random token in an HttpOnly, SameSite=Strict cookie (Secure over TLS), its SHA-256 in
``console_session`` with the session's CSRF token. A session ends after ``IDLE_MS`` without a request, after
``ABSOLUTE_MS`` in any case, at sign-out, and when its account is disabled or reset. The role is read from the
account on every request, so a change applies at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from ledger import store
from ledger.console.models import AdminAccount, ConsoleSession
from ledger.console.roles import Role

IDLE_MS = 30 * 60 * 1000
ABSOLUTE_MS = 12 * 3600 * 1000
TOUCH_EVERY_MS = 60 * 1000  # last_seen is written at most once a minute per session, not on every request
TOKEN_BYTES = 32


@dataclass(frozen=True)
class Session:
    admin: str
    role: Role
    csrf_token: str
    created_ms: int
    merchant_id: str | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def start(admin: str, origin: str, now_ms: int) -> str:
    """A new session for ``admin``; returns the cookie's token (only its digest is stored)."""
    token = new_token()
    with store.atomic_write():
        ConsoleSession.delete().where(ConsoleSession.last_seen_ms < now_ms - IDLE_MS).execute()
        ConsoleSession.create(token_hash=_digest(token), admin=admin, csrf_token=secrets.token_urlsafe(24),
                              created_ms=now_ms, last_seen_ms=now_ms, origin=origin[:64])
    return token


def find(token: str | None, now_ms: int, *, touch: bool = True) -> Session | None:
    """The live session of a cookie's token, or None (absent, unknown, expired, or its account disabled).
    ``touch`` False (the alerts page's background polling) does not count as activity for the idle expiry."""
    if not token or len(token) > 128:
        return None
    row = ConsoleSession.get_or_none(ConsoleSession.token_hash == _digest(token))
    if row is None:
        return None
    if now_ms - int(row.last_seen_ms) > IDLE_MS or now_ms - int(row.created_ms) > ABSOLUTE_MS:
        ConsoleSession.delete().where(ConsoleSession.token_hash == row.token_hash).execute()
        return None
    account = AdminAccount.get_or_none(AdminAccount.name == row.admin)
    if account is None or account.status != "active":
        return None
    if touch and now_ms - int(row.last_seen_ms) >= TOUCH_EVERY_MS:
        ConsoleSession.update(last_seen_ms=now_ms).where(ConsoleSession.token_hash == row.token_hash).execute()
    return Session(admin=str(row.admin), role=Role(str(account.role)), csrf_token=str(row.csrf_token),
                   created_ms=int(row.created_ms), merchant_id=account.merchant_id)


def end(token: str | None) -> None:
    if token and len(token) <= 128:
        ConsoleSession.delete().where(ConsoleSession.token_hash == _digest(token)).execute()


def end_others(admin: str, keep_token: str | None) -> int:
    """End every session of ``admin`` but the current one (after a password change)."""
    query = ConsoleSession.delete().where(ConsoleSession.admin == admin)
    if keep_token:
        query = query.where(ConsoleSession.token_hash != _digest(keep_token))
    return int(query.execute())
