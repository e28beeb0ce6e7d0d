"""A terminal's online look-ups: a member by card (members at every store) and an operation by uuid (refunds anywhere).

Both requests are signed by the terminal like pulls (``ledger.enroll.authenticate``) and answered with the root
key's signature bound to the request's nonce (``cardkit.lookup_answers``). The member's snapshot is sealed to the
terminal and signed exactly like a pull's member snapshots (``ledger.publish.members_document``), and its read is
written to the audit log before it is sent (like pulls); when the audit entry cannot be written, nothing is sent.
Specification: docs/sync-protocol.md, "Members at every store" and "Refunds anywhere".
"""

from __future__ import annotations

import logging
from typing import Any

from cardkit.journal import EntryKind
from cardkit.lookup_answers import OriginalOperation, lookup_fields, original_fields
from cardkit.pulldocs import MemberSnapshot
from ledger import admin, pii, publish, store
from ledger.enroll import Caller, RequestRefused, cleartext_members_allowed
from ledger.errors import LedgerStorageError
from ledger.home import Ledger
from ledger.storage_errors import is_database_error

log = logging.getLogger("cardpos.ledger.lookup")

MAX_ID_CHARS = 64
CONSISTENT_READ_TRIES = 3
"""Rounds of reading the terminal's last seq around the snapshot: equal on both sides means no batch of this
terminal was applied in between, so ``folded_seq`` says exactly which of its entries the snapshot counts."""
REVERSIBLE_KINDS = (EntryKind.SALE, EntryKind.TOPUP)
REVERSAL_KINDS = (EntryKind.REFUND, EntryKind.VOID)


def _terminal_seq(terminal_id: str) -> int:
    row = store.Terminal.select(store.Terminal.last_seq).where(store.Terminal.terminal_id == terminal_id).first()
    return int(row.last_seq) if row is not None else 0


def _seal_key(caller: Caller) -> tuple[str, str, bytes] | None:
    key = store.TerminalSealKey.get_or_none(store.TerminalSealKey.terminal_id == caller.terminal_id)
    if key is None and not cleartext_members_allowed():
        raise RequestRefused(403, "reenroll_required",
                             f"terminal {caller.terminal_id} was enrolled before member data was sealed to "
                             "terminals; enroll it again")
    return None if key is None else (caller.terminal_id, str(key.suite), bytes(key.public_key))


def member_lookup(ledger: Ledger, caller: Caller, card_id: str, nonce: bytes, *, origin: str) -> dict[str, Any]:
    """The signed answer to ``GET /v1/members/lookup?card=…``: the card's member, sealed to the caller.

    Refused 404 ``unknown_card`` for a card the ledger never issued, 403 ``card_revoked`` for a revoked one, 503
    ``audit_unavailable`` when the read cannot be audited.
    """
    if not card_id or len(card_id) > MAX_ID_CHARS:
        raise RequestRefused(400, "malformed", f"the card is 1 to {MAX_ID_CHARS} characters")
    card = store.Card.get_or_none(store.Card.card_id == card_id)
    member = store.Member.get_or_none(store.Member.member_id == card.member_id) if card is not None else None
    if card is None or member is None:
        raise RequestRefused(404, "unknown_card", f"the ledger has no card {card_id}")
    if card.status == "revoked":
        raise RequestRefused(403, "card_revoked", f"card {card_id} is revoked")
    seal_to = _seal_key(caller)
    for _ in range(CONSISTENT_READ_TRIES):
        before = _terminal_seq(caller.terminal_id)
        version = publish.members_version()
        member = store.Member.get_by_id(member.member_id)
        snapshot = publish.member_snapshot(member, ledger.now_s())
        folded_seq = _terminal_seq(caller.terminal_id)
        if folded_seq == before:
            break
    else:
        raise RequestRefused(503, "busy", "this terminal's batches are being applied; try again",
                             headers={"Retry-After": "1"})
    document = publish.members_document(
        ledger, MemberSnapshot(version=version, since=version, store_id=str(member.store_id), members=[snapshot]),
        seal_to)
    try:
        admin.record_member_read([str(member.member_id)], actor=f"terminal:{caller.terminal_id}", via="api",
                                 origin=origin, action="member_lookup")
    except Exception as exc:
        if not isinstance(exc, LedgerStorageError) and not is_database_error(exc):
            raise
        log.warning("member look-up withheld, its read could not be audited: %s", exc)
        raise RequestRefused(503, "audit_unavailable",
                             "the member's data cannot be sent now (its read could not be audited); try again",
                             headers={"Retry-After": "1"}) from exc
    return lookup_fields(caller.terminal_id, nonce, card_id, str(member.member_id), document, folded_seq,
                         ledger.keys.root())


def original_operation(ledger: Ledger, caller: Caller, entry_uuid: str, nonce: bytes) -> dict[str, Any]:
    """The signed answer to ``GET /v1/operations/original?uuid=…``: a sale or top-up applied from any terminal of
    the program, with the total refunded and whether it was voided (anywhere). 404 ``unknown_operation`` when the
    ledger has not received it (yet), 409 ``not_reversible`` for another kind."""
    if not entry_uuid or len(entry_uuid) > MAX_ID_CHARS:
        raise RequestRefused(400, "malformed", f"the uuid is 1 to {MAX_ID_CHARS} characters")
    row = store.AppliedEntry.select().where(store.AppliedEntry.uuid == entry_uuid).first()
    if row is None:
        raise RequestRefused(404, "unknown_operation",
                             f"the ledger has no operation {entry_uuid} (not recorded, or not synced yet)")
    if row.kind not in REVERSIBLE_KINDS or not row.member_id:
        raise RequestRefused(409, "not_reversible", f"operation {entry_uuid} is a {row.kind}; only a sale or a "
                                                    "top-up can be reversed")
    payload = pii.entry_payload(str(row.terminal_id), int(row.seq), bytes(row.payload), row.pii)
    refunded, voided = 0, False
    reversals = (store.AppliedEntry.select().where((store.AppliedEntry.member_id == row.member_id)
                                                   & store.AppliedEntry.kind.in_(list(REVERSAL_KINDS))
                                                   & (store.AppliedEntry.id > row.id)))
    for later in reversals.iterator():
        later_payload = pii.entry_payload(str(later.terminal_id), int(later.seq), bytes(later.payload), later.pii)
        if later_payload.get("orig") != entry_uuid:
            continue
        if later.kind == EntryKind.REFUND:
            refunded += int(later_payload.get("amount", 0))
        else:
            voided = True
    card = payload.get("card")
    original = OriginalOperation(uuid=entry_uuid, kind=str(row.kind), member_id=str(row.member_id),
                                 card_id=card if isinstance(card, str) else None, terminal_id=str(row.terminal_id),
                                 wall_ms=int(row.wall_ms), payload=payload, refunded=refunded, voided=voided)
    return original_fields(caller.terminal_id, nonce, original, ledger.keys.root())
