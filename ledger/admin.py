"""Administrative operations on the open ledger (``ledger.home.open_ledger``): members, cards, coupons,
terminals, rules and keys. Used by the admin CLI and by the anomaly engine (holding cards).

Every change runs in one write transaction together with its audit-log row. Card status changes also append a
versioned ``Revocation`` row, which is what terminals receive as revocation deltas. A tier change moves member
state, so it is an entry on the ledger's own hash chain (``apply.append_ledger_entry``) and the fold derives it
like any terminal entry.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.cards.keys import check_can_issue, private_key_to_bytes, public_key_bytes
from cardkit.cards.textform import token_to_text
from cardkit.cards.token import TOKEN_VERSION, new_card_id, sign_card_token
from cardkit.cards.verdict import CardClaims
from cardkit.core.members import CardStatus, Tier
from cardkit.core.money import Money
from cardkit.core.rules import Rules, rules_from_toml
from cardkit.errors import CardposError
from cardkit.journal import EntryKind
from ledger import apply, enroll_codes, pii, projection, publish, store, verify
from ledger.errors import LedgerError
from ledger.home import Ledger, current

DAY_S = 86_400
DEFAULT_CARD_DAYS = 2 * 365
ENROLL_CODE_TTL_S = 24 * 3600
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud and typed by people
_REASON = re.compile(r"[ -~]{1,32}")


@dataclass(frozen=True)
class IssuedCard:
    card_id: str
    member_id: str
    tier: Tier
    kid: str
    token: bytes
    token_text: str
    card_private_key: bytes | None  # raw Ed25519 seed of a challenge-response card; shown once, never stored


def _ledger() -> Ledger:
    return current()


def _audit(ledger: Ledger, actor: str, action: str, subject: str, **details: Any) -> None:
    store.AuditLog.create(at_ms=ledger.now_ms(), actor=actor, action=action, subject=subject, details=details)


def record_member_read(member_ids: list[str], *, actor: str, via: str, origin: str = "",
                       action: str = "member_view") -> None:
    """Audit a read of members' personal data: one entry per read, a bulk read (a search page, a pull) listing
    every member id it showed (``member_view`` has the member as its subject)."""
    ledger = _ledger()
    subject = member_ids[0] if action == "member_view" and len(member_ids) == 1 else ""
    with store.atomic_write():
        _audit(ledger, actor, action, subject, via=via, origin=origin, member_ids=list(member_ids),
               count=len(member_ids))


def audit_event(action: str, subject: str = "", *, actor: str, **details: Any) -> None:
    """An audit-log entry for something done outside this module (``ledger init``, a console sign-in)."""
    ledger = _ledger()
    with store.atomic_write():
        _audit(ledger, actor, action, subject, **details)


def _text_id(prefix: str, ledger: Ledger, nbytes: int = 5) -> str:
    return prefix + ledger.randbytes(nbytes).hex()


# -- members --------------------------------------------------------------------------------------------------
def _member(member_id: str) -> store.Member:
    member = store.Member.get_or_none(store.Member.member_id == member_id)
    if member is None:
        raise LedgerError(f"there is no member {member_id!r}")
    return member


def add_member(name: str, *, store_id: str = "store-1", phone: str = "", email: str = "", notes: str = "",
               prefs: dict[str, str] | None = None, tier: str | Tier = Tier.STANDARD, currency: str = "CNY",
               balance: int = 0, points: int = 0, member_id: str | None = None, actor: str = "admin") -> str:
    """Create a member with an opening balance (minor units) and points; returns the member id."""
    ledger = _ledger()
    tier = Tier.parse(tier) if isinstance(tier, str) else tier
    Money(balance, currency)  # checks the currency and that the balance is an integer
    if type(points) is not int:
        raise LedgerError("points must be a whole number")
    if not name.strip():
        raise LedgerError("a member needs a name")
    member_id = member_id or _text_id("m", ledger)
    if not re.fullmatch(r"[!-~]{1,32}", member_id):
        raise LedgerError("a member id is 1 to 32 printable characters without spaces")
    with store.atomic_write():
        if store.Member.get_or_none(store.Member.member_id == member_id) is not None:
            raise LedgerError(f"member {member_id} already exists")
        version = store.bump("members")
        details = pii.MemberDetails(name=name.strip(), phone=phone, email=email, notes=notes, prefs=dict(prefs or {}))
        pii.create_member(member_id, details, store_id=store_id, opening_tier=tier.value, currency=currency,
                          opening_balance=balance, opening_points=points, created_ms=ledger.now_ms(),
                          version=version)
        _audit(ledger, actor, "member_add", member_id, store_id=store_id, tier=tier.value, balance=balance,
               points=points)
    return member_id


def update_member(member_id: str, *, name: str | None = None, phone: str | None = None, email: str | None = None,
                  notes: str | None = None, prefs: dict[str, str] | None = None, store_id: str | None = None,
                  actor: str = "admin") -> None:
    """Change a member's details; ``prefs`` are merged (an empty value removes a preference)."""
    ledger = _ledger()
    with store.atomic_write():
        version = store.bump("members")
        member = _member(member_id)
        if store_id is not None and store_id != member.store_id:
            store.MemberMove.create(member_id=member_id, from_store=member.store_id, version=version)
        if store_id is not None:
            member.store_id = store_id
        details = pii.details_of(member)
        edits: dict[str, Any] = {k: v for k, v in (("name", name), ("phone", phone), ("email", email),
                                                   ("notes", notes)) if v is not None}
        if prefs is not None:
            merged = dict(details.prefs)
            for key, value in prefs.items():
                if value == "":
                    merged.pop(key, None)
                else:
                    merged[key] = value
            edits["prefs"] = merged
        requested = {"name": name, "phone": phone, "email": email, "notes": notes, "store_id": store_id,
                     "prefs": prefs}
        changed = [field_name for field_name, value in requested.items() if value is not None]
        if edits:
            pii.put_details(member, dataclasses.replace(details, **edits))
        member.version = version
        member.save()
        # Field names only: the audit log must not become a second copy of people's details.
        _audit(ledger, actor, "member_update", member_id, fields=changed)


