"""Pulled documents only move forward, per kind (trust list, revocations, rules, member snapshots).

Pure rules, no I/O: the sync service asks ``judge`` before it saves or applies a pulled document, and ``is_missing``
after the pull. What a terminal holds of a kind is a ``Held`` mark: the newest version applied and the SHA-256 of
that document's bytes (docs/sync-protocol.md, "Versions only move forward"):

- a higher version is applied;
- the same version with the same bytes is a no-op (a retried answer);
- an older version, or the same version with other bytes, is **refused** and reported, never applied — an old
  revocation delta (the enrollment-time one from version 0, say) cannot un-revoke a card;
- a null document for a kind whose version at the ledger is above the one held is **missing**: the pull does not
  count as a successful sync for the offline limits.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# Kinds as the pull names their versions (GET /v1/pull?trust=V&revocations=V&rules=V&members=V).
DOC_TRUST, DOC_REVOCATIONS, DOC_RULES, DOC_MEMBERS = "trust", "revocations", "rules", "members"
KIND_NAMES = {DOC_TRUST: "trust list", DOC_REVOCATIONS: "revocation list", DOC_RULES: "rules",
              DOC_MEMBERS: "member snapshot"}


class Freshness(enum.Enum):
    NEWER = "newer"
    SAME = "same"
    OLDER = "older"
    CONFLICT = "conflict"  # the same version with other bytes


@dataclass(frozen=True)
class Held:
    """The newest document of a kind this terminal applied. ``digest`` is None for a document applied before
    marks were kept (its bytes are unknown: an equal version counts as the same)."""

    version: int
    digest: bytes | None


def judge(held: Held | None, version: int, digest: bytes) -> Freshness:
    """How a pulled document of ``version`` (whose bytes hash to ``digest``) stands against what is held."""
    if held is None or version > held.version:
        return Freshness.NEWER
    if version < held.version:
        return Freshness.OLDER
    if held.digest is None or held.digest == digest:
        return Freshness.SAME
    return Freshness.CONFLICT


def refusal(kind: str, freshness: Freshness, version: int, held: Held) -> str:
    """One sentence saying why a pulled document was refused."""
    name = KIND_NAMES.get(kind, kind)
    if freshness is Freshness.OLDER:
        return f"the ledger sent {name} version {version}, older than version {held.version} held here; refused"
    return f"the ledger sent {name} version {version} with other content than the one held here; refused"


def is_missing(ledger_version: int, held: Held | None) -> bool:
    """True when the ledger answered null for a kind although its version is above the one held (none: 0)."""
    return ledger_version > (held.version if held is not None else 0)


def missing_text(kind: str, ledger_version: int, held: Held | None) -> str:
    name = KIND_NAMES.get(kind, kind)
    have = f"version {held.version}" if held is not None else "none"
    return f"the ledger's answer lacked the {name} (version {ledger_version} at the ledger, {have} here)"
