"""The terminal's enrollment record and the documents pulled from the ledger, as files in the data dir.

Layout (all under the data dir):
  enrollment.json               who this terminal is and which ledger it trusts (written by ``terminal enroll``)
  keys/terminal_identity.key    the terminal's Ed25519 identity private key, raw 32 bytes, mode 0600
  keys/terminal_members.key     the HPKE private key member snapshots are sealed to (raw, as cardkit.envelope
                                reads it: 32 bytes for x25519, 96 for mlkem768x25519), mode 0600
  documents/trust_list.cose     signed issuer trust list (COSE_Sign1 by the ledger root key)
  documents/rules.cose          signed loyalty rules and offline limits
  documents/revocations.bin     the merged revocation/hold list (each delta's signature checked before merging)
Writes are atomic (temp file, fsync, rename) so a crash never leaves half a document.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from cardkit.envelope import HpkePrivateKey, load_hpke_private_key
from cardkit.errors import CardposError, ConfigError, SyncError
from cardkit.pulldocs import MemberSnapshot, load_member_snapshot, open_sealed_member_snapshot

# Names of the documents pulled from the ledger, inside documents_dir().
TRUST_FILE = "trust_list.cose"
"""The signed issuer trust list (COSE_Sign1 by the ledger root key)."""
RULES_FILE = "rules.cose"
"""The signed loyalty rules and offline limits."""
REVOCATIONS_FILE = "revocations.bin"
"""The merged revocation/hold list (``RevocationList.to_bytes``)."""


@dataclass(frozen=True)
class Enrollment:
    terminal_id: str
    store_id: str
    ledger_url: str
    ledger_hpke_public_key: str  # hex
    hpke_suite: str  # "x25519" (default) or "mlkem768x25519"
    root_public_key: str  # hex, Ed25519 key that signs trust list, revocations, rules, member snapshots
    issuer: str
    members_sealed: bool = False  # member snapshots come sealed to keys/terminal_members.key (false: enrolled
    # before sealing, when the ledger sent them in clear; such a terminal is asked to enroll again)


def enrollment_path(data_dir: Path) -> Path:
    return data_dir / "enrollment.json"


def identity_key_path(data_dir: Path) -> Path:
    return data_dir / "keys" / "terminal_identity.key"


def member_key_path(data_dir: Path) -> Path:
    return data_dir / "keys" / "terminal_members.key"


def load_member_key(data_dir: Path, suite: str) -> HpkePrivateKey:
    """The HPKE private key member snapshots are sealed to; raises SyncError when it is missing or damaged."""
    path = member_key_path(data_dir)
    try:
        return load_hpke_private_key(suite, path.read_bytes())
    except FileNotFoundError as exc:
        raise SyncError(f"the terminal's member key {path} is missing; enroll this terminal again", orig=exc) from exc
    except (OSError, CardposError) as exc:
        raise SyncError(f"the terminal's member key {path} is unreadable or damaged; enroll this terminal again",
                        orig=exc) from exc


def open_member_snapshot(data_dir: Path, enrollment: Enrollment, data: bytes) -> MemberSnapshot:
    """Check (and for a terminal enrolled with a member key, open) a pulled member snapshot. A terminal with a
    member key accepts sealed snapshots only. Raises CardError for a bad document, SyncError for a bad key."""
    root = bytes.fromhex(enrollment.root_public_key)
    if not enrollment.members_sealed:
        return load_member_snapshot(data, root)
    return open_sealed_member_snapshot(data, root, terminal_id=enrollment.terminal_id, suite=enrollment.hpke_suite,
                                       private_key=load_member_key(data_dir, enrollment.hpke_suite))


def documents_dir(data_dir: Path) -> Path:
    return data_dir / "documents"


def read_enrollment(data_dir: Path) -> Enrollment | None:
    path = enrollment_path(data_dir)
    if not path.exists():
        return None
    try:
        return Enrollment(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"enrollment file {path} is damaged; enroll this terminal again", orig=exc) from exc


def require_enrollment(data_dir: Path) -> Enrollment:
    enrollment = read_enrollment(data_dir)
    if enrollment is None:
        raise ConfigError(
            f"this terminal is not enrolled (no {enrollment_path(data_dir)}); "
            "run 'cardpos terminal enroll --ledger URL --code CODE' first"
        )
    return enrollment


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_enrollment(data_dir: Path, enrollment: Enrollment) -> None:
    atomic_write(enrollment_path(data_dir), json.dumps(asdict(enrollment), indent=2).encode(), 0o600)


def save_document(data_dir: Path, name: str, data: bytes) -> None:
    atomic_write(documents_dir(data_dir) / name, data)


def load_document(data_dir: Path, name: str) -> bytes | None:
    path = documents_dir(data_dir) / name
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