def member_view(member_id: str, *, history: int = 50, actor: str = "admin", via: str = "python",
                origin: str = "") -> dict[str, Any]:
    """Everything about a member for people: balance, points, tier, coupons, cards and recent history. A read of
    personal data: recorded in the audit log as ``actor`` reading through ``via`` (cli, console, api) from
    ``origin`` (an address or host)."""
    ledger = _ledger()
    member = _member(member_id)
    record_member_read([member_id], actor=actor, via=via, origin=origin)
    snapshot = publish.member_snapshot(member, ledger.now_s())
    state = projection.projected_state(member)
    coupon_rows = store.Coupon.select().where(store.Coupon.member_id == member_id).order_by(store.Coupon.coupon_id)
    coupons = [{**publish.coupon_mapping(c), "used": c.coupon_id in state.used_coupons} for c in coupon_rows]
    cards = [{"card_id": c.card_id, "tier": c.tier, "status": c.status, "reason": c.status_reason, "kid": c.kid,
              "issued_at": int(c.issued_at), "expires_at": int(c.expires_at), "replaced_by": c.replaced_by,
              "challenge": bool(c.challenge)}
             for c in store.Card.select().where(store.Card.member_id == member_id)
             .order_by(store.Card.issued_at, store.Card.card_id)]
    rows = (store.AppliedEntry.select().where(store.AppliedEntry.member_id == member_id)
            .order_by(store.AppliedEntry.id.desc()).limit(history))
    entries = [{"terminal_id": r.terminal_id, "seq": int(r.seq), "uuid": r.uuid, "kind": r.kind,
                "wall_ms": int(r.wall_ms),
                "payload": pii.entry_payload(str(r.terminal_id), int(r.seq), r.payload, r.pii)} for r in rows]
    entries.reverse()
    return {
        **{k: v for k, v in snapshot.items() if k not in ("coupons", "state")},
        "store_id": member.store_id,
        "balance_text": str(Money(state.balance, state.currency)),
        "coupons": coupons, "cards": cards, "history": entries,
        "entries": store.AppliedEntry.select().where(store.AppliedEntry.member_id == member_id).count(),
    }


