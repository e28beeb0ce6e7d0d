"""The simulator speaks the protocol as documented: raw frames over its real pty, no driver in between."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import serial

from cardkit.frames import (
    ErrorCode,
    Frame,
    FrameDecoder,
    MessageType,
    StatusInfo,
    encode_frame,
    parse_card_present,
    parse_challenge_response,
    parse_error,
)
from tests.fixtures.sim import SimFactory


class RawLine:
    def __init__(self, port: str) -> None:
        self.port = serial.serial_for_url(port, timeout=0.05)
        self.decoder = FrameDecoder()

    def send(self, data: bytes) -> None:
        self.port.write(data)

    def expect(self, type: MessageType, timeout: float = 3.0) -> Frame:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for frame in self.decoder.data_received(self.port.read(self.port.in_waiting or 1)):
                if frame.type == type:
                    return frame
        raise AssertionError(f"no {type.name} frame within {timeout} s")


def test_answers_to_host_frames(sim_process: SimFactory, wallet_file: Path) -> None:
    sim = sim_process(wallet_file, "--heartbeat", "0")
    line = RawLine(sim.port)
    try:
        line.send(encode_frame(MessageType.STATUS_REQUEST))
        status = StatusInfo.decode(line.expect(MessageType.STATUS).payload)
        assert status.firmware == "hwsim 1.0" and status.heartbeat_ms == 0

        bad = bytearray(encode_frame(MessageType.FEEDBACK, b"\x01"))
        bad[4] ^= 0x01
        line.send(bytes(bad))
        assert parse_error(line.expect(MessageType.ERROR).payload)[0] == ErrorCode.BAD_FRAME

        line.send(encode_frame(0x7E, b"?"))
        assert parse_error(line.expect(MessageType.ERROR).payload)[0] == ErrorCode.UNKNOWN_TYPE

        line.send(encode_frame(MessageType.CHALLENGE, bytes(16)))
        assert parse_challenge_response(line.expect(MessageType.CHALLENGE_RESPONSE).payload) == (ErrorCode.NO_CARD,
                                                                                                b"")
        assert sim.command("tap 1 hold").startswith("ok")
        token, capable = parse_card_present(line.expect(MessageType.CARD_PRESENT).payload)
        assert not capable and len(token) > 100
        line.send(encode_frame(MessageType.CHALLENGE, bytes(16)))
        assert parse_challenge_response(line.expect(MessageType.CHALLENGE_RESPONSE).payload)[0] == \
            ErrorCode.NOT_CAPABLE

        line.send(encode_frame(MessageType.FEEDBACK, b"\x00"))
        time.sleep(0.2)
        assert "feedback_ok=0 feedback_declined=1 " in sim.command("status")
        assert sim.command("remove") == "ok removed"
        line.expect(MessageType.CARD_REMOVED)
    finally:
        line.port.close()


def test_line_is_paced_at_the_baud(sim_process: SimFactory, wallet_file: Path) -> None:
    sim = sim_process(wallet_file, "--heartbeat", "0", "--baud", "9600")
    line = RawLine(sim.port)
    try:
        sent = time.monotonic()
        assert sim.command("tap 1").startswith("ok")
        frame = line.expect(MessageType.CARD_PRESENT)
        took = time.monotonic() - sent
        wire = len(frame.raw) * 10 / 9600
        assert took >= 0.9 * wire, (took, wire)  # a 150-byte frame cannot arrive faster than the line allows
    finally:
        line.port.close()


def test_sigterm_exits_cleanly_and_removes_the_link(sim_process: SimFactory, wallet_file: Path) -> None:
    sim = sim_process(wallet_file)
    assert Path(sim.port).is_symlink()
    os.kill(sim.proc.pid, signal.SIGTERM)
    assert sim.proc.wait(timeout=10) == 0
    assert not Path(sim.port).is_symlink()
