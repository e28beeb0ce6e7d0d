"""The sync service: push the journal to the ledger, pull signed documents back, keep a status for the UI.

Rules it keeps (docs/sync-protocol.md):
- an entry is marked synced only after the ledger acknowledged it (``acked_seq``); nothing is ever deleted;
- on ``sequence_gap`` it resends from the ledger's ``acked_seq + 1`` (the ledger lost entries it had acked);
- every pulled document is checked against the pinned root key before it is saved or applied;
- the background thread never holds up the caller: ``status`` is a cached value, ``kick()`` only sets an event.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit import __version__, answers, wire
from cardkit.cards.revocation import (
    RevocationDelta,
    RevocationList,
    RevocationVersionError,
    load_revocation_delta,
)
from cardkit.cards.trust import load_trust_list
from cardkit.config import SyncSettings
from cardkit.envelope import load_hpke_public_key, seal_batch
from cardkit.errors import CardError, CardposError, SyncError
from cardkit.journal import GENESIS_HASH, JournalEntry
from cardkit.pulldocs import MemberSnapshot, load_rules_document
from terminal import documents
from terminal.documents import REVOCATIONS_FILE, RULES_FILE, TRUST_FILE, Enrollment
from terminal.offline.state import MEMBERS_SYNCED_SEQ, MEMBERS_VERSION, QUARANTINED_SEQS
from terminal.offline.store import TerminalStore
from terminal.sync.client import LedgerBusy, LedgerClient, LedgerRefused, LedgerUnreachable, TerminalSigner
from terminal.sync.versions import (
    DOC_MEMBERS,
    DOC_REVOCATIONS,
    DOC_RULES,
    DOC_TRUST,
    Freshness,
    Held,
    is_missing,
    judge,
    missing_text,
    refusal,
)

log = logging.getLogger("cardpos.sync")

# The document kind names (terminal/sync/versions.py) are part of this module's interface too.
__all__ = ["DOC_MEMBERS", "DOC_REVOCATIONS", "DOC_RULES", "DOC_TRUST", "Backoff", "DocumentOutcome", "SyncReport",
           "SyncService", "SyncStatus", "apply_documents", "held_document", "load_identity_key",
           "verify_and_save_documents"]

MAX_BATCHES_PER_SYNC = 100_000  # a hard stop for the push loop; a real drain needs a few hundred at most
INITIAL_WIRE_PER_ENTRY = 200.0  # first guess of envelope bytes per entry (sales cost about 40)
MAX_ENTRIES_PER_BATCH = 20_000
MAX_RETRY_AFTER_S = 3600.0  # a Retry-After beyond an hour is taken as an hour
MAX_QUARANTINED_KEPT = 1000  # the newest quarantined seqs remembered for the technician


@dataclass(frozen=True)
class SyncStatus:
    online: bool
    offline_since_ms: int | None
    queue_depth: int
    last_sync_ms: int | None
    last_error: str | None
    documents_refused: tuple[str, ...] = ()  # kinds refused or missing in the last pull (see last_error)
    quarantined: tuple[int, ...] = ()
    """Seqs the ledger journaled but did not apply (newest last): what the technician must look into."""


@dataclass
class SyncReport:
    pushed: int = 0  # entries sent (resends included)
    batches: int = 0
    bytes_sent: int = 0
    acked_seq: int = 0
    applied: int = 0
    duplicates: int = 0
    pulled: dict[str, int] = field(default_factory=dict)  # document -> version now held
    queue_depth: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # document -> why it was not applied
    missing: dict[str, str] = field(default_factory=dict)  # document the ledger has newer but did not send
    quarantined: list[int] = field(default_factory=list)  # seqs the ledger journaled but did not apply

    def to_dict(self) -> dict[str, Any]:
        return {"pushed": self.pushed, "batches": self.batches, "bytes_sent": self.bytes_sent,
                "acked_seq": self.acked_seq, "applied": self.applied, "duplicates": self.duplicates,
                "pulled": dict(self.pulled), "queue_depth": self.queue_depth, "refused": dict(self.refused),
                "missing": dict(self.missing), "quarantined": list(self.quarantined)}


@dataclass(frozen=True)
class _Batch:
    """A sealed run of entries and the batch id its ack must name."""

    entries: list[JournalEntry]
    envelope: bytes
    batch_id: str


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter": half the step fixed, half random, capped."""

    base_s: float = 1.0
    cap_s: float = 30.0

    def delay(self, failures: int, rng: random.Random) -> float:
        step = min(self.cap_s, self.base_s * (2 ** min(failures - 1, 30))) if failures > 0 else 0.0
        return step / 2 + rng.random() * step / 2


