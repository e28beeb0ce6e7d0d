"""``cardpos demo`` as a newcomer meets it, and every way it can end.

The demo runs on a real pseudo-terminal that is its controlling terminal, as in a terminal window. Whatever ends
it (closing the window, SIGINT, SIGTERM, SIGKILL, a signal during set-up) must leave no ledger server, simulator
or listening port behind, within a bounded wait.
"""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CARDPOS, free_port
from tests.integration.test_demo import PtyProgram, _port_open, _processes_mentioning

CHILDREN_GONE_WITHIN_S = 15.0


class TerminalWindow(PtyProgram):
    """A program in a terminal window: the pty is its controlling terminal, so closing the window hangs it up."""

    def __init__(self, args: list[str], env: dict[str, str], cols: int = 80, rows: int = 24) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
                                     close_fds=True, preexec_fn=_take_controlling_terminal)
        os.close(slave)
        self.raw = b""

    def close_window(self) -> None:
        """What closing a terminal window does: the master side goes away and the kernel hangs up the session."""
        os.close(self.master)
        self.master = os.open(os.devnull, os.O_RDONLY)  # for close()


def _take_controlling_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Demo:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.dir = root / "demo-run"
        self.port = free_port()
        self.env = env | {"TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
        self.window = TerminalWindow(self.args(), self.env)

    def args(self) -> list[str]:
        return [*CARDPOS, "demo", "--dir", str(self.dir), "--ledger-port", str(self.port)]

    def children(self) -> list[int]:
        return [pid for pid in _processes_mentioning(str(self.dir)) if pid != self.window.proc.pid]

    def wait_until_up(self) -> None:
        self.window.read_until("Cashier sign-in", timeout_s=90)
        assert _port_open(self.port) and len(self.children()) >= 2  # the ledger and the simulator

    def assert_nothing_left(self) -> None:
        deadline = time.monotonic() + CHILDREN_GONE_WITHIN_S
        while time.monotonic() < deadline and (self.children() or _port_open(self.port)):
            time.sleep(0.2)
        assert self.children() == [], f"child processes left behind: {self.children()}"
        assert not _port_open(self.port), "the demo ledger's port is still open"


@pytest.fixture
def demo(tmp_path: Path, clean_env: dict[str, str]) -> Iterator[Demo]:
    started = Demo(tmp_path, clean_env)
    try:
        yield started
    finally:
        started.window.close()
        for pid in started.children():  # never leave a stray process to the next test, even on failure
            os.kill(pid, signal.SIGKILL)


def test_a_newcomer_reads_the_pins_runs_the_technician_checks_and_closes_the_window(demo: Demo) -> None:
    window = demo.window
    demo.wait_until_up()
    screen = window.read_until("technician 7001 / 7777", timeout_s=15)
    assert "Demo sign-ins (id / PIN):" in screen
    assert "cashier 1001 / 1234" in screen and "supervisor 9001 / 9999" in screen

    # A second demo on the same folder refuses, naming the first, and deletes none of its files.
    files = sorted(p.name for p in demo.dir.iterdir())
    second = subprocess.run(demo.args(), env=demo.env, capture_output=True, text=True, timeout=60, check=False)
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert second.stderr.strip() == (f"cardpos: a cardpos demo (pid {window.proc.pid}) is already running on "
                                     f"{demo.dir}; quit it first (Ctrl+Q), or run another demo with --dir "
                                     "OTHER_FOLDER")
    assert sorted(p.name for p in demo.dir.iterdir()) == files and (demo.dir / "wallet.json").exists()
    assert window.proc.poll() is None and _port_open(demo.port)

    # The technician signs in with the PINs on screen; the self-test card passes and a probe is answered.
    window.read_until("Reader: connected", timeout_s=30)
    window.send(b"7001\r")
    window.drain(0.5)
    window.send(b"7777\r")
    window.read_until("TAP CARD", timeout_s=30)
    window.send(b"\x1b[20~")  # F9
    window.read_until("Self-test", timeout_s=15)
    window.send(b"t")
    window.read_until("PASS: the test card was accepted.", timeout_s=30)
    window.send(b"p")
    window.read_until("Probe: asking the reader", timeout_s=10)
    window.read_until("Probe: the reader answered", timeout_s=15)

    window.close_window()  # SIGHUP from the kernel, as when a tmux session or a terminal window is closed
    assert window.proc.wait(30) == 128 + signal.SIGHUP
    demo.assert_nothing_left()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)  # SIGHUP: closing the window
def test_a_signal_ends_the_demo_and_every_child(demo: Demo, sig: signal.Signals) -> None:
    demo.wait_until_up()
    os.kill(demo.window.proc.pid, sig)
    assert demo.window.proc.wait(30) == 128 + sig
    demo.assert_nothing_left()
    assert not (demo.dir / ".cardpos-demo.lock").read_text()  # released: the next demo starts at once


def test_killing_the_demo_parent_ends_every_child(demo: Demo) -> None:
    demo.wait_until_up()
    children = demo.children()
    os.kill(demo.window.proc.pid, signal.SIGKILL)  # no handler runs: the children's parent-death signal must
    assert demo.window.proc.wait(10) == -signal.SIGKILL
    demo.assert_nothing_left()
    assert all(_ended(pid) for pid in children)


def _ended(pid: int) -> bool:
    """Gone, or a zombie that only waits for whoever adopted it to reap it (a container's init may never)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status


def test_a_signal_during_set_up_ends_what_was_started(demo: Demo) -> None:
    deadline = time.monotonic() + 90
    while not demo.children():  # the ledger is starting; the simulator may not be yet
        assert time.monotonic() < deadline, "the demo started no child"
        time.sleep(0.05)
    os.kill(demo.window.proc.pid, signal.SIGTERM)
    assert demo.window.proc.wait(30) == 128 + signal.SIGTERM
    demo.assert_nothing_left()
