"""Ingest one sealed batch: open it, check sequence and chain, apply each entry exactly once, ack.

Exactly once holds under retries and concurrency because (1) the whole batch applies in one transaction,
(2) the terminal row is locked for that transaction (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` takes the database write lock), so the last applied sequence read is the truth, and
(3) ``UNIQUE(terminal_id, seq)`` refuses any second copy that slipped past both.

Outcomes, per entry of the batch in sequence order:
- seq <= last applied: the stored entry must have the same hash (a duplicate from a retry: counted, not
  applied); a different hash is ``tampered`` and refuses the whole batch.
- seq == last applied + 1: its ``prev_hash`` must be the stored chain head (else ``broken_chain``); applied.
- seq > last applied + 1: ``sequence_gap``; nothing is applied and the answer carries the current ack.

Each new entry is then judged by ``ledger.semantics`` (the card is the member's, the member is served at the
terminal's store, a refund or void names an original and returns no more than is left of it, amounts and times
within bounds). One that fails is *quarantined*: journaled (the chain advances over it, so the terminal's later
entries still apply) but not applied; the answer lists its seq in ``quarantined``.

A refusal of a signed batch (an enrolled terminal's) is recorded (rejected-batches log and audit log) and
published after the transaction. A refusal of an unsigned one (no valid signature, an unknown terminal, not an
envelope) proves nothing about its sender: nothing of it is stored here (``IngestRejected.unsigned``; the API's
edge counts it per source through ``ledger.noise``), and what it claims is never echoed beyond a cut, sanitized
form.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import peewee

from cardkit.envelope import BatchRejected, OpenedBatch, open_batch
from cardkit.journal import JournalEntry
from ledger import apply, events, noise, quarantine, semantics, store
from ledger.errors import LedgerError, LedgerStorageError
from ledger.home import Ledger, current
from ledger.storage_errors import classify, is_contention

log = logging.getLogger("cardpos.ledger.ingest")

# HTTP status per refusal reason (docs/internals.md).
REASON_STATUS: dict[str, int] = {
    "unknown_terminal": 403,
    "disabled_terminal": 403,
    "bad_signature": 403,
    "decrypt_failed": 400,
    "malformed": 400,
    "broken_chain": 400,
    "tampered": 400,
    "sequence_gap": 409,
}
SIGNED_REASONS = frozenset({"decrypt_failed", "malformed", "broken_chain"})
"""Refusals ``open_batch`` makes after the terminal's signature checked out; any other is unauthenticated."""
UNSIGNED_MESSAGES: dict[str, str] = {
    "unknown_terminal": "terminal {terminal} is not enrolled with this ledger",
    "bad_signature": "the batch is not signed by the key of terminal {terminal}",
}
MAX_BATCH_ID = 64
MAX_DETAIL = 1000


class IngestRejected(LedgerError):
    """A batch the ledger refused; ``reason`` is the API error code."""

    title = "Batch refused"

    def __init__(self, reason: str, message: str, *, terminal_id: str | None = None, acked_seq: int | None = None,
                 seqs: list[int] | None = None, orig: BaseException | None = None, batch_id: str | None = None,
                 acked_hash: bytes | None = None, unsigned: bool = False, claimed: str | None = None) -> None:
        super().__init__(message, orig=orig)
        self.reason = reason
        self.terminal_id = terminal_id
        # An unsigned refusal (nothing recorded): the caller counts it per source with the id it ``claimed``.
        self.unsigned = unsigned
        self.claimed = claimed
        self.acked_seq = acked_seq
        self.seqs = seqs or []
        # Set only for an authenticated batch: the ledger signs the ack it carries (``acked_hash`` is the hash of
        # entry ``acked_seq`` as the ledger holds it).
        self.batch_id = batch_id
        self.acked_hash = acked_hash

    @property
    def status(self) -> int:
        return REASON_STATUS.get(self.reason, 400)


class IngestBusy(LedgerStorageError):
    """The database could not take the batch now (locked, serialisation conflict); retry shortly."""

    title = "Ledger busy"


