"""The new card of a tier upgrade, at the counter: ask the ledger for it, keep it until it is on plastic, write it.

States of one upgrade's new card, kept in the terminal's sync state (``new_cards``, keyed by the old card id) so
they survive a restart and every retry uses the same card:

    queued   the upgrade is journaled; the ledger has not issued the card yet (offline, or it refused for now)
    issued   the ledger issued the card (its signed answer is kept): the old card is revoked at the ledger and the
             new token waits to be written; a failed or interrupted write stays here, and the retry writes the
             very same token (asking the ledger again returns the same card, never a second one)
    written  the reader confirmed the write of this token to a blank card

The ledger is asked only after this terminal's journal was pushed (the ledger issues cards for upgrades it holds).
"""

from __future__ import annotations

import contextlib
import enum
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from cardkit import answers
from cardkit.card_issue import NewCard, open_card_key, verify_new_card
from cardkit.config import SyncSettings
from cardkit.errors import CardposError, ReaderError, SyncError
from terminal import documents
from terminal.offline.store import TerminalStore
from terminal.reader.device import CardWriteError, ReaderDevice
from terminal.reader.events import CardPresented, ReaderEvent, ReaderState, ReaderStatus
from terminal.sync.client import TerminalSigner
from terminal.sync.service import SyncService, load_identity_key

NEW_CARDS_KEY = "new_cards"


class Stage(enum.StrEnum):
    QUEUED = "queued"
    ISSUED = "issued"
    WRITTEN = "written"


@dataclass(frozen=True)
class NewCardState:
    """Where one upgrade's new card stands (see the module docs)."""

    old_card: str
    request: str
    member_id: str
    tier: str
    stage: Stage = Stage.QUEUED
    card: NewCard | None = None
    last_error: str = ""
    kind: str = "upgrade"
    """``upgrade`` (the card replaces ``old_card``) or ``signup`` (a new member's first card; ``old_card`` is empty
    and ``member_id`` the provisional id until the ledger's answer names the member)."""

    @property
    def key(self) -> str:
        """What the state is kept and asked for under: the old card, or a sign-up's provisional member id."""
        return self.old_card if self.kind == "upgrade" else self.member_id

    def to_json(self) -> dict[str, Any]:
        return {"old_card": self.old_card, "request": self.request, "member_id": self.member_id, "tier": self.tier,
                "stage": self.stage.value, "card": self.card.to_json() if self.card else None,
                "last_error": self.last_error, "kind": self.kind}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NewCardState:
        card = data.get("card")
        return cls(old_card=str(data["old_card"]), request=str(data["request"]), member_id=str(data["member_id"]),
                   tier=str(data["tier"]), stage=Stage(str(data["stage"])),
                   card=NewCard.from_json(card) if isinstance(card, dict) else None,
                   last_error=str(data.get("last_error") or ""), kind=str(data.get("kind") or "upgrade"))

    def summary(self) -> dict[str, Any]:
        """What a cashier or a script is told (no token or key)."""
        return {"kind": self.kind, "old_card": self.old_card or None, "request": self.request,
                "member_id": self.card.member_id if self.card else self.member_id,
                "provisional_id": self.member_id if self.kind == "signup" else None, "tier": self.tier,
                "stage": self.stage.value, "new_card": self.card.card_id if self.card else None,
                "last_error": self.last_error or None}


# -- the kept states ------------------------------------------------------------------------------------------------
def all_states(store: TerminalStore) -> dict[str, NewCardState]:
    raw = store.sync_state.get(NEW_CARDS_KEY, {}) or {}
    return {old: NewCardState.from_json(value) for old, value in raw.items()}


def save(store: TerminalStore, state: NewCardState) -> NewCardState:
    raw = dict(store.sync_state.get(NEW_CARDS_KEY, {}) or {})
    raw[state.key] = state.to_json()
    store.sync_state.set(NEW_CARDS_KEY, raw)
    return state