def load_identity_key(data_dir: Any) -> Ed25519PrivateKey:
    path = documents.identity_key_path(data_dir)
    try:
        raw = path.read_bytes()
        return Ed25519PrivateKey.from_private_bytes(raw)
    except FileNotFoundError as exc:
        raise SyncError(f"the terminal identity key {path} is missing; enroll this terminal again",
                        orig=exc) from exc
    except ValueError as exc:
        raise SyncError(f"the terminal identity key {path} is damaged; enroll this terminal again",
                        orig=exc) from exc


def verify_and_save_documents(store: TerminalStore, enrollment: Enrollment, docs: dict[str, Any]) -> dict[str, int]:
    """Check and save the b64 documents of an enrollment answer; return {name: version} applied.

    Everything is checked before anything is saved, so a bad document leaves the terminal as it was; a document
    older than the one held (or the same version with other bytes) is not applied (``apply_documents``).
    """

    def blob(key: str) -> bytes | None:
        value = docs.get(key)
        if value is None:
            return None
        try:
            return base64.b64decode(value, validate=True)
        except (ValueError, TypeError) as exc:
            raise SyncError(f"the ledger sent a {key} document that is not base64", orig=exc) from exc

    return apply_documents(store, enrollment, {name: blob(name) for name in wire.PULL_DOCUMENT_FIELDS}).applied


@dataclass
class DocumentOutcome:
    """What one pull did to the terminal's documents."""

    applied: dict[str, int] = field(default_factory=dict)  # kind -> version now held
    refused: dict[str, str] = field(default_factory=dict)  # kind -> why (older, or same version other bytes)
    missing: dict[str, str] = field(default_factory=dict)  # kind -> the ledger has newer but sent none

    def problem(self) -> str | None:
        """One sentence for ``last_error`` and the technician screen, or None when the pull was whole."""
        reasons = [*self.refused.values(), *self.missing.values()]
        if not reasons:
            return None
        tail = "; this sync does not count for the offline limits" if self.missing else ""
        return "; ".join(reasons) + tail


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def held_document(store: TerminalStore, kind: str) -> Held | None:
    """What this terminal holds of ``kind``: its mark, or for documents applied before marks were kept, the
    recorded version with unknown bytes; None when it holds none."""
    mark = store.sync_state.document_mark(kind)
    if mark is not None:
        return Held(mark[0], mark[1])
    if kind == DOC_MEMBERS:
        version = store.sync_state.get(MEMBERS_VERSION)
        return Held(int(version), None) if isinstance(version, int) else None
    file = {DOC_TRUST: TRUST_FILE, DOC_RULES: RULES_FILE, DOC_REVOCATIONS: REVOCATIONS_FILE}[kind]
    raw = documents.load_document(store.data_dir, file)
    if raw is None:
        return None
    if kind == DOC_REVOCATIONS:
        return Held(RevocationList.from_bytes(raw).version, None)
    return Held(store.sync_state.document_version(kind), None)


def _refuse(outcome: DocumentOutcome, kind: str, reason: str) -> None:
    outcome.refused[kind] = reason
    log.warning("pulled document refused", extra={"fields": {"document": kind, "reason": reason}})


