"""One error tree for cardpos.

Third-party errors (serial, sqlite, requests, cryptography) are caught where they enter and wrapped in one of
these, with the original kept in ``orig``; people see ``str(error)``: one clear sentence.

That sentence is English (logs, scripts, the ledger). An error shown to a cashier is said in their language from
``sentence`` (a key in the terminal's catalogue, ``terminal/i18n``) and ``params``: the values the sentence names
(codes, numbers, ``Money``), never words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class CardposError(Exception):
    """Root of every error cardpos raises on purpose."""

    title = "Error"

    def __init__(self, message: str, *, title: str | None = None, orig: BaseException | None = None,
                 sentence: str | None = None, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title
        self.orig = orig
        self.sentence = sentence
        """The catalogue key that says this error in any language (None: only the English message)."""
        self.params: dict[str, Any] = dict(params or {})

    def __str__(self) -> str:
        return self.message


class ConfigError(CardposError):
    title = "Configuration error"


class MoneyError(CardposError):
    title = "Amount error"


class DomainError(CardposError):
    """A loyalty rule refused an operation (insufficient balance, coupon used, ...).

    ``code`` names the decline for scripts and picks the advice shown with it; ``sentence`` (default: the code)
    names the words that say it, under ``decline.`` in the terminal's catalogue, with ``params``.
    """

    title = "Declined"

    def __init__(self, message: str, *, code: str = "declined", sentence: str | None = None,
                 params: Mapping[str, Any] | None = None, title: str | None = None,
                 orig: BaseException | None = None) -> None:
        super().__init__(message, title=title, orig=orig, sentence=sentence or code, params=params)
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