def find_members(*, phone: str | None = None, email: str | None = None,
                 name: str | None = None) -> list[dict[str, Any]]:
    """Members whose phone, email and name words (those given) match exactly, through their keyed hashes."""
    found = []
    for member in pii.find_members(phone=phone, email=email, name=name):
        details = pii.details_of(member)
        found.append({"member_id": member.member_id, "name": details.name, "phone": details.phone,
                      "email": details.email, "store_id": member.store_id})
    return found


# -- cards ----------------------------------------------------------------------------------------------------
def _card(card_id: str) -> store.Card:
    card = store.Card.get_or_none(store.Card.card_id == card_id)
    if card is None:
        raise LedgerError(f"there is no card {card_id!r}")
    return card


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    if not _REASON.fullmatch(reason):
        raise LedgerError("a reason is 1 to 32 printable ASCII characters (lost, stolen, fraud, ...)")
    return reason


def _revocation_row(ledger: Ledger, card_id: str, status: str, reason: str) -> int:
    version = store.bump("revocations")
    store.Revocation.create(version=version, card_id=card_id, status=status, reason=reason,
                            changed_ms=ledger.now_ms())
    return version


def _new_card_id(ledger: Ledger) -> str:
    card_id = new_card_id(ledger.randbytes)
    while store.Card.get_or_none(store.Card.card_id == card_id) is not None:
        card_id = new_card_id(ledger.randbytes)
    return card_id


def _issue(ledger: Ledger, member: store.Member, card_id: str, tier: Tier, challenge: bool,
           expires_days: int) -> IssuedCard:
    """Sign and record a new card (inside the caller's transaction, after any tier change)."""
    if expires_days <= 0:
        raise LedgerError("a card must be valid for at least one day")
    now = ledger.now_s()
    key, issuer_key = ledger.keys.current_issuer(ledger.issuer)
    try:
        check_can_issue(issuer_key, now)
    except CardposError as exc:
        raise LedgerError(str(exc), orig=exc) from exc
    card_private: Ed25519PrivateKey | None = None
    if challenge:
        card_private = Ed25519PrivateKey.from_private_bytes(ledger.randbytes(32))
    claims = CardClaims(version=TOKEN_VERSION, issuer=ledger.issuer, card_id=card_id,
                        member_id=str(member.member_id), tier=tier, issued_at=now, not_before=now,
                        expires_at=now + expires_days * DAY_S,
                        card_public_key=public_key_bytes(card_private) if card_private else None)
    token = sign_card_token(claims, key, issuer_key.kid)
    store.Card.create(card_id=card_id, member_id=member.member_id, tier=tier.value, status=CardStatus.ACTIVE.value,
                      kid=issuer_key.kid, issued_at=now, expires_at=claims.expires_at, challenge=challenge,
                      card_public_key=claims.card_public_key)
    version = store.bump("members")  # the member's card list is part of its snapshot
    store.Member.update(version=version).where(store.Member.member_id == member.member_id).execute()
    return IssuedCard(card_id=card_id, member_id=str(member.member_id), tier=tier, kid=issuer_key.kid, token=token,
                      token_text=token_to_text(token),
                      card_private_key=private_key_to_bytes(card_private) if card_private else None)


