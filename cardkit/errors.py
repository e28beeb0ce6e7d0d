"""One error tree for cardpos.

Third-party errors (serial, sqlite, requests, cryptography) are caught where they enter and wrapped in one of
these, with the original kept in ``orig``; people see ``str(error)``: one clear sentence.
"""

from __future__ import annotations


class CardposError(Exception):
    """Root of every error cardpos raises on purpose."""

    title = "Error"

    def __init__(self, message: str, *, title: str | None = None, orig: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title
        self.orig = orig

    def __str__(self) -> str:
        return self.message


class ConfigError(CardposError):
    title = "Configuration error"


class MoneyError(CardposError):
    title = "Amount error"


class DomainError(CardposError):
    """A loyalty rule refused an operation (insufficient balance, coupon used, ...)."""

    title = "Declined"

    def __init__(self, message: str, *, code: str = "declined", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.code = code


class CardError(CardposError):
    title = "Card error"


class ReaderError(CardposError):
    title = "Card reader error"


class JournalError(CardposError):
    title = "Journal error"


class SyncError(CardposError):
    title = "Sync error"


class WalletError(CardposError):
    """A wallet file of cards (``cardkit.wallet``) that cannot be read, written or used."""

    title = "Wallet error"
