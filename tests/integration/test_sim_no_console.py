"""``cardpos sim`` without a console (``cardpos sim < /dev/null &``, or stdin closed): it keeps playing the reader
on its pty until it is signalled. And a ``cardpos`` child asked to end with its parent (as the demo asks its
children) does, when that parent dies without stopping it."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CARDPOS, REPO_ROOT

STX = 0x02


class Background:
    """The simulator started the way a shell starts ``cardpos sim < /dev/null &`` (or with ``<&-``)."""

    def __init__(self, env: dict[str, str], tmp_path: Path, *, stdin: str) -> None:
        self.link = tmp_path / "reader"
        shell = {"devnull": '"$@" < /dev/null', "closed": '"$@" <&-'}[stdin]
        self.proc = subprocess.Popen(["sh", "-c", f"exec {shell}", "sh", *CARDPOS, "sim", "--heartbeat", "0.2",
                                      "--link", str(self.link)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert first.startswith("cardpos-sim: pty /dev/pts/"), first + self.stderr()

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()

    def heartbeat(self, timeout_s: float = 5.0) -> bytes:
        """Bytes the reader sends on its line (STATUS heartbeats), read like a terminal would."""
        fd = os.open(self.link, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], 0.2)
                if ready:
                    data = os.read(fd, 256)
                    if STX in data:
                        return data
            raise AssertionError(f"no frame from the simulator within {timeout_s} s")
        finally:
            os.close(fd)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def background(clean_env: dict[str, str], tmp_path: Path) -> Iterator[list[Background]]:
    started: list[Background] = []
    yield started
    for sim in started:
        sim.stop()


@pytest.mark.parametrize(("stdin", "sig"), [("devnull", signal.SIGTERM), ("closed", signal.SIGHUP),
                                            ("devnull", signal.SIGINT)], ids=["devnull-SIGTERM", "closed-SIGHUP",
                                                                              "devnull-SIGINT"])
def test_without_a_console_the_simulator_runs_until_signalled(background: list[Background], clean_env: dict[str, str],
                                                              tmp_path: Path, stdin: str, sig: signal.Signals) -> None:
    sim = Background(clean_env, tmp_path, stdin=stdin)
    background.append(sim)
    time.sleep(1.0)  # long past the end of its input
    assert sim.proc.poll() is None, sim.stderr()
    assert STX in sim.heartbeat()  # still playing the reader on its pty
    sim.proc.send_signal(sig)
    assert sim.proc.wait(10) == 0
    assert sim.stderr() == "" and not sim.link.is_symlink()  # an orderly stop: the link removed


ORPHANING_PARENT = """
import os, subprocess, sys
ask = {"CARDPOS_EXIT_WITH_PARENT": str(os.getpid())} if sys.argv[1] == "ask" else {}
child = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True, env={**os.environ, **ask})
assert child.stdout.readline().startswith("cardpos-sim: pty")
print(child.pid, flush=True)
os._exit(0)  # dies without stopping its child, as a killed or crashed demo does
"""


@pytest.mark.parametrize("follows", [True, False], ids=["with-parent-death-signal", "without"])
def test_a_child_asked_to_end_with_its_parent_does(clean_env: dict[str, str], follows: bool) -> None:
    parent = subprocess.run([sys.executable, "-c", ORPHANING_PARENT, "ask" if follows else "no", *CARDPOS, "sim",
                             "--heartbeat", "0"], env=clean_env, capture_output=True, text=True, timeout=60,
                            check=True, cwd=REPO_ROOT)
    pid = int(parent.stdout)
    try:
        deadline = time.monotonic() + (10 if follows else 2)
        while time.monotonic() < deadline and _running(pid):
            time.sleep(0.1)
        assert _running(pid) is not follows  # without the request an orphaned simulator runs on, as it should
    finally:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status
