"""The real driver against the real simulator process on a real pty: verdicts, unplug/replug, faults."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import pytest
from hwsim.testcards import IssuedWallet

from cardkit.cards.challenge import check_challenge, needs_challenge, new_nonce
from cardkit.cards.verdict import Verdict
from cardkit.cards.verify import CardVerifier
from terminal.reader.device import ReaderDevice
from terminal.reader.events import CardPresented, CardRemoved, ReaderEvent, ReaderState, ReaderStatus
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


def _card_with(token: bytes) -> Callable[[ReaderEvent], bool]:
    return lambda e: isinstance(e, CardPresented) and e.token == token


def _status(state: ReaderState) -> Callable[[ReaderEvent], bool]:
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


@pytest.mark.timing  # asserts reconnection within 2 s: measured in the serial run
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


@pytest.mark.timing  # each tap's event within 1 s and no heartbeat lapse (0.2 s): measured in the serial run
def test_event_stream_never_stalls_while_faults_are_injected(sim_process: SimFactory, wallet_file,
                                                             issued_wallet: IssuedWallet,
                                                             event_sink: EventSink) -> None:
    # Short dwell: each card is off the reader before the next fault is armed, so the fault hits the next tap.
    sim = sim_process(wallet_file, "--heartbeat", "0.2", "--dwell", "0.1")
    tokens = {n: c.token_bytes() for n, c in enumerate(issued_wallet.wallet.cards, start=1)}
    rotation = [1, 2, 3, 4, 5, 6, 7, 8, 11]  # distinct tokens
    device = ReaderDevice(sim.port, on_event=event_sink, debounce_ms=200)
    device.start()
    latencies: list[float] = []
    try:
        event_sink.wait_for(_status(ReaderState.CONNECTED), 5)
        faults = ["noise 64", "flip", "noise 900", "truncate", "dup", "stall 0.4", "noise 7", "flip", "noise 300",
                  "truncate", "dup", "noise 1"]
        for i, fault in enumerate(faults):
            assert sim.command(fault).startswith("ok")
            first, second = rotation[(2 * i) % 9], rotation[(2 * i + 1) % 9]
            assert sim.command(f"tap {first}").startswith("ok")
            if fault not in ("flip", "truncate"):  # those two destroy exactly this tap's frame
                event_sink.wait_for(_card_with(tokens[first]), 2)
            time.sleep(0.25)
            sent = time.monotonic()
            assert sim.command(f"tap {second}").startswith("ok")
            at, _ = event_sink.wait_for(_card_with(tokens[second]), 1)
            latencies.append(at - sent)
            time.sleep(0.25)
        stats = device.stats
    finally:
        device.stop()
    events = event_sink.snapshot()
    cards = [e for e in events if isinstance(e, CardPresented)]
    assert {e.token for e in cards} <= set(tokens.values())  # nothing corrupted ever came out as a card
    assert len(cards) == len(faults) * 2 - 4  # two flips and two truncations each cost one tap
    assert not [e for e in events if isinstance(e, ReaderStatus) and e.state != ReaderState.CONNECTED
                and e.state != ReaderState.CLOSED]
    assert stats.crc_errors >= 2 and stats.resyncs >= 6 and stats.debounced == 2
    print(f"\ntap-to-event latency under faults: max {max(latencies) * 1000:.0f} ms")


def test_silence_past_the_heartbeat_timeout_reconnects(sim_process: SimFactory, wallet_file,
                                                       event_sink: EventSink) -> None:
    sim = sim_process(wallet_file, "--heartbeat", "0.2")
    device = ReaderDevice(sim.port, on_event=event_sink, heartbeat_timeout_s=1.0)
    device.start()
    try:
        event_sink.wait_for(_status(ReaderState.CONNECTED), 5)
        stalled_at = time.monotonic()
        assert sim.command("stall 2.5") == "ok stalled for 2.5 s"
        at, event = event_sink.wait_for(_status(ReaderState.RECONNECTING), 3)
        # The last heartbeat came at most 0.2 s before the stall, so the 1 s timeout fires 0.8 to ~1.2 s after it.
        assert isinstance(event, ReaderStatus) and "silent" in event.detail and 0.75 < at - stalled_at < 2.0
        time.sleep(2.0)
        assert sim.command("tap 2").startswith("ok")
        event_sink.wait_for(_is_card, 3)
        assert device.stats.reconnects >= 1 and device.state == ReaderState.CONNECTED
    finally:
        device.stop()


def test_socket_url_and_reconnect_over_tcp(sim_process: SimFactory, wallet_file, event_sink: EventSink) -> None:
    sim = sim_process(wallet_file, "--tcp", "0")
    assert sim.port.startswith("socket://127.0.0.1:")
    device = ReaderDevice(sim.port, on_event=event_sink)
    device.start()
    try:
        event_sink.wait_for(_status(ReaderState.CONNECTED), 5)
        assert sim.command("tap 1").startswith("ok")
        event_sink.wait_for(_is_card, 3)
        assert sim.command("unplug") == "ok unplugged"
        event_sink.wait_for(_status(ReaderState.RECONNECTING), 3)
        replugged = time.monotonic()
        assert sim.command("replug").startswith("ok replugged listening socket://127.0.0.1:")
        at, _ = event_sink.wait_for(_status(ReaderState.CONNECTED), 3)
        assert at - replugged < 2.0
        time.sleep(0.2)  # the simulator accepts the new connection on its next poll
        assert sim.command("tap 3").startswith("ok")
        event_sink.wait_for(_is_card, 3)
    finally:
        device.stop()


def test_a_port_that_appears_later_is_picked_up(sim_process: SimFactory, wallet_file, tmp_path,
                                                event_sink: EventSink) -> None:
    link = tmp_path / "reader0"  # where the fixture's first simulator will put its link
    device = ReaderDevice(str(link), on_event=event_sink)
    device.start(retry_if_missing=True)
    try:
        _, event = event_sink.wait_for(_status(ReaderState.RECONNECTING), 2)
        assert isinstance(event, ReaderStatus) and "does not exist" in event.detail
        sim = sim_process(wallet_file)
        assert sim.port == str(link)
        event_sink.wait_for(_status(ReaderState.CONNECTED), 3)
        assert sim.command("tap 4").startswith("ok")
        event_sink.wait_for(_is_card, 3)
    finally:
        device.stop()


def test_a_misbehaving_callback_cannot_hurt_the_reader_thread(sim_process: SimFactory, wallet_file) -> None:
    sim = sim_process(wallet_file, "--dwell", "0.1")
    seen: list[object] = []
    device: ReaderDevice

    def on_event(event: object) -> None:
        seen.append(event)
        if isinstance(event, CardPresented):
            try:
                device.challenge(b"n" * 16)  # would deadlock the reader thread: refused
            except Exception as exc:
                seen.append(exc)
            raise RuntimeError("callback bug")  # logged, the reader carries on

    device = ReaderDevice(sim.port, on_event=on_event)
    device.start()
    try:
        for number in (1, 2):
            assert sim.command(f"tap {number}").startswith("ok")
            deadline = time.monotonic() + 3
            while sum(isinstance(e, CardPresented) for e in seen) < number and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        device.stop()
    refusals = [e for e in seen if isinstance(e, Exception)]
    assert sum(isinstance(e, CardPresented) for e in seen) == 2 and len(refusals) == 2
    assert all("cannot run inside on_event" in str(e) for e in refusals)


def test_challenge_fails_cleanly_when_the_reader_is_pulled(sim_process: SimFactory, wallet_file,
                                                           issued_wallet: IssuedWallet,
                                                           event_sink: EventSink) -> None:
    sim = sim_process(wallet_file)
    key_card = next(n for n, c in enumerate(issued_wallet.wallet.cards, start=1) if c.kind == "challenge")
    device = ReaderDevice(sim.port, on_event=event_sink)
    device.start()
    try:
        event_sink.wait_for(_status(ReaderState.CONNECTED), 5)
        assert sim.command(f"tap {key_card} hold").startswith("ok")
        event_sink.wait_for(_is_card, 3)
        assert len(device.challenge(b"\x01" * 16, timeout_s=2)) == 64  # answered while the line is up
        assert sim.command("stall 5").startswith("ok")  # the answer to the next challenge stays queued...
        errors: list[Exception] = []

        def ask() -> None:
            try:
                device.challenge(b"\x02" * 16, timeout_s=3)
            except Exception as exc:
                errors.append(exc)

        asker = threading.Thread(target=ask)
        started = time.monotonic()
        asker.start()
        time.sleep(0.3)
        assert sim.command("unplug") == "ok unplugged"  # ...and is lost with the line
        asker.join(timeout=5)
        assert len(errors) == 1 and "disconnected during" in str(errors[0])
        assert time.monotonic() - started < 2.0  # not left waiting for the full timeout
    finally:
        device.stop()


def test_debounce_window_runs_on_the_injected_clock(sim_process: SimFactory, wallet_file,
                                                    event_sink: EventSink) -> None:
    sim = sim_process(wallet_file, "--dwell", "0.05")
    now = [1000.0]
    device = ReaderDevice(sim.port, on_event=event_sink, debounce_ms=1500, clock=lambda: now[0])
    device.start()
    try:
        event_sink.wait_for(_status(ReaderState.CONNECTED), 5)
        sim.command("tap 1")
        event_sink.wait_for(_is_card, 3)
        event_sink.wait_for(lambda e: isinstance(e, CardRemoved), 3)
        now[0] += 1.4  # inside the window: the same card again counts once
        sim.command("tap 1")
        sim.command("tap 2")  # another card is never debounced
        _, event = event_sink.wait_for(_is_card, 3)
        assert isinstance(event, CardPresented) and event.token != b""
        assert device.stats.debounced == 1
        now[0] += 0.2  # 1.6 s after the first delivery: outside the window
        sim.command("tap 1")
        event_sink.wait_for(_is_card, 3)
        deadline = time.monotonic() + 3
        while sum(isinstance(e, CardRemoved) for e in event_sink.snapshot()) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # a fourth CARD_REMOVED, if the driver wrongly sent one, would have come by now
        assert device.stats.cards == 3 and device.stats.debounced == 1
    finally:
        device.stop()
    removed = [e for e in event_sink.snapshot() if isinstance(e, CardRemoved)]
    assert len(removed) == 3  # one per delivered card; none for the swallowed tap