def remember_upgrade(store: TerminalStore, *, old_card: str, request: str, member_id: str, tier: str) -> NewCardState:
    """The upgrade entry ``request`` was journaled: its new card is queued."""
    kept = all_states(store).get(old_card)
    if kept is not None and kept.request == request:
        return kept
    return save(store, NewCardState(old_card=old_card, request=request, member_id=member_id, tier=tier))


def remember_signup(store: TerminalStore, *, request: str, provisional_id: str) -> NewCardState:
    """The sign-up entry ``request`` was journaled: the new member's first card is queued (a state already kept
    for that request is left as it is: asking again must not forget an issued card)."""
    kept = all_states(store).get(provisional_id)
    if kept is not None and kept.request == request:
        return kept
    return save(store, NewCardState(old_card="", request=request, member_id=provisional_id, tier="standard",
                                    kind="signup"))


def waiting(store: TerminalStore) -> list[NewCardState]:
    """New cards not yet on plastic (queued or issued), oldest request first."""
    return sorted((s for s in all_states(store).values() if s.stage != Stage.WRITTEN), key=lambda s: s.request)


def find(store: TerminalStore, key: str | None) -> NewCardState:
    """The state kept under ``key`` (an upgraded card's id, or a sign-up's provisional member id), or the only
    waiting one when ``key`` is None; ``SyncError`` otherwise."""
    states = all_states(store)
    if key is not None:
        if key not in states:
            raise SyncError(f"no tier upgrade of card {key} or sign-up {key} was recorded on this terminal")
        return states[key]
    pending = waiting(store)
    if len(pending) != 1:
        raise SyncError("no new card is waiting on this terminal" if not pending else
                        f"{len(pending)} new cards are waiting; say which with --for "
                        f"({', '.join(s.key for s in pending)})")
    return pending[0]


# -- asking the ledger --------------------------------------------------------------------------------------------
def obtain(store: TerminalStore, state: NewCardState, settings: SyncSettings, *,
           sync: Callable[[], object] | None = None) -> NewCardState:
    """Push the journal, then ask the ledger for the card (the same answer for the same request). Raises
    ``SyncError`` (the state keeps its stage and records the reason) when the ledger cannot be asked or refuses."""
    if state.card is not None:
        return state
    enrollment = documents.require_enrollment(store.data_dir)
    key = load_identity_key(store.data_dir)
    service = SyncService(store, enrollment, key, settings=settings, rng=random.SystemRandom())
    try:
        try:
            (sync or service.sync_once)()
            nonce = answers.new_nonce()
            answer = service.client.new_card(state.old_card, state.request,
                                             TerminalSigner(enrollment.terminal_id, key), nonce)
            card = verify_new_card(answer, bytes.fromhex(enrollment.root_public_key),
                                   terminal_id=enrollment.terminal_id, nonce=nonce, request=state.request,
                                   old_card=state.old_card)
        except SyncError as exc:
            save(store, replace(state, last_error=str(exc)))
            raise
        issued = save(store, replace(state, stage=Stage.ISSUED, card=card, last_error=""))
        with contextlib.suppress(SyncError):  # pull again: the old card's revocation is news (else next sync)
            (sync or service.sync_once)()
        return issued
    finally:
        service.client.close()


def card_key(store: TerminalStore, card: NewCard) -> bytes | None:
    """A challenge card's private key, opened with this terminal's member key (None for a plain card)."""
    if card.sealed_key is None:
        return None
    enrollment = documents.require_enrollment(store.data_dir)
    return open_card_key(card.sealed_key, terminal_id=enrollment.terminal_id, request=card.request,
                         suite=enrollment.hpke_suite,
                         private_key=documents.load_member_key(store.data_dir, enrollment.hpke_suite))


