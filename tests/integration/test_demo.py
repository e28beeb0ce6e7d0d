"""``cardpos demo`` on a real pseudo-terminal: the app comes up wired to a ledger and the simulator, a demo card
tap goes through, and quitting stops every child process."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import socket
import struct
import subprocess
import termios
import time
from pathlib import Path

from tests.conftest import CARDPOS, free_port

ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[=>PX^_]")


class PtyProgram:
    def __init__(self, args: list[str], env: dict[str, str], cols: int = 80, rows: int = 24) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.raw = b""

    def text(self) -> str:
        return ANSI.sub(b"", self.raw).decode("utf-8", "replace")

    def read_until(self, needle: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.raw += os.read(self.master, 65536)
                except OSError:
                    break
            if needle in self.text():
                return self.text()
        raise AssertionError(f"{needle!r} did not appear within {timeout_s} s; screen text ends with:\n"
                             f"{self.text()[-1500:]}")

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.raw += os.read(self.master, 65536)
                except OSError:
                    return

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        os.close(self.master)


def _processes_mentioning(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if marker in cmdline:
                found.append(int(entry.name))
    return found


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_comes_up_taps_a_card_and_quits_cleanly(tmp_path: Path, clean_env: dict[str, str]) -> None:
    demo_dir = tmp_path / "demo-run"
    port = free_port()
    env = clean_env | {"TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    program = PtyProgram([*CARDPOS, "demo", "--dir", str(demo_dir), "--ledger-port", str(port)], env)
    try:
        program.read_until("Cashier sign-in", timeout_s=90)
        assert _port_open(port), "the demo ledger is not listening"
        assert len(_processes_mentioning(str(demo_dir))) >= 2  # ledger and simulator children are running
        program.read_until("Reader: connected", timeout_s=30)
        program.read_until("Printer: ready", timeout_s=30)  # the demo's printer simulator, for receipts
        # Sign in as the demo cashier, with keys alone.
        program.send(b"1001\r")
        program.drain(0.5)
        program.send(b"1234\r")
        program.read_until("TAP CARD", timeout_s=30)
        # F2 opens the demo wallet; Enter taps its first card (Li Wei's gold card) through simulator and pty.
        program.send(b"\x1bOQ")
        program.read_until("Demo: tap a wallet card", timeout_s=15)
        program.send(b"\r")
        program.read_until("Li Wei", timeout_s=30)
        program.send(b"\x11")  # Ctrl+Q
        code = program.proc.wait(60)
        assert code == 0, program.text()[-2000:]
    finally:
        program.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (_processes_mentioning(str(demo_dir)) or _port_open(port)):
        time.sleep(0.2)
    assert _processes_mentioning(str(demo_dir)) == []
    assert not _port_open(port)
