"""What the headless ``cardpos terminal op`` may ask the ledger while it runs one operation (issue 14).

The app's online look-ups (``terminal.compose.attach_lookups``) on the op's counter:
- an op that taps a card looks up a member this terminal was not sent; the counter stays offline as far as the
  offline limits go (stored value, points and coupons are authorized online by the counter's authorizer);
- ``op refund`` and ``op void`` fetch an original recorded at another terminal, with what is left to refund, through
  the app's reversal code (``terminal.service.reversals``), and the reversal is authorized online like a payment.
  For them the counter is online until a look-up cannot reach the ledger (``ReachedLedger``): then, as in the app
  offline, only originals in this terminal's journal can be reversed, and another terminal's is refused with the
  app's reason (``original_unavailable``) and nothing is journaled.
A terminal that cannot sign (no identity key) asks nothing: unknown members take the unknown-balance path and
reversals take only this terminal's originals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from cardkit.config import Settings
from cardkit.errors import CardposError
from terminal import documents
from terminal.service.counter import Counter
from terminal.service.remote import LookedUpMember, OriginalOperation

if TYPE_CHECKING:
    from terminal.sync.lookup import LedgerLookup

log = logging.getLogger("cardpos.terminal.op")

REVERSAL_OPS = ("refund", "void")
"""The ops that reverse an original, which may have been recorded at any terminal of the program."""

_Answer = TypeVar("_Answer")


class ReachedLedger:
    """The op's look-ups (a ``terminal.service.remote.LedgerLookups``) that remember whether the ledger could be
    reached: ``online`` is the counter's online test for a reversal, true until a look-up found the ledger
    unreachable (a refused question, such as an unknown operation, is an answer: still online)."""

    def __init__(self, lookups: LedgerLookup) -> None:
        self.lookups = lookups
        self.reached = True

    def online(self) -> bool:
        return self.reached

    def member(self, card_id: str) -> LookedUpMember:
        return self._ask(self.lookups.member, card_id)

    def original(self, entry_uuid: str) -> OriginalOperation:
        return self._ask(self.lookups.original, entry_uuid)

    def close(self) -> None:
        self.lookups.close()

    def _ask(self, question: Callable[[str], _Answer], subject: str) -> _Answer:
        from terminal.sync.client import LedgerUnreachable

        try:
            return question(subject)
        except LedgerUnreachable:
            self.reached = False  # what follows in this op is decided offline, as the app does offline
            raise


def attach_for_op(counter: Counter, settings: Settings, op_command: str | None) -> LedgerLookup | ReachedLedger | None:
    """Attach the online look-ups an op needs to its counter; close what this returns when done (None: nothing
    attached, the op asks the ledger nothing beyond its authorizations)."""
    from terminal.compose import attach_lookups

    try:
        lookups = attach_lookups(counter, settings, documents.require_enrollment(settings.data_dir))
    except CardposError as exc:
        log.warning("online look-ups off: %s", exc)
        return None
    if op_command not in REVERSAL_OPS:
        return lookups
    reach = ReachedLedger(lookups)
    counter.lookups = reach
    counter.online = reach.online
    return reach
