"""cardpos terminal enroll / sync / status: join a ledger, exchange journal and documents with it, show where we are."""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import random
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit import locations
from cardkit.cliutil import Subparsers, add_common, emit, settings_from_args
from cardkit.enrollment import EnrollAnswer, derive_code_keys, make_proof, open_answer
from cardkit.envelope import SUITES, generate_hpke_private_key, hpke_public_key_bytes, load_hpke_public_key
from cardkit.errors import ConfigError, SyncError
from terminal import documents
from terminal.offline.store import TerminalStore
from terminal.sync.client import LedgerClient, LedgerRefused
from terminal.sync.service import SyncReport, SyncService, load_identity_key, verify_and_save_documents


def register(subparsers: Subparsers) -> None:
    enroll = subparsers.add_parser(
        "enroll", help="enroll this terminal with a ledger using a one-time code",
        description="Create this terminal's identity and member keys (if it has none), prove to the ledger that it "
                    "holds a one-time code from 'cardpos ledger terminal add' without sending the code, check "
                    "that the answer is authenticated with the same code and signed by the ledger's root key, "
                    "check the signed documents it carries and save them with the enrollment record.")
    add_common(enroll)
    enroll.add_argument("--ledger", required=True, metavar="URL", help="ledger base URL, e.g. http://127.0.0.1:8750")
    enroll.add_argument("--code", required=True, help="one-time enrollment code")
    enroll.add_argument("--suite", choices=sorted(SUITES), default="x25519",
                        help="HPKE suite for batches (default x25519; mlkem768x25519 is the post-quantum hybrid)")
    enroll.add_argument("--root-key", metavar="HEX", type=_root_key_arg, default=None,
                        help="expected ledger root public key (hex, as 'cardpos ledger init' prints it); a ledger "
                             "with another root key refuses the enrollment and the code stays unused")
    enroll.add_argument("--json", action="store_true", help="print the result as JSON")
    enroll.set_defaults(handler=cmd_enroll)

    sync = subparsers.add_parser(
        "sync", help="push the journal to the ledger and pull updates",
        description="Push every unsynced journal entry to the ledger in sealed batches, then pull the trust list, "
                    "revocations, rules and member snapshots. Without --once, keep syncing every interval until "
                    "interrupted. Entries stay queued (never lost) when the ledger cannot be reached.")
    add_common(sync)
    sync.add_argument("--once", action="store_true", help="sync once and exit (exit status 1 if it failed)")
    sync.add_argument("--json", action="store_true", help="print the result as JSON")
    sync.set_defaults(handler=cmd_sync)

    status = subparsers.add_parser("status", help="enrollment, queue depth, last sync and document versions",
                                   description="Show this terminal's enrollment and sync state (no network).")
    add_common(status)
    status.add_argument("--json", action="store_true", help="print the result as JSON")
    status.set_defaults(handler=cmd_status)


def _root_key_arg(text: str) -> str:
    """argparse type of ``--root-key``: a malformed key is refused before the ledger is asked (a well-formed wrong
    one is refused by the ledger after it checked the proof, without using the code up)."""
    text = text.strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise argparse.ArgumentTypeError("an Ed25519 public key is 64 hex characters")
    return text


def _identity_key(data_dir: Path) -> Ed25519PrivateKey:
    """The terminal's identity key, created (0600) on first use; a retry after a failed enroll reuses it."""
    path = documents.identity_key_path(data_dir)
    if path.exists():
        return load_identity_key(data_dir)
    key = Ed25519PrivateKey.generate()
    locations.write_private(path, key.private_bytes_raw())
    return key


def _member_key(data_dir: Path, suite: str) -> bytes:
    """The public half of the HPKE key member snapshots are sealed to, created (0600) for ``suite`` unless a key of
    that suite is there already (a retry after a failed enroll reuses it)."""
    path = documents.member_key_path(data_dir)
    if path.exists():
        with contextlib.suppress(SyncError):
            documents.load_member_key(data_dir, suite)
            return hpke_public_key_bytes(suite, path.read_bytes())
    private = generate_hpke_private_key(suite)
    locations.write_private(path, private)
    return hpke_public_key_bytes(suite, private)


def _enrollment_from_answer(answer: EnrollAnswer, ledger_url: str) -> documents.Enrollment:
    load_hpke_public_key(answer.suite, answer.ledger_hpke_key)  # refuses a key of the wrong size now, not at sync
    return documents.Enrollment(
        terminal_id=answer.terminal_id, store_id=answer.store_id, ledger_url=ledger_url,
        ledger_hpke_public_key=answer.ledger_hpke_key.hex(), hpke_suite=answer.suite,
        root_public_key=answer.root_key.hex(), issuer=answer.issuer, members_sealed=True)


