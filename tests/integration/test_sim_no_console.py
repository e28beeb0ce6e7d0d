"""``cardpos sim`` without a console (``cardpos sim < /dev/null &``, or stdin closed): it keeps playing the reader
on its pty until it is signalled."""

from __future__ import annotations

import os
import select
import signal
import subprocess
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
