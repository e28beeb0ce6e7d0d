"""Members signing in to their own page with a one-time code (issue 18): codes, limits, lockout and sessions.

- A member asks for a code with their phone or email. Whatever they type, the answer is the same ("if it is on
  file, a code is on its way"), and a sign-in attempt is recorded either way, so nobody learns who is a member.
  Only when exactly one member has that phone or email is a code sent: by SMS to the number on file for a phone,
  by mail to the address on file for an email (``member_codes``, off the request path).
- A code is 6 digits, valid ``CODE_TTL_MS`` (10 minutes), works once, and is bound to the browser that asked for
  it (the attempt token in a cookie; only hashes are stored).
- ``MAX_WRONG`` (5) wrong codes lock the phone or email for ``LOCK_MS`` (15 minutes): no code is sent and no
  code is taken meanwhile. Members and strangers are locked alike.
- At most ``CODES_PER_SUBJECT`` (3) codes per phone or email and ``CODES_PER_ORIGIN`` (20) per client address in
  ``WINDOW_MS`` (15 minutes): more requests get the same answer and send nothing.
- A member session lasts ``IDLE_MS`` (15 minutes) idle, ``ABSOLUTE_MS`` (2 hours) at most.
Every step is audited (``member_code_sent``, ``member_signin``, ``member_signin_failed``, ``member_signin_locked``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import peewee

from ledger import admin, pii, store
from ledger.errors import LedgerError
from ledger.sms import balance_query

CODE_TTL_MS = 10 * 60 * 1000
MAX_WRONG = 5
LOCK_MS = 15 * 60 * 1000
WINDOW_MS = 15 * 60 * 1000
CODES_PER_SUBJECT = 3
CODES_PER_ORIGIN = 20
IDLE_MS = 15 * 60 * 1000
ABSOLUTE_MS = 2 * 3600 * 1000


class SigninAttempt(store.BaseModel):
    attempt_hash = peewee.CharField(primary_key=True, max_length=64)  # SHA-256 of the browser's attempt token
    subject_hash = peewee.CharField(max_length=64, index=True)  # the phone's or email's keyed hash
    member_id = peewee.CharField(max_length=40, null=True)  # None: nobody on file (nothing was sent)
    code_hash = peewee.CharField(max_length=64)
    created_ms = peewee.BigIntegerField()
    failures = peewee.IntegerField(default=0)
    done = peewee.BooleanField(default=False)

    class Meta:
        table_name = "member_signin_attempt"


class SigninLimit(store.BaseModel):
    key = peewee.CharField(primary_key=True, max_length=80)  # "subject:<hash>" or "origin:<hash>"
    window_start_ms = peewee.BigIntegerField()
    requests = peewee.IntegerField(default=0)
    locked_until_ms = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "member_signin_limit"


class MemberSession(store.BaseModel):
    token_hash = peewee.CharField(primary_key=True, max_length=64)
    member_id = peewee.CharField(max_length=40, index=True)
    csrf_token = peewee.CharField(max_length=64)
    created_ms = peewee.BigIntegerField()
    last_seen_ms = peewee.BigIntegerField()

    class Meta:
        table_name = "member_session"


MODELS: list[type[peewee.Model]] = [SigninAttempt, SigninLimit, MemberSession]


def create_tables() -> None:
    store.register_models(*MODELS)
    with store.atomic_write():
        store.db.create_tables(MODELS, safe=True)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Subject:
    """What the person typed, read as a phone or an email: its keyed hash, and the one member it names."""

    kind: str  # phone, email
    subject_hash: str
    member: store.Member | None


def read_subject(text: str) -> Subject:
    text = text.strip()[:120]
    keys = pii.active()
    if "@" in text:
        email = pii.normal_email(text)
        if not email or "." not in email.split("@")[-1]:
            raise LedgerError("write your phone number or your email address")
        found = store.Member.select().where(store.Member.email_hash == keys.lookup_hash("email", email))
        members = list(found.limit(2))
        return Subject("email", keys.lookup_hash("email", email), members[0] if len(members) == 1 else None)
    digits = pii.normal_phone(text)
    if not 6 <= len(digits) <= 15:
        raise LedgerError("write your phone number or your email address")
    members = balance_query.members_with_phone(digits)
    canonical = max(balance_query.phone_variants(digits), key=len)
    return Subject("phone", keys.lookup_hash("phone", canonical), members[0] if len(members) == 1 else None)


def _count(key: str, limit: int, now_ms: int) -> bool:
    """Count one request against ``key``; False once past ``limit`` in the window."""
    row = SigninLimit.get_or_none(SigninLimit.key == key)
    if row is None:
        SigninLimit.create(key=key, window_start_ms=now_ms, requests=1)
        return True
    if now_ms - int(row.window_start_ms) > WINDOW_MS:
        row.window_start_ms, row.requests = now_ms, 0
    row.requests = int(row.requests) + 1
    row.save()
    return int(row.requests) <= limit


def locked(subject_hash: str, now_ms: int) -> bool:
    row = SigninLimit.get_or_none(SigninLimit.key == f"subject:{subject_hash}")
    return row is not None and int(row.locked_until_ms) > now_ms


@dataclass(frozen=True)
class CodeRequest:
    attempt_token: str  # for the browser's cookie
    send_to: str | None  # the phone or email on file, when a code is to be sent
    code: str
    member_id: str | None
    channel: str = "sms"  # sms for a phone, mail for an email


def request_code(text: str, *, origin: str, now_ms: int) -> CodeRequest:
    """Record a sign-in attempt for what was typed; say where to send its code (None: send nothing). A phone
    gets its code by SMS, an email by mail, each to what is on file. A member and a stranger cost the same here:
    one transaction (the member's audit entry is written inside it), no sending (``member_codes`` does that)."""
    subject = read_subject(text)
    token = secrets.token_urlsafe(24)
    code = f"{secrets.randbelow(10**6):06d}"
    channel = "mail" if subject.kind == "email" else "sms"
    send_to = None
    with store.atomic_write():
        fresh = _count(f"origin:{_sha(origin)}", CODES_PER_ORIGIN, now_ms)
        fresh = _count(f"subject:{subject.subject_hash}", CODES_PER_SUBJECT, now_ms) and fresh
        is_locked = locked(subject.subject_hash, now_ms)
        member = subject.member if fresh and not is_locked else None
        SigninAttempt.create(attempt_hash=_sha(token), subject_hash=subject.subject_hash,
                             member_id=member.member_id if member is not None else None,
                             code_hash=_sha(f"{token}:{code}"), created_ms=now_ms)
        if member is not None:
            send_to = (balance_query.phone_on_file(member) if channel == "sms"
                       else pii.details_of(member).email) or None
            store.AuditLog.create(at_ms=now_ms, actor=f"member:{member.member_id}", action="member_code_sent",
                                  subject=str(member.member_id), details={"via": channel, "origin": origin})
    return CodeRequest(token, send_to, code, member.member_id if member is not None else None, channel)


@dataclass(frozen=True)
class SigninResult:
    member_id: str | None
    problem: str = ""  # wrong, locked, expired


def check_code(attempt_token: str | None, code: str, *, origin: str, now_ms: int) -> SigninResult:
    """The member the code signs in, or why not. Five wrong codes lock the phone or email."""
    if not attempt_token or len(attempt_token) > 64:
        return SigninResult(None, "expired")
    with store.atomic_write():
        row = SigninAttempt.get_or_none(SigninAttempt.attempt_hash == _sha(attempt_token))
        if row is None or row.done or now_ms - int(row.created_ms) > CODE_TTL_MS:
            return SigninResult(None, "expired")
        if locked(str(row.subject_hash), now_ms):
            return SigninResult(None, "locked")
        given = "".join(ch for ch in code if ch.isdigit())[:6]
        good = hmac.compare_digest(_sha(f"{attempt_token}:{given}"), str(row.code_hash)) and len(given) == 6
        if good and row.member_id is not None:
            row.done = True
            row.save()
            member_id = str(row.member_id)
        else:
            row.failures = int(row.failures) + 1
            row.save()
            if int(row.failures) >= MAX_WRONG:
                row.done = True
                row.save()
                key = f"subject:{row.subject_hash}"
                limit = SigninLimit.get_or_none(SigninLimit.key == key)
                if limit is None:
                    SigninLimit.create(key=key, window_start_ms=now_ms, requests=0, locked_until_ms=now_ms + LOCK_MS)
                else:
                    limit.locked_until_ms = now_ms + LOCK_MS
                    limit.save()
                member_id = ""
            else:
                member_id = ""
    if member_id:
        admin.audit_event("member_signin", member_id, actor=f"member:{member_id}", via="member_page", origin=origin)
        return SigninResult(member_id)
    if int(row.failures) >= MAX_WRONG:
        admin.audit_event("member_signin_locked", str(row.member_id or ""), actor="member_page", origin=origin,
                          failures=int(row.failures))
        return SigninResult(None, "locked")
    admin.audit_event("member_signin_failed", str(row.member_id or ""), actor="member_page", origin=origin,
                      failures=int(row.failures))
    return SigninResult(None, "wrong")


@dataclass(frozen=True)
class MemberSignedIn:
    member_id: str
    csrf_token: str


def start_session(member_id: str, now_ms: int) -> str:
    token = secrets.token_urlsafe(32)
    with store.atomic_write():
        MemberSession.delete().where(MemberSession.last_seen_ms < now_ms - IDLE_MS).execute()
        MemberSession.create(token_hash=_sha(token), member_id=member_id, csrf_token=secrets.token_urlsafe(24),
                             created_ms=now_ms, last_seen_ms=now_ms)
    return token


def find_session(token: str | None, now_ms: int) -> MemberSignedIn | None:
    if not token or len(token) > 128:
        return None
    row = MemberSession.get_or_none(MemberSession.token_hash == _sha(token))
    if row is None:
        return None
    if now_ms - int(row.last_seen_ms) > IDLE_MS or now_ms - int(row.created_ms) > ABSOLUTE_MS:
        MemberSession.delete().where(MemberSession.token_hash == row.token_hash).execute()
        return None
    if now_ms - int(row.last_seen_ms) > 60_000:
        MemberSession.update(last_seen_ms=now_ms).where(MemberSession.token_hash == row.token_hash).execute()
    return MemberSignedIn(str(row.member_id), str(row.csrf_token))


def end_session(token: str | None) -> None:
    if token and len(token) <= 128:
        MemberSession.delete().where(MemberSession.token_hash == _sha(token)).execute()