def _busy(exc: peewee.OperationalError) -> IngestBusy:
    return IngestBusy("the ledger database is busy; try again shortly", failure=classify(exc), orig=exc)


@dataclass(frozen=True)
class IngestResult:
    acked_seq: int
    applied: int  # new entries applied (quarantined ones are journaled, not applied, and not counted here)
    duplicates: int
    terminal_id: str = ""
    replayed: bool = False
    new_entries: list[JournalEntry] = field(default_factory=list, repr=False)
    batch_id: str = ""
    acked_hash: bytes = b""  # hash of entry ``acked_seq`` as the ledger holds it: the signed ack names it
    quarantined: list[int] = field(default_factory=list)
    """Seqs of this batch the ledger quarantined, now or when it first received them."""
    verdicts: dict[int, semantics.Quarantine] = field(default_factory=dict, repr=False)


def _lookup_key(terminal_id: str) -> bytes | None:
    if not semantics.valid_id(terminal_id, 40):
        return None  # not an id this ledger makes: no query with whatever it is
    # Plain SQL: building this query with peewee cost more than the rest of refusing an unsigned batch.
    row = store.db.execute_sql(
        f'SELECT "identity_key", "status" FROM "{store.Terminal._meta.table_name}" WHERE "terminal_id" = '
        f'{store.db.param}', (terminal_id,)).fetchone()
    if row is None or not row[0] or row[1] == "internal":
        return None
    return bytes.fromhex(str(row[0]))


def ingest_batch(envelope: bytes, *, now_ms: int, ledger: Ledger | None = None,
                 semantic_checks: bool = True) -> IngestResult:
    """Apply a sealed batch exactly once; raise ``IngestRejected`` (recorded, or ``unsigned`` and not) or
    ``IngestBusy``. ``semantic_checks`` off applies every entry unjudged (benchmarks measure what they cost)."""
    ledger = ledger or current()
    try:
        opened = open_batch(envelope, terminal_key_lookup=_lookup_key, hpke_private_keys=ledger.keys.hpke().private)
    except BatchRejected as exc:
        if not _signed(exc):
            raise _refuse_unsigned(exc) from exc
        raise _refuse(exc.reason, str(exc), exc.terminal_id, None, [], len(envelope), now_ms, orig=exc) from exc
    if not opened.entries or any(e.terminal_id != opened.terminal_id for e in opened.entries):
        raise _refuse("malformed", "the batch holds no entries or entries of another terminal", opened.terminal_id,
                      opened.batch_id, [], len(envelope), now_ms)
    if not (0 < len(opened.batch_id) <= MAX_BATCH_ID and opened.batch_id.isprintable()):
        raise _refuse("malformed", f"the batch id is not 1 to {MAX_BATCH_ID} printable characters",
                      opened.terminal_id, None, [], len(envelope), now_ms)
    try:
        result, store_id = _apply_locked(opened, now_ms, semantic_checks)
    except IngestRejected as exc:
        raise _refuse(exc.reason, exc.message, opened.terminal_id, opened.batch_id, exc.seqs, len(envelope), now_ms,
                      acked_seq=exc.acked_seq, acked_hash=exc.acked_hash) from exc
    except peewee.IntegrityError:
        # A concurrent worker applied the same entries between our checks: redo once, now they are duplicates.
        try:
            result, store_id = _apply_locked(opened, now_ms, semantic_checks)
        except IngestRejected as exc:
            raise _refuse(exc.reason, exc.message, opened.terminal_id, opened.batch_id, exc.seqs, len(envelope),
                          now_ms, acked_seq=exc.acked_seq, acked_hash=exc.acked_hash) from exc
        except peewee.OperationalError as exc:
            if is_contention(exc):
                raise _busy(exc) from exc
            raise
    except peewee.OperationalError as exc:
        # Locked (SQLite), deadlock or serialisation conflict (PostgreSQL): busy. Anything else (a full disk, a
        # lost connection) rises to the boundary (the API), which words it as a storage failure.
        if is_contention(exc):
            raise _busy(exc) from exc
        raise
    clock = max(e.wall_ms for e in opened.entries)
    events.publish(events.TerminalSeen(opened.terminal_id, store_id, clock, now_ms))
    if result.new_entries:
        quarantined = tuple(events.Quarantined(seq, v.code, v.reason) for seq, v in sorted(result.verdicts.items()))
        events.publish(events.BatchApplied(opened.terminal_id, store_id, opened.batch_id, result.new_entries, now_ms,
                                           quarantined))
    if result.replayed:
        _record("replayed", f"batch {opened.batch_id} was applied before; answered with the ack, nothing applied",
                opened.terminal_id, opened.batch_id, [e.seq for e in opened.entries], len(envelope), now_ms)
    return result