def apply_documents(store: TerminalStore, enrollment: Enrollment, blobs: dict[str, bytes | None], *,
                    ledger_versions: dict[str, int] | None = None) -> DocumentOutcome:
    """Check the signed documents of an enrollment or pull answer and apply those newer than held.

    Every signature is checked before anything is saved (one bad document fails the whole answer). Then per kind:
    newer → saved and marked; same version and bytes → nothing; older, or same version with other bytes →
    refused (reported, logged, never applied). With ``ledger_versions`` (a verified pull answer), a null document
    of a kind the ledger holds a newer version of is recorded as missing.
    """
    root = bytes.fromhex(enrollment.root_public_key)
    data_dir = store.data_dir
    state = store.sync_state
    outcome = DocumentOutcome()
    applied = outcome.applied
    trust_raw, rules_raw = blobs.get("trust_list"), blobs.get("rules")
    rev_raw, members_raw = blobs.get("revocations"), blobs.get("members")

    try:
        trust = load_trust_list(trust_raw, root) if trust_raw is not None else None
        if trust is not None and trust.issuer != enrollment.issuer:
            raise SyncError(f"the ledger sent a trust list for issuer {trust.issuer!r}, not {enrollment.issuer!r}")
        rules = load_rules_document(rules_raw, root) if rules_raw is not None else None
        delta = load_revocation_delta(rev_raw, root) if rev_raw is not None else None
        snapshot = (documents.open_member_snapshot(data_dir, enrollment, members_raw)
                    if members_raw is not None else None)
    except CardError as exc:
        raise SyncError(f"a document from the ledger failed its check and was not saved: {exc}", orig=exc) from exc
    if snapshot is not None and snapshot.store_id != enrollment.store_id:
        raise SyncError(f"the ledger sent member snapshots of store {snapshot.store_id}, not {enrollment.store_id}")

    held = {kind: held_document(store, kind) for kind in (DOC_TRUST, DOC_REVOCATIONS, DOC_RULES, DOC_MEMBERS)}

    def save_whole(kind: str, file: str, version: int, raw: bytes) -> None:
        mark = held[kind]
        freshness = judge(mark, version, _digest(raw))
        if freshness is Freshness.NEWER:
            documents.save_document(data_dir, file, raw)
            state.set_document_version(kind, version)
            state.set_document_mark(kind, version, _digest(raw))
            applied[kind] = version
        elif freshness is not Freshness.SAME and mark is not None:
            _refuse(outcome, kind, refusal(kind, freshness, version, mark))

    if trust is not None and trust_raw is not None:
        save_whole(DOC_TRUST, TRUST_FILE, trust.version, trust_raw)
    if rules is not None and rules_raw is not None:
        save_whole(DOC_RULES, RULES_FILE, rules.version, rules_raw)
    if delta is not None and rev_raw is not None:
        _apply_revocations(store, outcome, delta, rev_raw, held[DOC_REVOCATIONS])
    if snapshot is not None and members_raw is not None:
        _apply_members(store, outcome, snapshot, members_raw, held[DOC_MEMBERS])

    if ledger_versions is not None:
        for kind, field_name in ((DOC_TRUST, "trust_list"), (DOC_REVOCATIONS, "revocations"), (DOC_RULES, "rules"),
                                 (DOC_MEMBERS, "members")):
            if blobs.get(field_name) is None and is_missing(ledger_versions[kind], held[kind]):
                outcome.missing[kind] = missing_text(kind, ledger_versions[kind], held[kind])
                log.warning("pulled document missing", extra={"fields": {"document": kind,
                                                                          "ledger_version": ledger_versions[kind]}})
    return outcome


