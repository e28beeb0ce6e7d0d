"""Open a counter from a data dir: enrollment, the signed documents the ledger sent, and the store."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from cardkit.cards.revocation import RevocationList
from cardkit.cards.trust import load_trust_list
from cardkit.cards.verify import CardVerifier
from cardkit.config import Settings
from cardkit.core.rules import Rules
from cardkit.errors import CardError, ConfigError
from cardkit.pulldocs import load_rules_document
from terminal import documents
from terminal.documents import REVOCATIONS_FILE, RULES_FILE, TRUST_FILE
from terminal.offline.store import TerminalStore, wall_clock_ms
from terminal.service.counter import Counter


def load_verifier(data_dir: Path, enrollment: documents.Enrollment, *, clock_skew_s: int) -> CardVerifier:
    """A verifier from the saved trust list (root-signed, checked here again) and revocation list."""
    root = bytes.fromhex(enrollment.root_public_key)
    trust_raw = documents.load_document(data_dir, TRUST_FILE)
    if trust_raw is None:
        raise ConfigError(f"this terminal has no trust list ({documents.documents_dir(data_dir) / TRUST_FILE}); "
                          "run 'cardpos terminal sync' while the ledger is reachable")
    try:
        trust = load_trust_list(trust_raw, root)
        revocations_raw = documents.load_document(data_dir, REVOCATIONS_FILE)
        revocations = RevocationList.from_bytes(revocations_raw) if revocations_raw else RevocationList(0)
    except CardError as exc:
        raise ConfigError(f"a saved card document is not usable: {exc}; run 'cardpos terminal sync'",
                          orig=exc) from exc
    return CardVerifier(trust, revocations, issuer=enrollment.issuer, clock_skew_s=clock_skew_s)


def load_rules(data_dir: Path, enrollment: documents.Enrollment) -> Rules:
    """The ledger's signed rules if the terminal has them, else the defaults."""
    raw = documents.load_document(data_dir, RULES_FILE)
    if raw is None:
        return Rules.default()
    try:
        return load_rules_document(raw, bytes.fromhex(enrollment.root_public_key))
    except CardError as exc:
        raise ConfigError(f"the saved rules document is not usable: {exc}; run 'cardpos terminal sync'",
                          orig=exc) from exc


def _now_s() -> int:
    return int(time.time())


def open_counter(
    settings: Settings,
    *,
    clock: Callable[[], int] = _now_s,
    online: Callable[[], bool] = lambda: False,
    randbytes: Callable[[int], bytes] = os.urandom,
    authorize_online: bool = True,
) -> Counter:
    """The counter of the enrolled terminal in ``settings.data_dir`` (close it when done).

    ``authorize_online``: stored value, points and coupons are authorized by the ledger when it answers within
    ``sync.authorize_timeout_s`` (``terminal.sync.authorize``), else decided offline."""
    data_dir = settings.data_dir
    enrollment = documents.require_enrollment(data_dir)
    verifier = load_verifier(data_dir, enrollment, clock_skew_s=settings.terminal.clock_skew_s)
    rules = load_rules(data_dir, enrollment)
    # Journal stamps keep millisecond precision on the real clock; an injected clock (tests) drives them too.
    clock_ms = wall_clock_ms if clock is _now_s else (lambda: clock() * 1000)
    store = TerminalStore.open(data_dir, enrollment.terminal_id, clock_ms=clock_ms)
    authorizer = None
    if authorize_online:
        from terminal.sync.authorize import authorizer_for  # loads requests only where a counter is opened

        authorizer = authorizer_for(settings, data_dir)
    return Counter(store, verifier, rules, terminal_id=enrollment.terminal_id, clock=clock, online=online,
                   randbytes=randbytes, store_id=enrollment.store_id, authorizer=authorizer)