def _signed(exc: BatchRejected) -> bool:
    """True when the refused batch was signed by the enrolled terminal it names (its refusal may be recorded)."""
    return (exc.reason in SIGNED_REASONS and exc.terminal_id is not None
            and _lookup_key(exc.terminal_id) is not None)


def _refuse_unsigned(exc: BatchRejected) -> IngestRejected:
    """Word an unsigned refusal without echoing more than a cut, sanitized form of the terminal id it claimed; a
    malformed envelope says what is wrong with its layout (fixed texts: nothing of the caller's is repeated)."""
    shown = noise.shown_id(exc.terminal_id)
    if exc.reason == "malformed":
        message = str(exc)
    else:
        message = UNSIGNED_MESSAGES.get(exc.reason, "the batch was refused").format(terminal=shown)
    return IngestRejected(exc.reason, message, terminal_id=shown if exc.terminal_id else None, unsigned=True,
                          claimed=exc.terminal_id)


def _apply_locked(opened: OpenedBatch, now_ms: int, semantic_checks: bool = True) -> tuple[IngestResult, str]:
    entries = opened.entries
    tid = opened.terminal_id
    with store.atomic_write():
        terminal = apply.lock_terminal(tid)
        if terminal is None:
            raise IngestRejected("unknown_terminal", f"terminal {tid} is not enrolled with this ledger")
        if terminal.status != "active":
            raise IngestRejected("disabled_terminal", f"terminal {tid} is {terminal.status} and may not sync")
        last_seq = int(terminal.last_seq)
        last_hash = bytes(terminal.last_hash)
        first = entries[0].seq
        if first > last_seq + 1:
            raise IngestRejected(
                "sequence_gap", f"the batch starts at {first} but the ledger has entries up to {last_seq}",
                acked_seq=last_seq, seqs=[first], acked_hash=last_hash)
        old = [e for e in entries if e.seq <= last_seq]
        new = [e for e in entries if e.seq > last_seq]
        quarantined: list[int] = []
        if old:
            stored: dict[int, bytes] = dict(
                store.AppliedEntry.select(store.AppliedEntry.seq, store.AppliedEntry.hash)
                .where((store.AppliedEntry.terminal_id == tid)
                       & (store.AppliedEntry.seq.between(old[0].seq, old[-1].seq)))
                .tuples()  # type: ignore[arg-type]
            )
            held = quarantine.stored_hashes(tid, old[0].seq, old[-1].seq)  # journaled, not applied
            stored.update(held)
            quarantined = sorted(held)
            differs = [e.seq for e in old if bytes(stored.get(e.seq, b"")) != e.hash]
            if differs:
                raise IngestRejected(
                    "tampered", f"terminal {tid} sent entries {_span(differs)} again with different content",
                    seqs=differs, acked_seq=last_seq, acked_hash=last_hash)
        if new and new[0].prev_hash != last_hash:
            raise IngestRejected(
                "broken_chain", f"entry {new[0].seq} of terminal {tid} does not link to the ledger's entry {last_seq}",
                seqs=[new[0].seq], acked_seq=last_seq, acked_hash=last_hash)
        replayed = store.AppliedBatch.select().where(
            (store.AppliedBatch.terminal_id == tid) & (store.AppliedBatch.batch_id == opened.batch_id)).exists()
        clock = max(e.wall_ms for e in entries)
        verdicts = quarantine.judge(new, terminal, now_ms) if new and semantic_checks else {}
        if new:
            applied = [e for e in new if e.seq not in verdicts] if verdicts else new
            if applied:
                apply.apply_entries(applied, batch_id=opened.batch_id, now_ms=now_ms, judged=semantic_checks)
            if verdicts:
                quarantine.keep(new, verdicts, batch_id=opened.batch_id, now_ms=now_ms)
                quarantined += sorted(verdicts)
            store.Terminal.update(last_seq=new[-1].seq, last_hash=new[-1].hash, last_seen_ms=now_ms).where(
                store.Terminal.terminal_id == tid).execute()
            store.AppliedBatch.insert(terminal_id=tid, batch_id=opened.batch_id, first_seq=new[0].seq,
                                      last_seq=new[-1].seq, applied_ms=now_ms).on_conflict_ignore().execute()
            store.AuditLog.create(at_ms=now_ms, actor=f"terminal:{tid}", action="batch_applied", subject=tid,
                                  details={"batch_id": opened.batch_id, "first_seq": new[0].seq,
                                           "last_seq": new[-1].seq, "applied": len(applied),
                                           "quarantined": len(verdicts), "duplicates": len(old),
                                           "terminal_clock_ms": clock})
            if verdicts:
                codes: dict[str, int] = {}
                for verdict in verdicts.values():
                    codes[verdict.code] = codes.get(verdict.code, 0) + 1
                store.AuditLog.create(at_ms=now_ms, actor=f"terminal:{tid}", action="entries_quarantined",
                                      subject=tid, details={"batch_id": opened.batch_id,
                                                           "seqs": sorted(verdicts)[:50], "codes": codes})
        else:
            store.Terminal.update(last_seen_ms=now_ms).where(store.Terminal.terminal_id == tid).execute()
        acked = new[-1].seq if new else last_seq
        result = IngestResult(acked_seq=acked, applied=len(new) - len(verdicts), duplicates=len(old),
                              terminal_id=tid, replayed=replayed and not new, new_entries=new,
                              quarantined=sorted(quarantined), verdicts=verdicts, batch_id=opened.batch_id,
                              acked_hash=new[-1].hash if new else last_hash)
        return result, str(terminal.store_id)


