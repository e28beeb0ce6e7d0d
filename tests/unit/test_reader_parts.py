"""Driver edges on loop:// (no hardware), error wording, the wallet file and the script format."""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest
import serial
from hwsim.errors import SimulatorError
from hwsim.script import parse_script
from hypothesis import given
from hypothesis import strategies as st

from cardkit.errors import ReaderError, WalletError
from cardkit.wallet import Wallet, WalletCard
from terminal.reader.device import ReaderDevice, ReaderStats, open_error
from terminal.reader.events import ReaderEvent, ReaderState, ReaderStatus


def test_loop_url_driver_lifecycle_and_challenge_timeout() -> None:
    events: list[ReaderEvent] = []
    threads: set[str] = set()

    def on_event(event: ReaderEvent) -> None:
        threads.add(threading.current_thread().name)
        events.append(event)

    device = ReaderDevice("loop://", on_event=on_event, heartbeat_timeout_s=60)
    device.start()
    try:
        deadline = time.monotonic() + 2
        while not events and time.monotonic() < deadline:
            time.sleep(0.01)
        assert events == [ReaderStatus(ReaderState.CONNECTED, "loop://")]
        device.feedback(True)
        device.request_status()
        with pytest.raises(ReaderError, match=r"did not answer the challenge within 0\.1 s"):
            device.challenge(b"n" * 16, timeout_s=0.1)
        with pytest.raises(ReaderError, match="already running"):
            device.start()
    finally:
        device.stop()
    assert events[-1] == ReaderStatus(ReaderState.CLOSED, "")
    assert threads == {"reader loop://"}  # every event, even the first and the last, on the reader thread
    stats = device.stats
    assert isinstance(stats, ReaderStats) and stats.state == ReaderState.CLOSED and stats.port == "loop://"
    # loop:// echoes our own host->reader frames back: decoded, counted, and ignored as events.
    assert stats.frames >= 3 and stats.cards == 0
    with pytest.raises(ReaderError, match="not connected"):
        device.feedback(False)
    device.stop()  # twice is fine


def test_missing_port_raises_one_sentence_with_the_original() -> None:
    device = ReaderDevice("/nonexistent/ttyUSB3", on_event=lambda e: None)
    with pytest.raises(ReaderError) as info:
        device.start()
    assert str(info.value) == "The card reader port /nonexistent/ttyUSB3 does not exist; is the reader plugged in?"
    assert isinstance(info.value.orig, serial.SerialException)
    assert device.stats.last_error == str(info.value)


@pytest.mark.parametrize(("exc", "words"), [
    (serial.SerialException(errno.EACCES, "could not open port: Permission denied"), "Permission denied opening"),
    (serial.SerialException(errno.EBUSY, "busy"), "in use by another program"),
    (serial.SerialException("Could not exclusively lock port /dev/ttyS0"), "in use by another program"),
    (serial.SerialException("Could not open port x: [Errno 111] Connection refused"), "Nothing is listening"),
    (ValueError("invalid URL, protocol 'x' not known"), "is not a valid port or URL"),
    (serial.SerialException(errno.EIO, "Input/output error"), "Cannot open the card reader port"),
])
def test_open_errors_are_clear(exc: BaseException, words: str) -> None:
    err = open_error("/dev/ttyS0", exc)
    assert words in str(err) and err.orig is exc and "\n" not in str(err)


def test_wallet_round_trip_is_private(tmp_path: Path) -> None:
    wallet = Wallet()
    wallet.add(WalletCard("a", "valid", "hex:0102"))
    wallet.add(WalletCard("k", "challenge", "CP1:NOT BASE45!", "11" * 32))
    path = tmp_path / "w.json"
    wallet.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = Wallet.load(path)
    assert loaded.cards == wallet.cards
    assert loaded.card(1).token_bytes() == b"\x01\x02" and not loaded.card(1).challenge_capable
    assert loaded.card(2).token_bytes() == b"CP1:NOT BASE45!" and loaded.card(2).challenge_capable
    with pytest.raises(WalletError, match="no card 3"):
        loaded.card(3)


@pytest.mark.parametrize(("text", "words"), [
    ("{", "not valid JSON"),
    ('{"version": 2, "cards": []}', "not a version 1 cardpos wallet"),
    ('{"version": 1, "cards": [{"label": "x"}]}', "card 1 lacks label, kind or token_text"),
    ('{"version": 1, "cards": [{"label": "x", "kind": "gold", "token_text": ""}]}', "card kind 'gold'"),
])
def test_bad_wallets_are_one_sentence(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "w.json"
    path.write_text(text)
    with pytest.raises(WalletError, match=words):
        Wallet.load(path)


def test_script_format() -> None:
    steps = parse_script("# shift\ntap 1\nwait 1.5\ntap 2 hold  # held\n\nat 4 unplug\nwait 0.5\nreplug\n")
    assert [(s.at, s.command, s.line_no) for s in steps] == [
        (0.0, "tap 1", 2), (1.5, "tap 2 hold", 4), (4.0, "unplug", 6), (4.5, "replug", 8)]
    for bad in ("wait", "wait -1", "at 5 tap 1\nat 4 tap 2", "at x tap 1", "at 3"):
        with pytest.raises(SimulatorError, match="cannot read"):
            parse_script(bad)


def _try_open(port: Path) -> str:
    try:
        ReaderDevice(str(port), on_event=lambda e: None).start()
    except ReaderError as exc:
        return f"{exc!s}|{type(exc.orig).__name__}"
    return "opened"


def test_permission_denied_is_a_clear_sentence(tmp_path: Path) -> None:
    port = tmp_path / "ttyS9"
    port.write_bytes(b"")
    port.chmod(0o000 if os.geteuid() else 0o600)
    tmp_path.chmod(0o755)
    if os.geteuid():
        message = _try_open(port)
    else:
        # Root opens anything, so a forked child drops to 'nobody' and tries the root-only port for real.
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: no pytest machinery from here on, only os._exit
            try:
                os.setgid(65534)
                os.setuid(65534)
                result = _try_open(port)
            except BaseException as exc:
                result = f"unexpected {exc!r}"
            os.write(write_end, result.encode())
            os._exit(0)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        with os.fdopen(read_end, "rb") as pipe:
            message = pipe.read().decode()
        assert status == 0
    assert message == (f"Permission denied opening the card reader port {port}; add this user to the port's group "
                       f"(often 'dialout').|SerialException")


@given(st.text(max_size=200))
def test_script_parser_never_crashes(text: str) -> None:
    try:
        steps = parse_script(text)
    except SimulatorError as exc:
        assert "cannot read" in str(exc)
        return
    assert all(a.at <= b.at for a, b in itertools.pairwise(steps))
    assert all(step.command and step.command.split()[0] not in ("wait",) for step in steps)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                 max_size=5), max_leaves=20))
def test_wallet_loader_only_raises_wallet_errors(tmp_path_factory: pytest.TempPathFactory, data: object) -> None:
    path = tmp_path_factory.mktemp("w") / "wallet.json"
    path.write_text(json.dumps({"version": 1, "cards": data} if isinstance(data, list) else data))
    with contextlib.suppress(WalletError):
        Wallet.load(path)