def _set_tier(ledger: Ledger, member: store.Member, tier: Tier, card_id: str, actor: str) -> None:
    """Move the member to ``tier`` through an entry on the ledger's chain (no-op when already there)."""
    state = projection.projected_state(member)
    if state.tier == tier:
        return
    payload = {"member": str(member.member_id), "card": card_id, "from": state.tier.value, "to": tier.value}
    apply.append_ledger_entry(EntryKind.TIER_UPGRADE, payload, actor=actor, now_ms=ledger.now_ms(),
                              randbytes=ledger.randbytes)


def issue_card(member_id: str, tier: str | Tier | None = None, *, challenge: bool = False,
               expires_days: int = DEFAULT_CARD_DAYS, actor: str = "admin") -> IssuedCard:
    """Issue a card under the current issuer key. ``tier`` defaults to the member's tier; another tier also
    moves the member to it. ``challenge`` makes a challenge-response card with its own key pair."""
    ledger = _ledger()
    with store.atomic_write():
        member = _member(member_id)
        state = projection.projected_state(member)
        card_tier = state.tier if tier is None else (Tier.parse(tier) if isinstance(tier, str) else tier)
        card_id = _new_card_id(ledger)
        # Lock order (PostgreSQL): the ledger chain's row, then the members counter, then revocations.
        _set_tier(ledger, member, card_tier, card_id, actor)
        issued = _issue(ledger, member, card_id, card_tier, challenge, expires_days)
        _audit(ledger, actor, "card_issue", issued.card_id, member_id=member_id, tier=card_tier.value,
               kid=issued.kid, challenge=challenge)
    return issued


def revoke_card(card_id: str, reason: str, actor: str = "admin") -> int:
    """Revoke a card for good (lost, stolen, fraud, ...); returns the revocation version."""
    ledger = _ledger()
    reason = _check_reason(reason)
    with store.atomic_write():
        card = _card(card_id)
        if card.status in (CardStatus.REVOKED.value, CardStatus.REPLACED.value):
            raise LedgerError(f"card {card_id} is already {card.status}")
        card.status = CardStatus.REVOKED.value
        card.status_reason = reason
        card.save()
        version = _revocation_row(ledger, card_id, "revoked", reason)
        _audit(ledger, actor, "card_revoke", card_id, reason=reason, version=version)
    return version


def hold_card(card_id: str, reason: str = "hold", actor: str = "admin") -> int:
    """Put an active card on hold (reversible); returns the revocation version."""
    ledger = _ledger()
    reason = _check_reason(reason)
    with store.atomic_write():
        card = _card(card_id)
        if card.status != CardStatus.ACTIVE.value:
            raise LedgerError(f"card {card_id} is {card.status}; only an active card can be put on hold")
        card.status = CardStatus.ON_HOLD.value
        card.status_reason = reason
        card.save()
        version = _revocation_row(ledger, card_id, "on_hold", reason)
        _audit(ledger, actor, "card_hold", card_id, reason=reason, version=version)
    return version


def unhold_card(card_id: str, actor: str = "admin") -> int:
    ledger = _ledger()
    with store.atomic_write():
        card = _card(card_id)
        if card.status != CardStatus.ON_HOLD.value:
            raise LedgerError(f"card {card_id} is {card.status}, not on hold")
        card.status = CardStatus.ACTIVE.value
        card.status_reason = ""
        card.save()
        version = _revocation_row(ledger, card_id, "active", "unhold")
        _audit(ledger, actor, "card_unhold", card_id, version=version)
    return version


def replace_card(card_id: str, tier: str | Tier | None = None, actor: str = "admin", *,
                 expires_days: int = DEFAULT_CARD_DAYS) -> IssuedCard:
    """A new card for the member (at ``tier``, default the old card's tier); the old card is revoked as
    ``replaced``. Balance, points, coupons, preferences and history belong to the member, so the new card shows
    them all."""
    ledger = _ledger()
    with store.atomic_write():
        old = _card(card_id)
        if old.status in (CardStatus.REVOKED.value, CardStatus.REPLACED.value):
            raise LedgerError(f"card {card_id} is {old.status} and cannot be replaced")
        member = _member(str(old.member_id))
        new_tier = Tier(str(old.tier)) if tier is None else (Tier.parse(tier) if isinstance(tier, str) else tier)
        new_id = _new_card_id(ledger)
        _set_tier(ledger, member, new_tier, new_id, actor)
        issued = _issue(ledger, member, new_id, new_tier, bool(old.challenge), expires_days)
        old.status = CardStatus.REPLACED.value
        old.status_reason = "replaced"
        old.replaced_by = issued.card_id
        old.save()
        version = _revocation_row(ledger, card_id, "revoked", "replaced")
        _audit(ledger, actor, "card_replace", card_id, new_card=issued.card_id, tier=new_tier.value, version=version)
    return issued