def _apply_revocations(store: TerminalStore, outcome: DocumentOutcome, delta: RevocationDelta, raw: bytes,
                       held: Held | None) -> None:
    """Merge a revocation delta newer than the list held; an older one (a replayed enrollment-time delta from
    version 0, say) is refused, so a revoked card stays revoked."""
    state = store.sync_state
    freshness = judge(held, delta.to_version, _digest(raw))
    if freshness is Freshness.SAME:
        return
    if freshness is not Freshness.NEWER:
        assert held is not None
        _refuse(outcome, DOC_REVOCATIONS, refusal(DOC_REVOCATIONS, freshness, delta.to_version, held))
        state.set_document_version(DOC_REVOCATIONS, held.version)  # we are current: do not keep asking for 0
        return
    current = documents.load_document(store.data_dir, REVOCATIONS_FILE)
    revocations = RevocationList.from_bytes(current) if current is not None else RevocationList(0)
    if delta.from_version == 0 and revocations.version != 0:
        revocations = RevocationList(0)  # a whole list, newer than ours, replaces it
    try:
        revocations.apply(delta)
    except RevocationVersionError:
        # Our list and the ledger disagree about where the delta starts: ask for the whole list next time.
        state.set_document_version(DOC_REVOCATIONS, 0)
        log.warning("revocation delta did not fit; will fetch the whole list")
        return
    documents.save_document(store.data_dir, REVOCATIONS_FILE, revocations.to_bytes())
    state.set_document_version(DOC_REVOCATIONS, revocations.version)
    state.set_document_mark(DOC_REVOCATIONS, revocations.version, _digest(raw))
    outcome.applied[DOC_REVOCATIONS] = revocations.version


def _apply_members(store: TerminalStore, outcome: DocumentOutcome, snapshot: MemberSnapshot, raw: bytes,
                   held: Held | None) -> None:
    """Apply a member snapshot newer than the one held. The same version again is never re-applied: doing so
    would move the synced seq the counter folds from without the snapshot covering those entries."""
    freshness = judge(held, snapshot.version, _digest(raw))
    if freshness is Freshness.SAME:
        return
    if freshness is not Freshness.NEWER:
        assert held is not None
        _refuse(outcome, DOC_MEMBERS, refusal(DOC_MEMBERS, freshness, snapshot.version, held))
        return
    if snapshot.since > (held.version if held is not None else 0):
        # A delta that skips versions we never had would leave some members stale.
        _refuse(outcome, DOC_MEMBERS, f"the ledger sent member snapshots since version {snapshot.since}, after "
                                      f"version {held.version if held else 0} held here; refused")
        return
    # The snapshot counts this terminal's entries up to the synced seq (the push came first), so the counter must
    # fold only later ones on top; the snapshot, that seq and the mark are written together.
    with store.db.atomic("IMMEDIATE"):  # read, then write: the write lock first
        if store.cache.apply_snapshot(snapshot.members, snapshot.version):
            store.sync_state.set(MEMBERS_SYNCED_SEQ, store.journal.synced_seq)
            store.sync_state.set_document_mark(DOC_MEMBERS, snapshot.version, _digest(raw))
            outcome.applied[DOC_MEMBERS] = snapshot.version


