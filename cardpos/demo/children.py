"""Child processes of the demo (ledger server, reader simulator) and end-to-end tests.

A child announces readiness with one first stdout line starting with a known prefix (``cardpos-ledger:``,
``cardpos-sim:``); we wait for it with a deadline, and stopping always ends the whole child: SIGTERM, a grace
period, then SIGKILL.

Every child runs in its own session and process group (so ``stop`` ends whatever it started in turn, and a
terminal's Ctrl+C or hang-up reaches only the demo, which then stops its children in order), and on Linux asks
the kernel for SIGTERM when the demo process dies (``cardpos.parentdeath``): a demo killed with SIGKILL or crashed
in C leaves no ledger or simulator behind. Children are started from the main thread, to which that is tied.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from cardkit.errors import CardposError
from cardpos.parentdeath import env_for_child

CARDPOS = [sys.executable, "-m", "cardpos"]


class ChildError(CardposError):
    title = "Child process error"


class Child:
    """A cardpos sub-command running as a child process with piped stdin/stdout."""

    def __init__(self, name: str, args: Sequence[str], *, env: dict[str, str] | None = None,
                 stderr_path: Path | None = None) -> None:
        self.name = name
        self._stopping = threading.Lock()
        self._stderr = open(stderr_path, "ab") if stderr_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*CARDPOS, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env={**(os.environ if env is None else env), **env_for_child()}, text=True, bufsize=1,
            start_new_session=True,
        )

    @property
    def stdin(self) -> IO[str]:
        assert self.proc.stdin is not None
        return self.proc.stdin

    def read_line(self, timeout_s: float) -> str:
        """The next stdout line, or ChildError after ``timeout_s`` or if the child exits."""
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        try:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout_s):
                raise ChildError(f"{self.name} did not answer within {timeout_s:.0f} s")
            line = self.proc.stdout.readline()
        except (OSError, ValueError) as exc:  # closed by stop() meanwhile
            raise ChildError(f"{self.name} is not running ({exc})", orig=exc) from exc
        finally:
            sel.close()
        if not line:
            code = self.proc.poll()
            raise ChildError(f"{self.name} stopped unexpectedly (exit code {code})")
        return line.rstrip("\n")

    def wait_for(self, prefix: str, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            line = self.read_line(max(0.1, deadline - time.monotonic()))
            if line.startswith(prefix):
                return line[len(prefix):].strip()
            if time.monotonic() > deadline:
                raise ChildError(f"{self.name} did not announce itself within {timeout_s:.0f} s")

    def command(self, text: str, timeout_s: float = 5.0) -> str:
        """Send one console line and return the reply line (``ok ...`` or ``error ...``)."""
        try:
            self.stdin.write(text + "\n")
            self.stdin.flush()
        except (OSError, ValueError) as exc:  # the child is gone, or being stopped
            raise ChildError(f"{self.name} is not running ({exc})", orig=exc) from exc
        while True:
            line = self.read_line(timeout_s)
            if line.startswith(("ok", "error")):
                return line

    def stop(self, grace_s: float = 5.0) -> int | None:
        """End the child's whole process group (SIGTERM, then SIGKILL after ``grace_s``). Safe to call from two
        threads at once (a signal's stopper and the demo's own clean-up) and more than once."""
        with self._stopping:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(grace_s)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(grace_s)
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            if self._stderr is not subprocess.DEVNULL:
                self._stderr.close()  # type: ignore[union-attr]
            return self.proc.returncode