# -- coupons --------------------------------------------------------------------------------------------------
def issue_coupon(member_id: str, *, amount_off: int | None = None, percent_off_bp: int | None = None,
                 min_spend: int | None = None, valid_days: int = 90, stackable: bool = False,
                 actor: str = "admin") -> str:
    """Give a member an e-coupon (exactly one of ``amount_off`` minor units / ``percent_off_bp``)."""
    ledger = _ledger()
    if (amount_off is None) == (percent_off_bp is None):
        raise LedgerError("a coupon takes either an amount off or a percentage off, not both or neither")
    if amount_off is not None and amount_off <= 0:
        raise LedgerError("a coupon's amount off must be more than zero")
    if percent_off_bp is not None and not 0 < percent_off_bp <= 10_000:
        raise LedgerError("a coupon's percentage off is between 0.01% and 100%")
    if valid_days <= 0:
        raise LedgerError("a coupon must be valid for at least one day")
    with store.atomic_write():
        member = _member(member_id)
        coupon_id = _text_id("c", ledger)
        now = ledger.now_s()
        store.Coupon.create(coupon_id=coupon_id, member_id=member_id, currency=member.currency,
                            amount_off=amount_off, percent_off_bp=percent_off_bp, min_spend=min_spend,
                            valid_from=now, valid_until=now + valid_days * DAY_S, stackable=stackable,
                            issued_ms=ledger.now_ms())
        member.version = store.bump("members")
        member.save()
        _audit(ledger, actor, "coupon_issue", coupon_id, member_id=member_id, amount_off=amount_off,
               percent_off_bp=percent_off_bp)
    return coupon_id


# -- terminals ------------------------------------------------------------------------------------------------
def _new_code(ledger: Ledger) -> str:
    """12 characters (~59 bits) from CODE_ALPHABET, uniformly: bytes past the last whole multiple are redrawn."""
    limit = 256 - 256 % len(CODE_ALPHABET)
    chars: list[str] = []
    for _ in range(1000):  # bounded; a draw is refused with probability 8/256
        chars.extend(CODE_ALPHABET[b % len(CODE_ALPHABET)] for b in ledger.randbytes(16) if b < limit)
        if len(chars) >= 12:
            break
    else:
        raise LedgerError("the random source keeps returning unusable bytes")
    return f"{''.join(chars[:4])}-{''.join(chars[4:8])}-{''.join(chars[8:12])}"


def add_terminal(name: str, store_id: str = "store-1", *, actor: str = "admin",
                 code_ttl_s: int = ENROLL_CODE_TTL_S) -> tuple[str, str]:
    """Register a terminal and return ``(terminal_id, one_time_code)``; the code itself is not stored (its id and
    its wrapped MAC key are: ``ledger.enroll_codes``)."""
    ledger = _ledger()
    if not name.strip():
        raise LedgerError("a terminal needs a name")
    terminal_id = _text_id("t", ledger)
    code = _new_code(ledger)
    now = ledger.now_ms()
    with store.atomic_write():
        store.Terminal.create(terminal_id=terminal_id, name=name.strip(), store_id=store_id, status="pending",
                              enroll_code_hash=enroll_codes.code_id_hex(code),
                              code_expires_ms=now + code_ttl_s * 1000, created_ms=now)
        enroll_codes.remember(ledger, terminal_id, code)
        _audit(ledger, actor, "terminal_add", terminal_id, name=name.strip(), store_id=store_id)
    return terminal_id, code


