"""cardpos terminal op upgrade / op newcard: the new card of a tier upgrade, asked for online and written through
the reader (``terminal.service.newcard``).

``op upgrade`` journals the upgrade, then asks the ledger for the new card (after pushing the journal) and, when a
reader is configured (``--reader`` or ``[reader] port``), writes it to the blank card on the reader. When the
ledger cannot be reached the new card is queued, and said so; ``op newcard`` asks again and writes it (the same
card: a retry after a failed or interrupted write never makes a second one). Without a reader the new card's
text form is printed, to print as a QR code or key in.
"""

from __future__ import annotations

import argparse
from typing import Any

from cardkit.cards.textform import token_to_text
from cardkit.cliutil import settings_from_args
from cardkit.config import Settings
from cardkit.errors import CardposError, SyncError
from terminal.service import newcard
from terminal.service.counter import Counter
from terminal.service.receipt import Receipt


class NewCardNotWritten(CardposError):
    """The new card is issued (or queued) but not on a card yet (exit status 1 for ``op newcard``)."""

    title = "New card not written"


def add_writer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reader", metavar="URL", default=None,
                        help="card reader to write the new card with (default: [reader] port; none: print it)")
    parser.add_argument("--wait", type=float, default=30.0, metavar="S",
                        help="seconds to wait for a blank card on the reader (default 30)")


def after_upgrade(counter: Counter, args: argparse.Namespace, receipt: Receipt) -> tuple[dict[str, Any], str]:
    """The upgrade is journaled: queue its new card, then try to get and write it now."""
    p = receipt.entry.payload
    state = newcard.remember_upgrade(counter.store, old_card=str(p["card"]), request=receipt.entry.uuid,
                                     member_id=str(p["member"]), tier=str(p["to"]))
    return _advance(counter, args, state)


def after_signup(counter: Counter, args: argparse.Namespace, receipt: Receipt) -> tuple[dict[str, Any], str]:
    """The sign-up is journaled: queue the member's first card, then try to get and write it now."""
    state = newcard.remember_signup(counter.store, request=receipt.entry.uuid,
                                    provisional_id=str(receipt.entry.payload["member"]))
    return _advance(counter, args, state)


def resume(counter: Counter, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """``op newcard``: ask again for a waiting new card and write it; refused (exit 1) while it is not written."""
    state = newcard.find(counter.store, args.old_card)
    result, text = _advance(counter, args, state)
    if result["new_card"]["stage"] != newcard.Stage.WRITTEN.value and not result["new_card"].get("token_text"):
        raise NewCardNotWritten(text)
    return result, text


def _settings(args: argparse.Namespace) -> Settings:
    return settings_from_args(args)


def _advance(counter: Counter, args: argparse.Namespace, state: newcard.NewCardState) -> tuple[dict[str, Any], str]:
    settings = _settings(args)
    try:
        state = newcard.obtain(counter.store, state, settings.sync)
    except SyncError as exc:
        return ({"new_card": {**state.summary(), "last_error": str(exc)}},
                f"New card queued: the ledger could not issue it now ({exc}). It is listed for the ledger's admins "
                f"once this terminal syncs; 'cardpos terminal op newcard --for {state.key}' asks again.")
    assert state.card is not None
    issued = (f"New card {state.card.card_id} ({state.card.tier}) issued by the ledger; "
              f"old card {state.old_card} revoked." if state.kind == "upgrade" else
              f"Card {state.card.card_id} issued by the ledger for member {state.card.member_id} "
              f"(provisional id {state.member_id} confirmed).")
    if state.stage == newcard.Stage.WRITTEN:
        return {"new_card": state.summary()}, f"{issued} Already written to a card."
    port = args.reader or settings.reader.port
    if not port:
        text = token_to_text(state.card.token)
        return ({"new_card": {**state.summary(), "token_text": text}},
                f"{issued} No card reader to write it: print or key in the card text {text}")
    writer = newcard.BlankCardWriter(port, baud=settings.reader.baud, wait_s=max(0.5, args.wait))
    try:
        state = newcard.write(counter.store, state, writer)
    except CardposError as exc:
        again = f"'cardpos terminal op newcard --for {state.key}' writes the same card again"
        return ({"new_card": {**state.summary(), "last_error": str(exc)}},
                f"{issued} Not written: {exc} The card is kept here; {again}.")
    return {"new_card": state.summary()}, f"{issued} Written to the card on the reader."
