"""The ledger's errors: part of the one tree under ``cardkit.errors.CardposError``, shown as one sentence.

``LedgerStorageError`` is what a database failure (SQLite or PostgreSQL) becomes at the ledger's boundaries
(admin commands and the HTTP API); ``ledger.storage_errors`` words it and keeps the driver's error in ``orig``.
"""

from __future__ import annotations

import enum

from cardkit.errors import CardposError


class LedgerError(CardposError):
    title = "Ledger error"


class StorageFailure(enum.Enum):
    """What went wrong underneath, as far as the driver's error tells. The value is a short phrase for
    people who cannot do anything about it (a terminal's operator reading the API's answer)."""

    FULL = "its disk is full"
    READ_ONLY = "it is read-only"
    CANNOT_OPEN = "it cannot be opened"
    DAMAGED = "it is damaged"
    IO_ERROR = "its disk reported an input/output error"
    LOCKED = "it is locked by another program"
    CONFLICT = "a conflicting change was in progress"
    CONNECTION_LOST = "the connection to it was lost"
    OTHER = "it refused the operation"

    @property
    def reason(self) -> str:
        """The API error code: ``busy`` (contention: retry in a moment), ``storage`` (the database cannot work
        now: retry later) or ``fault`` (a statement the database refused: a bug, not worth a retry)."""
        if self in (StorageFailure.LOCKED, StorageFailure.CONFLICT):
            return "busy"
        if self is StorageFailure.OTHER:
            return "fault"
        return "storage"


class LedgerStorageError(LedgerError):
    """The ledger database failed under a command or a request; ``failure`` says how, ``orig`` is the driver's
    error, the message names the database and what to do."""

    title = "Ledger database error"

    def __init__(self, message: str, *, failure: StorageFailure = StorageFailure.OTHER,
                 orig: BaseException | None = None) -> None:
        super().__init__(message, orig=orig)
        self.failure = failure

    @property
    def reason(self) -> str:
        return self.failure.reason

    @property
    def retryable(self) -> bool:
        return self.failure.reason != "fault"

    @property
    def public_message(self) -> str:
        """The sentence for an API caller: what happened, without the ledger's file names or hosts."""
        if self.reason == "busy":
            return "the ledger database is busy; try again shortly"
        return f"the ledger database is unavailable ({self.failure.value}); try again later"