def _set_terminal_status(terminal_id: str, status: str, actor: str) -> None:
    ledger = _ledger()
    with store.atomic_write():
        row = apply.lock_terminal(terminal_id)
        if row is None or row.status == "internal":
            raise LedgerError(f"there is no terminal {terminal_id!r}")
        if row.status == "revoked":
            raise LedgerError(f"terminal {terminal_id} is revoked for good")
        store.Terminal.update(status=status, enroll_code_hash=None).where(
            store.Terminal.terminal_id == terminal_id).execute()
        _audit(ledger, actor, f"terminal_{'disable' if status == 'disabled' else status}", terminal_id,
               previous=row.status)


def disable_terminal(terminal_id: str, actor: str = "admin") -> None:
    """Refuse the terminal's batches and pulls from now on (``enable_terminal`` undoes it)."""
    _set_terminal_status(terminal_id, "disabled", actor)


def enable_terminal(terminal_id: str, actor: str = "admin") -> None:
    row = store.Terminal.get_or_none(store.Terminal.terminal_id == terminal_id)
    if row is not None and not row.identity_key:
        raise LedgerError(f"terminal {terminal_id} has not enrolled yet")
    _set_terminal_status(terminal_id, "active", actor)


def revoke_terminal(terminal_id: str, actor: str = "admin") -> None:
    """Refuse the terminal for good (a stolen terminal); it must be added and enrolled again."""
    _set_terminal_status(terminal_id, "revoked", actor)


def list_terminals() -> list[dict[str, Any]]:
    rows = store.Terminal.select().where(store.Terminal.status != "internal").order_by(store.Terminal.created_ms,
                                                                                       store.Terminal.terminal_id)
    return [{"terminal_id": r.terminal_id, "name": r.name, "store_id": r.store_id, "status": r.status,
             "suite": r.hpke_suite, "last_seq": int(r.last_seq), "last_seen_ms": r.last_seen_ms} for r in rows]


# -- rules and keys -------------------------------------------------------------------------------------------
def load_rules(toml_text: str, actor: str = "admin") -> int:
    """Check and store a rules file as the next version (terminals get it on their next pull)."""
    ledger = _ledger()
    try:
        rules = rules_from_toml(toml_text)
    except CardposError as exc:
        raise LedgerError(str(exc), orig=exc) from exc
    if rules.merchant is not None:
        raise LedgerError("rules: [merchant] is not part of the program's rules; a merchant's own rules are its "
                          "overrides (cardpos ledger merchant update)")
    with store.atomic_write():
        version = max(publish.rules_version(), 1) + 1  # version 1 is the built-in default
        mapping = Rules.from_mapping({**rules.to_mapping(), "version": version}).to_mapping()
        store.RulesVersion.create(version=version, mapping=mapping, toml_text=toml_text, loaded_ms=ledger.now_ms(),
                                  actor=actor)
        store.bump("rules")
        _audit(ledger, actor, "rules_load", f"v{version}", file_version=rules.version)
    return version


def rotate_issuer_key(actor: str = "admin") -> str:
    """Make a new current issuer key; returns its kid. Cards under older keys keep verifying until retired."""
    ledger = _ledger()
    with store.atomic_write():
        kid = ledger.keys.new_issuer_key(ledger.issuer, ledger.now_s())
        _audit(ledger, actor, "key_rotate", kid)
    return kid


def retire_issuer_key(kid: str, actor: str = "admin") -> None:
    """Stop every card signed under ``kid`` from verifying (once terminals pull the new trust list)."""
    ledger = _ledger()
    with store.atomic_write():
        ledger.keys.retire_issuer_key(kid, ledger.now_s())
        _audit(ledger, actor, "key_retire", kid)


