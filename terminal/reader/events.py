"""Events the reader driver delivers to the application (UI or headless)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ReaderState(enum.StrEnum):
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    ERROR = "error"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class CardPresented:
    """A card was tapped; ``token`` is the raw card token bytes as read. ``blank``: a card with no token yet
    (``token`` is empty), ready for ``ReaderDevice.write_card``; it is not a member's card to verify."""

    token: bytes
    challenge_capable: bool = False
    blank: bool = False


@dataclass(frozen=True, slots=True)
class CardRemoved:
    pass


@dataclass(frozen=True, slots=True)
class ReaderStatus:
    state: ReaderState
    detail: str = ""


ReaderEvent = CardPresented | CardRemoved | ReaderStatus