def cmd_enroll(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    data_dir = settings.data_dir
    existing = documents.read_enrollment(data_dir)
    if existing is not None:
        raise ConfigError(f"this terminal is already enrolled as {existing.terminal_id} with {existing.ledger_url}; "
                          f"remove {documents.enrollment_path(data_dir)} to enroll it again")
    code_keys = derive_code_keys(args.code)
    key = _identity_key(data_dir)
    expected_root = bytes.fromhex(args.root_key) if args.root_key is not None else None
    proof = make_proof(code_keys, key.public_key().public_bytes_raw(), args.suite, _member_key(data_dir, args.suite),
                       root_key=expected_root)
    client = LedgerClient(args.ledger, timeout_s=settings.sync.timeout_s)
    try:
        body = client.enroll(proof.to_json())
    except LedgerRefused as exc:
        if exc.code == "root_key_mismatch":
            raise SyncError("the ledger's root key is not the one given with --root-key; enrollment refused and "
                            "the code was not used", orig=exc) from exc
        raise
    finally:
        client.close()
    # Nothing is written before both checks: the MAC (only the code's holder can make it) and the root signature.
    answer = open_answer(code_keys.mac_key, proof, body)
    if expected_root is not None and answer.root_key != expected_root:
        raise SyncError("the ledger's root key is not the one given with --root-key; enrollment refused")
    enrollment = _enrollment_from_answer(answer, args.ledger.rstrip("/"))
    with TerminalStore.open(data_dir, enrollment.terminal_id) as store:
        applied = verify_and_save_documents(store, enrollment, {
            "trust_list": base64.b64encode(answer.trust_list).decode(),
            "rules": base64.b64encode(answer.rules).decode(),
            "revocations": base64.b64encode(answer.revocations).decode()})
        # Enrolling fetched fresh documents and there is nothing unsynced: it counts as a sync for the
        # offline limit on time since the last sync.
        store.sync_state.last_sync_ms = time.time_ns() // 1_000_000
    documents.write_enrollment(data_dir, enrollment)  # last: a failure above leaves the terminal unenrolled
    result = {"terminal_id": enrollment.terminal_id, "store_id": enrollment.store_id, "ledger": enrollment.ledger_url,
              "suite": enrollment.hpke_suite, "documents": applied}
    versions = ", ".join(f"{name} v{version}" for name, version in sorted(applied.items())) or "none"
    emit(result, args.json, f"enrolled as {enrollment.terminal_id} (store {enrollment.store_id}) with "
                            f"{enrollment.ledger_url}, suite {enrollment.hpke_suite}; documents: {versions}")
    return 0


def _report_text(report: SyncReport) -> str:
    pulled = ", ".join(f"{name} v{version}" for name, version in sorted(report.pulled.items())) or "nothing new"
    problems = "".join(f"; {reason}" for reason in [*report.refused.values(), *report.missing.values()])
    held = (f"; the ledger quarantined entries {', '.join(map(str, report.quarantined[:20]))}"
            f"{' …' if len(report.quarantined) > 20 else ''} (journaled, not applied)" if report.quarantined else "")
    return (f"pushed {report.pushed} entries in {report.batches} batches ({report.bytes_sent} bytes), "
            f"acked up to {report.acked_seq} (applied {report.applied}, duplicates {report.duplicates}); "
            f"pulled: {pulled}; queue depth {report.queue_depth}{held}{problems}")


def cmd_sync(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    enrollment = documents.require_enrollment(settings.data_dir)
    key = load_identity_key(settings.data_dir)
    with TerminalStore.open(settings.data_dir, enrollment.terminal_id) as store:
        service = SyncService(store, enrollment, key, settings=settings.sync, rng=random.SystemRandom())
        try:
            if args.once:
                try:
                    report = service.sync_once()
                except SyncError as exc:
                    depth = store.journal.queue_depth
                    emit({"ok": False, "error": str(exc), "queue_depth": depth}, args.json,
                         f"cardpos: sync failed: {exc}; {depth} entries stay queued")
                    return 1
                emit({"ok": True, **report.to_dict()}, args.json, _report_text(report))
                return 0
            return _sync_forever(service, args.json)
        finally:
            service.client.close()


def _sync_forever(service: SyncService, as_json: bool) -> int:
    """Foreground loop for scripts and services: sync, wait the interval (or backoff), repeat until Ctrl-C."""
    while True:
        try:
            report = service.sync_once()
            emit({"ok": True, **report.to_dict()}, as_json, _report_text(report))
        except SyncError as exc:
            emit({"ok": False, "error": str(exc), "queue_depth": service.status.queue_depth}, as_json,
                 f"sync failed: {exc}; {service.status.queue_depth} entries stay queued")
        time.sleep(service.next_delay_s())


def _when(ms: int | None) -> str:
    if ms is None:
        return "never"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def cmd_status(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    enrollment = documents.read_enrollment(settings.data_dir)
    if enrollment is None:
        emit({"enrolled": False}, args.json,
             f"not enrolled (no {documents.enrollment_path(settings.data_dir)}); "
             "run 'cardpos terminal enroll --ledger URL --code CODE'")
        return 1
    with TerminalStore.open(settings.data_dir, enrollment.terminal_id) as store:
        journal, state = store.journal, store.sync_state
        versions = state.document_versions()
        versions["members"] = store.cache.snapshot_version
        state_last_sync = state.last_sync_ms
        result = {"enrolled": True, "terminal_id": enrollment.terminal_id, "store_id": enrollment.store_id,
                  "ledger": settings.sync.ledger_url or enrollment.ledger_url, "suite": enrollment.hpke_suite,
                  "last_seq": journal.last_seq, "synced_seq": journal.synced_seq, "queue_depth": journal.queue_depth,
                  "last_sync_ms": state_last_sync, "last_error": state.last_error, "documents": versions}
    lines = [
        f"terminal {result['terminal_id']} (store {result['store_id']}) enrolled with {result['ledger']}, "
        f"suite {result['suite']}",
        f"journal: {result['last_seq']} entries, synced up to {result['synced_seq']}, "
        f"queue depth {result['queue_depth']}",
        f"last sync: {_when(state_last_sync)}" + (f"; last error: {result['last_error']}"
                                                         if result["last_error"] else ""),
        "documents: " + (", ".join(f"{k} v{v}" for k, v in sorted(versions.items())) or "none"),
    ]
    emit(result, args.json, "\n".join(lines))
    return 0