def list_keys() -> list[dict[str, Any]]:
    rows = store.KeyRecord.select().order_by(store.KeyRecord.created_ms, store.KeyRecord.kid)
    return [{"kid": r.kid, "kind": r.kind, "public_key": bytes(r.public_key).hex()[:64],
             "not_before": int(r.not_before), "not_after": int(r.not_after), "current": bool(r.current),
             "retired_ms": r.retired_ms} for r in rows]


def audit_log(limit: int = 100) -> list[dict[str, Any]]:
    rows = store.AuditLog.select().order_by(store.AuditLog.id.desc()).limit(limit)
    return [{"at_ms": int(r.at_ms), "actor": r.actor, "action": r.action, "subject": r.subject,
             "details": r.details} for r in rows]


def rejected_batches(limit: int = 100) -> list[dict[str, Any]]:
    rows = store.RejectedBatch.select().order_by(store.RejectedBatch.id.desc()).limit(limit)
    return [{"at_ms": int(r.at_ms), "terminal_id": r.terminal_id, "batch_id": r.batch_id, "reason": r.reason,
             "detail": r.detail, "seqs": r.seqs} for r in rows]


def verify_ledger() -> list[str]:
    """Every invariant the ledger promises, recomputed from the entries; returns the problems found."""
    return verify.verify_all()


# -- points expiry --------------------------------------------------------------------------------------------
def _unexpired_lots(member: store.Member, cutoff_ms: int) -> int:
    """Points earned before ``cutoff_ms`` and not yet spent, oldest spent first (FIFO)."""
    lots: list[list[int]] = [[int(member.created_ms), int(member.opening_points)]]
    rows = (store.AppliedEntry.select(store.AppliedEntry.kind, store.AppliedEntry.payload, store.AppliedEntry.wall_ms)
            .where(store.AppliedEntry.member_id == member.member_id).order_by(store.AppliedEntry.id))
    for row in rows.iterator():
        kind, payload = str(row.kind), cbor2.loads(bytes(row.payload))
        get = payload.get
        earned = spent = 0
        if kind == EntryKind.SALE:
            earned, spent = get("pts_earn", 0), get("pts_redeem", 0)
        elif kind in (EntryKind.REFUND, EntryKind.VOID):
            earned, spent = get("pts_back", 0), get("pts_rev", 0)
        elif kind == EntryKind.REDEEM:
            spent = get("pts", 0)
        earned = earned if type(earned) is int and earned > 0 else 0
        spent = spent if type(spent) is int and spent > 0 else 0
        if earned:
            lots.append([int(row.wall_ms), earned])
        for lot in lots:
            if spent <= 0:
                break
            take = min(lot[1], spent)
            lot[1] -= take
            spent -= take
    return sum(amount for at, amount in lots if at < cutoff_ms)


def expire_points(actor: str = "admin") -> dict[str, int]:
    """Take back points older than the rules' ``points.expiry_days`` that were never spent, as ``redeem``
    entries (item ``points_expired``) on the ledger's chain, so terminals and ``verify`` see them like any
    other redemption. Run it daily; returns the points taken per member."""
    ledger = _ledger()
    cutoff_ms = ledger.now_ms() - publish.current_rules().points.expiry_days * DAY_S * 1000
    taken: dict[str, int] = {}
    for member in store.Member.select().order_by(store.Member.member_id):
        with store.atomic_write():
            stale = _unexpired_lots(member, cutoff_ms)
            points = projection.projected_state(member).points
            amount = min(stale, points)
            if amount <= 0:
                continue
            payload = {"card": None, "member": str(member.member_id), "pts": amount, "item": "points_expired",
                       "offline": False}
            apply.append_ledger_entry(EntryKind.REDEEM, payload, actor=actor, now_ms=ledger.now_ms(),
                                      randbytes=ledger.randbytes)
            _audit(ledger, actor, "points_expire", str(member.member_id), points=amount)
            taken[str(member.member_id)] = amount
    return taken
