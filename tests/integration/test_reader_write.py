"""WRITE_CARD end to end: the real driver writes to blank cards held in the real simulator process on a pty."""

from __future__ import annotations

import json
import time

import pytest
from hwsim.testcards import IssuedWallet

from cardkit.cards.textform import token_from_text, token_to_text
from cardkit.cards.verify import CardVerifier
from cardkit.frames import ErrorCode
from terminal.reader.device import CardWriteError, ReaderDevice
from terminal.reader.events import CardPresented, CardRemoved, ReaderState, ReaderStatus
from tests.fixtures.sim import EventSink, SimFactory


def _connected(sink: EventSink) -> None:
    sink.wait_for(lambda e: isinstance(e, ReaderStatus) and e.state == ReaderState.CONNECTED, 5)


def _blank_presented(sink: EventSink) -> None:
    sink.wait_for(lambda e: isinstance(e, CardPresented) and e.blank and e.token == b"", 5)


@pytest.mark.timing  # asserts the write completes within 1 s: measured in the serial run
def test_a_blank_card_receives_the_token_and_then_reads_as_that_card(
        sim_process: SimFactory, wallet_file, issued_wallet: IssuedWallet, event_sink: EventSink) -> None:
    valid = next(n for n, c in enumerate(issued_wallet.wallet.cards, start=1) if c.kind == "valid")
    token = issued_wallet.wallet.card(valid).token_bytes()
    sim = sim_process(wallet_file)
    device = ReaderDevice(sim.port, on_event=event_sink, debounce_ms=100)
    device.start()
    try:
        _connected(event_sink)
        reply = sim.command("blank new gold card")
        assert reply.startswith("ok blank card "), reply
        number = int(reply.split()[3])
        _blank_presented(event_sink)
        started = time.monotonic()
        device.write_card(token, timeout_s=3)
        took = time.monotonic() - started
        assert took < 1.0
        assert sim.command(f"card {number}") == f"ok card {number} valid {token_to_text(token)}"
        # The written card is in the simulator's wallet file and verifies when tapped again.
        saved = json.loads(wallet_file.read_text())["cards"][number - 1]
        assert (saved["kind"], saved["label"]) == ("valid", "new gold card")
        assert token_from_text(saved["token_text"]) == token
        assert sim.command(f"tap {number}").startswith("ok tapped")
        _, event = event_sink.wait_for(lambda e: isinstance(e, CardPresented) and not e.blank, 5)
        assert isinstance(event, CardPresented) and event.token == token
        verifier = CardVerifier(issued_wallet.trust, issued_wallet.revocations, issuer=issued_wallet.issuer)
        assert verifier.verify(event.token, int(time.time())).accepted
        # A card that holds a token is never overwritten.
        assert sim.command(f"tap {number} hold").startswith("ok")
        with pytest.raises(CardWriteError) as refused:
            device.write_card(token, timeout_s=3)
        assert refused.value.code == ErrorCode.NOT_BLANK
        assert "writes=2 writes_ok=1 " in sim.command("status")
    finally:
        device.stop()


def test_failed_and_interrupted_writes_leave_the_card_blank_and_the_same_token_can_be_retried(
        sim_process: SimFactory, wallet_file, issued_wallet: IssuedWallet, event_sink: EventSink) -> None:
    token = issued_wallet.wallet.cards[0].token_bytes()
    sim = sim_process(wallet_file)
    device = ReaderDevice(sim.port, on_event=event_sink)
    device.start()
    try:
        _connected(event_sink)
        with pytest.raises(CardWriteError) as nothing:
            device.write_card(token, timeout_s=3)
        assert nothing.value.code == ErrorCode.NO_CARD and "no card on the reader" in str(nothing.value)

        number = int(sim.command("blank").split()[3])
        _blank_presented(event_sink)
        assert sim.command("writefail") == "ok the next write fails"
        with pytest.raises(CardWriteError) as failed:
            device.write_card(token, timeout_s=3)
        assert failed.value.code == ErrorCode.WRITE_FAILED and "still blank" in str(failed.value)
        assert sim.command(f"card {number}") == f"ok card {number} blank -"

        assert sim.command("writecut") == "ok the next write is interrupted"
        with pytest.raises(CardWriteError) as cut:
            device.write_card(token, timeout_s=3)
        assert cut.value.code == ErrorCode.WRITE_INTERRUPTED
        event_sink.wait_for(lambda e: isinstance(e, CardRemoved), 5)  # the card left the reader
        assert sim.command(f"card {number}") == f"ok card {number} blank -"

        assert sim.command(f"tap {number}").startswith(f"ok tapped {number} blank (held)")
        _blank_presented(event_sink)
        device.write_card(token, timeout_s=3)  # the same token, written at the third attempt
        assert sim.command(f"card {number}") == f"ok card {number} valid {token_to_text(token)}"
    finally:
        device.stop()


def test_a_write_the_reader_never_answers_times_out_cleanly(
        sim_process: SimFactory, wallet_file, issued_wallet: IssuedWallet, event_sink: EventSink) -> None:
    token = issued_wallet.wallet.cards[0].token_bytes()
    sim = sim_process(wallet_file, "--heartbeat", "0")
    device = ReaderDevice(sim.port, on_event=event_sink)
    device.start()
    try:
        _connected(event_sink)
        sim.command("blank")
        _blank_presented(event_sink)
        sim.command("stall 2")
        with pytest.raises(CardWriteError) as late:
            device.write_card(token, timeout_s=0.5)
        assert late.value.code is None and "did not confirm" in str(late.value)
    finally:
        device.stop()
