"""What every counter operation works with, and the one way an operation is recorded.

``Counter`` (``counter.py``) is the desk. The modules that carry out operations (``taps``, ``lookups``,
``operations``, ``reversals``, ``people``, ``shifts``) take it as a ``Desk``, so each says what it uses and none
imports the counter. ``verifier`` and ``rules`` are read at each call: the app replaces them after a sync.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from cardkit.cards.verify import CardVerifier
from cardkit.core import loyalty
from cardkit.core.members import Tier
from cardkit.core.rules import Rules
from cardkit.core.state import MemberState
from terminal.offline.cache import CachedMember
from terminal.offline.store import TerminalStore
from terminal.service.authorization import AUTH_FIELD, AuthorizationPath, Authorizer
from terminal.service.figures import MemberFigures
from terminal.service.oplock import OperationLock
from terminal.service.receipt import Receipt
from terminal.service.receipt_lines import Line
from terminal.service.remote import LedgerLookups


class Desk(Protocol):
    store: TerminalStore
    verifier: CardVerifier
    rules: Rules
    terminal_id: str
    store_id: str | None
    """The store the terminal is enrolled in (None: not known; the whole gift catalogue applies)."""
    clock: Callable[[], int]
    """Epoch seconds."""
    randbytes: Callable[[int], bytes]
    operation_lock: OperationLock
    """Held from an operation's quote to its committed journal entry (one operation at a time per data dir)."""
    figures: MemberFigures
    lookups: LedgerLookups | None
    """Online look-ups (members at every store, originals of refunds anywhere); None: this terminal does not ask."""
    authorizer: Authorizer | None
    """Asks the ledger to authorize stored value, points and coupons online (None: always decide offline)."""

    @property
    def offline(self) -> bool: ...


def member_state(desk: Desk, member_id: str,
                 tier_hint: Tier = Tier.STANDARD) -> tuple[MemberState, CachedMember | None]:
    """The member's current state and their cached snapshot (None if unknown)."""
    fold, cached = desk.figures.fold(member_id, currency=desk.rules.currency, tier_hint=tier_hint)
    return fold.state, cached


def record(desk: Desk, quote: loyalty.Quote, cashier_id: str | None, lines: list[Line], offline: bool, *,
           manual: bool = False, path: AuthorizationPath | None = None, entry_uuid: str | None = None) -> Receipt:
    """Journal a quote (the caller holds the operation lock) and build its receipt from the committed entry.

    ``path``: the ledger was asked to authorize it (the entry then carries ``entry_uuid``, the uuid it was asked
    under, and says which path it took)."""
    # A card typed or scanned rather than tapped is marked so the ledger can watch manual entries per cashier.
    payload = {**quote.payload, "manual": True} if manual else quote.payload
    if path is not None:
        payload = {**payload, AUTH_FIELD: path.payload_value}
    entry = desk.store.journal.append(quote.kind, payload, cashier_id, entry_uuid=entry_uuid)
    return Receipt(entry=entry, lines=tuple(lines), after=quote.after, offline=offline)
