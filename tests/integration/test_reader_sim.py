"""The real driver against the real simulator process on a real pty: verdicts, unplug/replug, faults."""

from __future__ import annotations

import os
import time

from hwsim.testcards import IssuedWallet

from terminal.cards.challenge import check_challenge, needs_challenge, new_nonce
from terminal.cards.verdict import Verdict
from terminal.cards.verify import CardVerifier
from terminal.reader.device import ReaderDevice
from terminal.reader.events import CardPresented, CardRemoved, ReaderState, ReaderStatus
from tests.fixtures.sim import EventSink, SimFactory


def _verdict(device: ReaderDevice, verifier: CardVerifier, event: CardPresented) -> Verdict:
    """What the counter does with a tap (on the test thread, never on the reader thread)."""
    verdict = verifier.verify(event.token, int(time.time()))
    if needs_challenge(verdict):
        assert event.challenge_capable
        nonce = new_nonce(os.urandom)
        verdict = check_challenge(verdict, nonce, device.challenge(nonce, timeout_s=3.0))
    device.feedback(verdict.accepted)
    return verdict


def _is_card(event: object) -> bool:
    return isinstance(event, CardPresented)


def _status(state: ReaderState):
    return lambda e: isinstance(e, ReaderStatus) and e.state == state


def test_every_card_kind_gets_its_verdict(sim_process: SimFactory, wallet_file, issued_wallet: IssuedWallet,
                                           event_sink: EventSink) -> None:
    sim = sim_process(wallet_file)
    verifier = CardVerifier(issued_wallet.trust, issued_wallet.revocations, issuer=issued_wallet.issuer)
    # The cloned card carries the same token as the key card; a short debounce lets both taps through.
    device = ReaderDevice(sim.port, on_event=event_sink, debounce_ms=100)
    device.start()
    try:
        event_sink.wait_for(_status(ReaderState.CONNECTED), 5)
        assert sim.command("list").startswith(f"ok {len(issued_wallet.expected)} cards")
        for number, expected in issued_wallet.expected.items():
            assert sim.command(f"tap {number}").startswith(f"ok tapped {number}")
            _, event = event_sink.wait_for(_is_card, 5)
            assert isinstance(event, CardPresented)
            verdict = _verdict(device, verifier, event)
            assert verdict.reason == expected, (number, issued_wallet.wallet.card(number).kind)
            event_sink.wait_for(lambda e: isinstance(e, CardRemoved), 5)
        status = sim.command("status")
        kinds = list(issued_wallet.expected.values())
        assert f"feedback_ok={kinds.count(None)} " in status
        assert "challenges=2 " in status  # the key card and its copy
        assert device.stats.crc_errors == 0 and device.stats.cards == len(kinds)
    finally:
        device.stop()


def test_unplug_then_replug_reconnects_within_two_seconds(sim_process: SimFactory, wallet_file,
                                                          event_sink: EventSink) -> None:
    sim = sim_process(wallet_file)
    device = ReaderDevice(sim.port, on_event=event_sink)
    device.start()
    try:
        event_sink.wait_for(_status(ReaderState.CONNECTED), 5)
        for _ in range(2):
            assert sim.command("unplug") == "ok unplugged"
            event_sink.wait_for(_status(ReaderState.RECONNECTING), 5)
            time.sleep(0.8)  # stay unplugged long enough for the driver's backoff to reach its cap
            replugged_at = time.monotonic()
            assert sim.command("replug").startswith("ok replugged pty /dev/pts/")
            connected_at, _ = event_sink.wait_for(_status(ReaderState.CONNECTED), 5)
            took = connected_at - replugged_at
            print(f"\nreconnected {took * 1000:.0f} ms after replug")
            assert took < 2.0
        assert sim.command("tap 1").startswith("ok")
        event_sink.wait_for(_is_card, 5)
        assert device.stats.reconnects == 2
    finally:
        device.stop()