def _span(seqs: list[int]) -> str:
    return str(seqs[0]) if len(seqs) == 1 else f"{seqs[0]}..{seqs[-1]}"


def _record(reason: str, detail: str, terminal_id: str | None, batch_id: str | None, seqs: list[int], size: int,
            now_ms: int) -> None:
    """Log a refusal of a signed batch in its own transaction (the batch's was rolled back) and publish it. Ids
    are stored in their shown form (they are an enrolled terminal's, but the columns stay bounded whatever)."""
    terminal_id = noise.shown_id(terminal_id) if terminal_id is not None else None
    batch_id = noise.shown_id(batch_id, MAX_BATCH_ID) if batch_id is not None else None
    detail = detail[:MAX_DETAIL]
    try:
        with store.atomic_write():
            store.RejectedBatch.create(at_ms=now_ms, terminal_id=terminal_id, batch_id=batch_id, reason=reason,
                                       detail=detail, seqs=seqs[:1000], size=size)
            store.AuditLog.create(at_ms=now_ms, actor=f"terminal:{terminal_id or '?'}", action="batch_rejected",
                                  subject=terminal_id or "", details={"reason": reason, "batch_id": batch_id,
                                                                      "seqs": seqs[:50], "detail": detail})
    except peewee.DatabaseError:
        log.exception("could not record a refused batch", extra={"fields": {"reason": reason}})
    events.publish(events.BatchRejected(terminal_id, reason, detail, now_ms, list(seqs[:1000])))


def _refuse(reason: str, detail: str, terminal_id: str | None, batch_id: str | None, seqs: list[int], size: int,
            now_ms: int, *, acked_seq: int | None = None, orig: BaseException | None = None,
            acked_hash: bytes | None = None) -> IngestRejected:
    _record(reason, detail, terminal_id, batch_id, seqs, size, now_ms)
    return IngestRejected(reason, detail, terminal_id=terminal_id, acked_seq=acked_seq, seqs=seqs, orig=orig,
                          batch_id=batch_id, acked_hash=acked_hash)
