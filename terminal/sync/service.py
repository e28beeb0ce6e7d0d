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

from cardkit.cards.revocation import RevocationList, RevocationVersionError, load_revocation_delta
from cardkit.cards.trust import load_trust_list
from cardkit.config import SyncSettings
from cardkit.envelope import load_hpke_public_key, seal_batch
from cardkit.errors import CardError, CardposError, SyncError
from cardkit.journal import JournalEntry
from cardkit.pulldocs import load_member_snapshot, load_rules_document
from terminal import documents
from terminal.documents import Enrollment
from terminal.offline.state import MEMBERS_SYNCED_SEQ, QUARANTINED_SEQS
from terminal.offline.store import TerminalStore
from terminal.sync.client import LedgerBusy, LedgerClient, LedgerRefused, LedgerUnreachable, TerminalSigner

log = logging.getLogger("cardpos.sync")

TRUST_FILE = "trust_list.cose"
RULES_FILE = "rules.cose"
REVOCATIONS_FILE = "revocations.bin"
# Document version names, as in the pull query (GET /v1/pull?trust=V&revocations=V&rules=V&members=V).
DOC_TRUST, DOC_REVOCATIONS, DOC_RULES, DOC_MEMBERS = "trust", "revocations", "rules", "members"

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
    quarantined: list[int] = field(default_factory=list)  # seqs the ledger journaled but did not apply

    def to_dict(self) -> dict[str, Any]:
        return {"pushed": self.pushed, "batches": self.batches, "bytes_sent": self.bytes_sent,
                "acked_seq": self.acked_seq, "applied": self.applied, "duplicates": self.duplicates,
                "pulled": dict(self.pulled), "queue_depth": self.queue_depth, "quarantined": list(self.quarantined)}


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
    """Check and save the b64 documents of an enrollment or pull answer; return {name: version} applied.

    Everything is checked before anything is saved, so a bad document leaves the terminal as it was.
    """
    root = bytes.fromhex(enrollment.root_public_key)
    data_dir = store.data_dir
    state = store.sync_state
    applied: dict[str, int] = {}

    def blob(key: str) -> bytes | None:
        value = docs.get(key)
        if value is None:
            return None
        try:
            return base64.b64decode(value, validate=True)
        except (ValueError, TypeError) as exc:
            raise SyncError(f"the ledger sent a {key} document that is not base64", orig=exc) from exc

    try:
        trust_raw = blob("trust_list")
        trust = load_trust_list(trust_raw, root) if trust_raw is not None else None
        if trust is not None and trust.issuer != enrollment.issuer:
            raise SyncError(f"the ledger sent a trust list for issuer {trust.issuer!r}, not {enrollment.issuer!r}")
        rules_raw = blob("rules")
        rules = load_rules_document(rules_raw, root) if rules_raw is not None else None
        rev_raw = blob("revocations")
        delta = load_revocation_delta(rev_raw, root) if rev_raw is not None else None
        members_raw = blob("members")
        snapshot = load_member_snapshot(members_raw, root) if members_raw is not None else None
    except CardError as exc:
        raise SyncError(f"a document from the ledger failed its check and was not saved: {exc}", orig=exc) from exc

    if trust is not None and trust_raw is not None and trust.version >= state.document_version(DOC_TRUST):
        documents.save_document(data_dir, TRUST_FILE, trust_raw)
        state.set_document_version(DOC_TRUST, trust.version)
        applied[DOC_TRUST] = trust.version
    if rules is not None and rules_raw is not None and rules.version >= state.document_version(DOC_RULES):
        documents.save_document(data_dir, RULES_FILE, rules_raw)
        state.set_document_version(DOC_RULES, rules.version)
        applied[DOC_RULES] = rules.version
    if delta is not None:
        current = documents.load_document(data_dir, REVOCATIONS_FILE)
        revocations = RevocationList.from_bytes(current) if current is not None else RevocationList(0)
        if delta.from_version == 0 and revocations.version != 0:
            revocations = RevocationList(0)  # a full list from scratch replaces whatever we had
        try:
            revocations.apply(delta)
        except RevocationVersionError:
            # Our list and the ledger disagree about the version: ask for the whole list next time.
            state.set_document_version(DOC_REVOCATIONS, 0)
            log.warning("revocation delta did not fit; will fetch the whole list")
        else:
            documents.save_document(data_dir, REVOCATIONS_FILE, revocations.to_bytes())
            state.set_document_version(DOC_REVOCATIONS, revocations.version)
            applied[DOC_REVOCATIONS] = revocations.version
    if snapshot is not None:
        if snapshot.store_id != enrollment.store_id:
            raise SyncError(f"the ledger sent member snapshots of store {snapshot.store_id}, "
                            f"not {enrollment.store_id}")
        if snapshot.since > store.cache.snapshot_version:
            # A delta that skips versions we never had would leave some members stale: ask again from ours.
            log.warning("member snapshot skips versions; ignored")
        else:
            # The snapshot counts this terminal's entries up to the synced seq (the push came first), so the
            # counter must fold only later ones on top; both facts are written together.
            with store.db.atomic():
                if store.cache.apply_snapshot(snapshot.members, snapshot.version):
                    store.sync_state.set(MEMBERS_SYNCED_SEQ, store.journal.synced_seq)
                    applied[DOC_MEMBERS] = snapshot.version
    return applied


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
                report.pulled = self._pull()
            except CardposError as exc:
                self._record_failure(exc)
                raise
            except Exception as exc:  # a bug must still leave a status, never a silent dead thread
                self._record_failure(exc)
                raise SyncError(f"sync failed unexpectedly: {exc}", orig=exc) from exc
            now = self._clock()
            report.queue_depth = self.store.journal.queue_depth
            self.store.sync_state.last_sync_ms = now
            self.store.sync_state.last_error = None
            self._failures = 0
            self._retry_after_s = None
            self._set_status(online=True, offline_since_ms=None, queue_depth=report.queue_depth, last_sync_ms=now,
                             last_error=None)
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

    def _seal(self, entries: list[JournalEntry]) -> bytes:
        return seal_batch(entries, terminal_id=self.enrollment.terminal_id, batch_id=self._new_batch_id(),
                          terminal_key=self.identity_key, ledger_public_key=self._ledger_key,
                          suite=self.enrollment.hpke_suite)

    def _batch_after(self, after_seq: int) -> tuple[list[JournalEntry], bytes] | None:
        """Seal the entries after ``after_seq``: as many as should fit ``batch_bytes`` on the wire."""
        limit = self.settings.batch_bytes
        count = max(1, min(MAX_ENTRIES_PER_BATCH, int(limit * 0.9 / self._wire_per_entry)))
        entries = self.store.journal.entries(after_seq=after_seq, limit=count)
        if not entries:
            return None
        envelope = self._seal(entries)
        while len(envelope) > limit and len(entries) > 1:  # the size guess was too kind: halve and reseal
            entries = entries[: len(entries) // 2]
            envelope = self._seal(entries)
        # Learn what this terminal's entries cost on the wire, so the next batch asks for the right number.
        self._wire_per_entry = max(8.0, len(envelope) / len(entries))
        return entries, envelope

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
                entries, envelope = batch
                in_flight = pusher.submit(self.client.push, envelope)
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
                    acked = int(exc.body.get("acked_seq", -1))
                    if acked < 0:
                        raise SyncError("the ledger reported a sequence gap without saying what it has",
                                        orig=exc) from exc
                    log.warning("ledger reported a sequence gap; resending", extra={"fields": {"acked_seq": acked}})
                    self._after_ack(acked)
                    stalled += 1
                    if stalled > 3:
                        raise SyncError(f"the ledger keeps reporting a sequence gap after entry {acked}",
                                        orig=exc) from exc
                    batch = self._batch_after(acked)  # resend from what the ledger really has
                    continue
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
        """Record an ack; return where to resend from when the ledger is behind our mark, else None."""
        journal = self.store.journal
        last = journal.last_seq
        if acked_seq > last:
            raise SyncError(f"the ledger acknowledged entry {acked_seq} but this terminal's journal ends at {last}; "
                            "is another terminal using this id?")
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

    def _pull(self) -> dict[str, int]:
        state = self.store.sync_state
        versions = {DOC_TRUST: state.document_version(DOC_TRUST),
                    DOC_REVOCATIONS: state.document_version(DOC_REVOCATIONS),
                    DOC_RULES: state.document_version(DOC_RULES),
                    DOC_MEMBERS: self.store.cache.snapshot_version}
        answer = self.client.pull(versions, self._signer)
        return verify_and_save_documents(self.store, self.enrollment, answer)

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