# -- writing it ---------------------------------------------------------------------------------------------------
def write(store: TerminalStore, state: NewCardState, writer: Callable[[bytes, bytes | None], None]) -> NewCardState:
    """Write the issued card with ``writer(token, key)``; a failure keeps it issued (the retry writes the same
    token) and records why."""
    if state.card is None:
        raise SyncError("the ledger has not issued this new card yet")
    if state.stage == Stage.WRITTEN:
        return state
    try:
        writer(state.card.token, card_key(store, state.card))
    except CardposError as exc:
        save(store, replace(state, last_error=str(exc)))
        raise
    return save(store, replace(state, stage=Stage.WRITTEN, last_error=""))


def advance(store: TerminalStore, state: NewCardState, *, settings: SyncSettings | None,
            sync: Callable[[], object] | None, writer: Callable[[bytes, bytes | None], None] | None
            ) -> NewCardState:
    """Take a kept new card as far as it goes now: (enrolled, ``settings`` given) ask the ledger for it, then (a
    reader, ``writer``) write it. Never raises for the ledger or the reader: the state says how far it got and why
    not further (``last_error``), and the card waits for ``op newcard`` or the next try."""
    if settings is None:
        return state
    try:
        state = obtain(store, state, settings, sync=sync)
    except SyncError:
        return find(store, state.key)
    if writer is None:
        return state
    try:
        return write(store, state, writer)
    except CardposError:
        return find(store, state.key)


def card_for_signup(store: TerminalStore, *, request: str, provisional_id: str, settings: SyncSettings | None,
                    sync: Callable[[], object] | None, writer: Callable[[bytes, bytes | None], None] | None
                    ) -> NewCardState:
    """The app's path after a sign-up: queue the member's first card, then ``advance`` it."""
    state = remember_signup(store, request=request, provisional_id=provisional_id)
    return advance(store, state, settings=settings, sync=sync, writer=writer)


def card_for_upgrade(store: TerminalStore, *, request: str, old_card: str, member_id: str, tier: str,
                     settings: SyncSettings | None, sync: Callable[[], object] | None,
                     writer: Callable[[bytes, bytes | None], None] | None) -> NewCardState:
    """The app's path after a tier upgrade (the same steps as ``op upgrade``): queue the new card, then
    ``advance`` it; a retry (same ``request``) takes the kept state, so it writes the very same card."""
    state = remember_upgrade(store, old_card=old_card, request=request, member_id=member_id, tier=tier)
    return advance(store, state, settings=settings, sync=sync, writer=writer)


class BlankCardWriter:
    """Writes through a reader port: waits up to ``wait_s`` for a blank card on the reader, then writes."""

    def __init__(self, port: str, *, baud: int = 115200, wait_s: float = 30.0) -> None:
        self.port = port
        self.baud = baud
        self.wait_s = wait_s
        self._blank = threading.Event()
        self._connected = threading.Event()

    def _on_event(self, event: ReaderEvent) -> None:
        if isinstance(event, CardPresented) and event.blank:
            self._blank.set()
        elif isinstance(event, ReaderStatus) and event.state == ReaderState.CONNECTED:
            self._connected.set()

    def __call__(self, token: bytes, key: bytes | None) -> None:
        device = ReaderDevice(self.port, baud=self.baud, on_event=self._on_event)
        device.start()
        try:
            deadline = time.monotonic() + self.wait_s
            if not self._connected.wait(max(0.1, min(5.0, self.wait_s))):
                raise ReaderError(f"The card reader at {self.port} is not connected.")
            while True:
                try:
                    device.write_card(token, key, timeout_s=3.0)
                    return
                except CardWriteError as exc:
                    from cardkit.frames import ErrorCode

                    # Nothing on the reader yet: wait for a blank card to be put on it, then write.
                    left = deadline - time.monotonic()
                    if exc.code != ErrorCode.NO_CARD or left <= 0:
                        raise
                    self._blank.clear()
                    self._blank.wait(min(left, 1.0))
        finally:
            device.stop()