class SyncService:
    def __init__(
        self,
        store: TerminalStore,
        enrollment: Enrollment,
        identity_key: Ed25519PrivateKey,
        *,
        settings: SyncSettings,
        clock: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        client: LedgerClient | None = None,
        backoff: Backoff | None = None,
        on_status: Callable[[SyncStatus], None] | None = None,
    ) -> None:
        self.store = store
        self.enrollment = enrollment
        self.identity_key = identity_key
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.client = client or LedgerClient(settings.ledger_url or enrollment.ledger_url,
                                             timeout_s=settings.timeout_s, clock_ms=clock)
        self.backoff = backoff or Backoff()
        self.on_status = on_status
        self._ledger_key = load_hpke_public_key(enrollment.hpke_suite, bytes.fromhex(enrollment.ledger_hpke_public_key))
        self._signer = TerminalSigner(enrollment.terminal_id, identity_key)
        self._root_public_key = bytes.fromhex(enrollment.root_public_key)  # signs every answer the ledger gives
        self._wire_per_entry = INITIAL_WIRE_PER_ENTRY
        self._sync_lock = threading.Lock()
        self._failures = 0
        self._retry_after_s: float | None = None
        self._status = SyncStatus(online=False, offline_since_ms=None, queue_depth=store.journal.queue_depth,
                                  last_sync_ms=store.sync_state.last_sync_ms, last_error=store.sync_state.last_error,
                                  quarantined=tuple(store.sync_state.get(QUARANTINED_SEQS, [])))
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()

    # -- status ------------------------------------------------------------------------------------------------
    @property
    def status(self) -> SyncStatus:
        return self._status

    @property
    def failures(self) -> int:
        """Consecutive failed syncs (0 after a success)."""
        return self._failures

    def _set_status(self, **changes: Any) -> None:
        self._status = replace(self._status, **changes)
        if self.on_status is not None:
            try:
                self.on_status(self._status)
            except Exception:  # the UI callback must never break sync
                log.exception("sync status callback failed")

    # -- one sync ----------------------------------------------------------------------------------------------
    def sync_once(self) -> SyncReport:
        """Push everything unsynced, then pull. Raises SyncError (status and last_error updated) on failure."""
        with self._sync_lock:
            report = SyncReport()
            try:
                self._push_all(report)
                outcome = self._pull()
            except CardposError as exc:
                self._record_failure(exc)
                raise
            except Exception as exc:  # a bug must still leave a status, never a silent dead thread
                self._record_failure(exc)
                raise SyncError(f"sync failed unexpectedly: {exc}", orig=exc) from exc
            report.pulled, report.refused, report.missing = outcome.applied, outcome.refused, outcome.missing
            now = self._clock()
            report.queue_depth = self.store.journal.queue_depth
            # A pull that lacked a document the ledger has newer is not a successful sync for the offline limits.
            last_sync = self._status.last_sync_ms if outcome.missing else now
            if not outcome.missing:
                self.store.sync_state.last_sync_ms = now
            problem = outcome.problem()
            self.store.sync_state.last_error = problem
            self._failures = 0
            self._retry_after_s = None
            self._set_status(online=True, offline_since_ms=None, queue_depth=report.queue_depth,
                             last_sync_ms=last_sync, last_error=problem,
                             documents_refused=tuple(sorted({*outcome.refused, *outcome.missing})))
            return report

    def _record_failure(self, exc: BaseException) -> None:
        message = str(exc)
        self._failures += 1
        self._retry_after_s = exc.retry_after_s if isinstance(exc, LedgerBusy) else None
        offline = isinstance(exc, (LedgerUnreachable, LedgerBusy))
        try:
            self.store.sync_state.last_error = message
            depth = self.store.journal.queue_depth
        except CardposError:
            depth = self._status.queue_depth
        since = self._status.offline_since_ms if self._status.offline_since_ms is not None else self._clock()
        self._set_status(online=not offline, offline_since_ms=since if offline else None, queue_depth=depth,
                         last_error=message)

    def _new_batch_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _seal(self, entries: list[JournalEntry]) -> _Batch:
        batch_id = self._new_batch_id()
        envelope = seal_batch(entries, terminal_id=self.enrollment.terminal_id, batch_id=batch_id,
                              terminal_key=self.identity_key, ledger_public_key=self._ledger_key,
                              suite=self.enrollment.hpke_suite)
        return _Batch(entries, envelope, batch_id)

    def _batch_after(self, after_seq: int) -> _Batch | None:
        """Seal the entries after ``after_seq``: as many as should fit ``batch_bytes`` on the wire."""
        limit = self.settings.batch_bytes
        count = max(1, min(MAX_ENTRIES_PER_BATCH, int(limit * 0.9 / self._wire_per_entry)))
        entries = self.store.journal.entries(after_seq=after_seq, limit=count)
        if not entries:
            return None
        batch = self._seal(entries)
        while len(batch.envelope) > limit and len(batch.entries) > 1:  # the size guess was too kind: halve, reseal
            batch = self._seal(batch.entries[: len(batch.entries) // 2])
        # Learn what this terminal's entries cost on the wire, so the next batch asks for the right number.
        self._wire_per_entry = max(8.0, len(batch.envelope) / len(batch.entries))
        return batch

    def _verified_ack(self, answer: dict[str, Any], batch: _Batch, nonce: bytes) -> answers.Ack:
        """The ledger's ack of ``batch`` once its signature over this terminal, batch and nonce holds, it names
        an entry this journal has, and that entry's hash is the one the ledger holds; else raise (nothing marked)."""
        ack = answers.verify_ack(answer, self._root_public_key, terminal_id=self.enrollment.terminal_id,
                                 batch_id=batch.batch_id, nonce=nonce)
        journal = self.store.journal
        last = journal.last_seq
        if ack.acked_seq > last:
            raise SyncError(f"the ledger acknowledged entry {ack.acked_seq} but this terminal's journal ends at "
                            f"{last}; is another terminal using this id?")
        if self._entry_hash(ack.acked_seq, batch.entries) != ack.last_hash:
            raise SyncError(f"the ledger holds another entry {ack.acked_seq} than this terminal's journal; "
                            "is another terminal using this id?")
        return ack

    def _entry_hash(self, seq: int, entries: list[JournalEntry]) -> bytes | None:
        if seq == 0:
            return GENESIS_HASH
        at = seq - entries[0].seq
        if 0 <= at < len(entries):
            return entries[at].hash
        found = self.store.journal.entries(after_seq=seq - 1, limit=1)
        return found[0].hash if found and found[0].seq == seq else None

    def _push_all(self, report: SyncReport) -> None:
        """Push until drained. While one batch is in flight the next is read and sealed (pipelining), but an
        entry is marked synced only from the ledger's answer, and a speculative batch is dropped whenever the
        ledger's ack is not exactly where it was expected to start."""
        journal = self.store.journal
        stalled = 0
        batch = self._batch_after(journal.synced_seq)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cardpos-push") as pusher:
            for _ in range(MAX_BATCHES_PER_SYNC):
                if batch is None:
                    return
                entries, envelope = batch.entries, batch.envelope
                nonce = answers.new_nonce()
                in_flight = pusher.submit(self.client.push, envelope, nonce)
                try:
                    upcoming = self._batch_after(entries[-1].seq)
                except BaseException:
                    with contextlib.suppress(Exception):
                        in_flight.result()  # settle the push in flight before reporting our own failure
                    raise
                try:
                    result = in_flight.result()
                except LedgerRefused as exc:
                    if exc.code != "sequence_gap" or isinstance(exc, LedgerBusy):
                        raise
                    if not isinstance(exc.body.get("acked_seq"), int):
                        raise SyncError("the ledger reported a sequence gap without saying what it has",
                                        orig=exc) from exc
                    acked = self._verified_ack(exc.body, batch, nonce).acked_seq
                    log.warning("ledger reported a sequence gap; resending", extra={"fields": {"acked_seq": acked}})
                    self._after_ack(acked)
                    stalled += 1
                    if stalled > 3:
                        raise SyncError(f"the ledger keeps reporting a sequence gap after entry {acked}",
                                        orig=exc) from exc
                    batch = self._batch_after(acked)  # resend from what the ledger really has
                    continue
                self._verified_ack(result.answer, batch, nonce)
                report.batches += 1
                report.pushed += len(entries)
                report.bytes_sent += len(envelope)
                report.applied += result.applied
                report.duplicates += result.duplicates
                report.acked_seq = max(report.acked_seq, result.acked_seq)
                before = journal.synced_seq
                self._after_ack(result.acked_seq)
                self._note_quarantined(report, result.quarantined, entries, result.acked_seq)
                self._set_status(online=True, offline_since_ms=None, queue_depth=journal.last_seq - result.acked_seq)
                if result.acked_seq == entries[-1].seq:
                    stalled = 0
                    batch = upcoming
                    continue
                # The ledger kept part of the batch, or has more than we sent: continue from its ack, never spin.
                stalled = stalled + 1 if journal.synced_seq <= before else 0
                if stalled > 3:
                    raise SyncError(f"the ledger stopped acknowledging at entry {result.acked_seq}")
                batch = self._batch_after(result.acked_seq)
        raise SyncError("sync stopped after too many batches in one round; it will continue next time")

    def _after_ack(self, acked_seq: int) -> int | None:
        """Record a verified ack; return where to resend from when the ledger is behind our mark, else None."""
        journal = self.store.journal
        synced = journal.mark_synced(acked_seq) if acked_seq > 0 else journal.synced_seq
        return acked_seq if acked_seq < synced else None

    def _note_quarantined(self, report: SyncReport, seqs: tuple[int, ...], sent: list[JournalEntry],
                          acked_seq: int) -> None:
        """Remember the seqs of this batch the ledger quarantined (journaled, not applied): the report, the
        durable sync state and the status the technician screen shows. Seqs outside the batch are ignored."""
        if not seqs or not sent:
            return
        mine = sorted({s for s in seqs if sent[0].seq <= s <= min(sent[-1].seq, acked_seq)})
        if not mine:
            return
        report.quarantined = sorted(set(report.quarantined) | set(mine))
        state = self.store.sync_state
        kept = sorted(set(state.get(QUARANTINED_SEQS, [])) | set(mine))[-MAX_QUARANTINED_KEPT:]
        state.set(QUARANTINED_SEQS, kept)
        log.warning("the ledger quarantined entries of this terminal", extra={"fields": {"seqs": mine[:20]}})
        self._set_status(quarantined=tuple(kept))

    def _pull(self) -> DocumentOutcome:
        """Ask for what is newer than held, with a fresh nonce; believe the answer only if the ledger signed it
        for that nonce, then apply what moves forward (``apply_documents``)."""
        def held_version(kind: str) -> int:
            held = held_document(self.store, kind)
            return held.version if held is not None else 0

        versions = {DOC_TRUST: held_version(DOC_TRUST),
                    # below the list held after a delta that did not fit: then the whole list is asked for again
                    DOC_REVOCATIONS: min(held_version(DOC_REVOCATIONS),
                                         self.store.sync_state.document_version(DOC_REVOCATIONS)),
                    DOC_RULES: held_version(DOC_RULES),
                    DOC_MEMBERS: self.store.cache.snapshot_version}
        nonce = answers.new_nonce()
        about: dict[str, str | int] = {wire.APP_VERSION_PARAM: __version__,
                                       wire.QUEUE_PARAM: self.store.journal.queue_depth}  # shown to admins
        answer = self.client.pull(versions, self._signer, nonce, about)
        verified = answers.verify_pull_answer(answer, self._root_public_key, terminal_id=self.enrollment.terminal_id,
                                              nonce=nonce)
        return apply_documents(self.store, self.enrollment, verified.documents, ledger_versions=verified.versions)

    # -- retries and the background thread ---------------------------------------------------------------------
    def next_delay_s(self) -> float:
        """Seconds until the next attempt: the interval when healthy, else backoff (and at least Retry-After)."""
        if self._failures == 0:
            return self.settings.interval_s
        delay = self.backoff.delay(self._failures, self._rng)
        if self._retry_after_s is not None:
            delay = max(delay, min(self._retry_after_s, MAX_RETRY_AFTER_S))
        return delay

    def sync_until_drained(self, max_attempts: int) -> SyncReport:
        """Retry ``sync_once`` with backoff (injected ``sleep``) until it succeeds; raise the last error."""
        last: SyncError | None = None
        for attempt in range(max_attempts):
            try:
                return self.sync_once()
            except SyncError as exc:
                last = exc
                if attempt + 1 < max_attempts:
                    self._sleep(self.next_delay_s())
        assert last is not None
        raise last

    def kick(self) -> None:
        """Ask the background thread to sync now (after an append, or when the network comes back)."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cardpos-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self.sync_once()
                except SyncError as exc:
                    log.info("sync failed", extra={"fields": {"error": str(exc)}})
                except CardposError as exc:
                    log.warning("sync failed", extra={"fields": {"error": str(exc)}})
                self._wake.wait(self.next_delay_s())
                self._wake.clear()
        finally:
            self.store.close()  # this thread's own SQLite connection
