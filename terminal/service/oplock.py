"""One cashier operation at a time per data dir, across threads and processes.

A quote reads the member's figures and the journal append writes the result; if the app and a
``cardpos terminal op`` script quoted the same balance at once, both could spend it. The journal's own write
lock only covers the append, so the counter holds this lock from quote to committed append.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cardkit.errors import JournalError

LOCK_FILE = "counter.lock"
WAIT_S = 10.0
POLL_S = 0.02


class OperationLock:
    def __init__(self, data_dir: Path, *, wait_s: float = WAIT_S) -> None:
        self.path = data_dir / LOCK_FILE
        self.wait_s = wait_s
        self._thread_lock = threading.Lock()

    @contextmanager
    def hold(self) -> Iterator[None]:
        if not self._thread_lock.acquire(timeout=self.wait_s):
            raise JournalError("another operation on this terminal is still running; nothing was recorded, retry")
        try:
            fd = self._open()
            try:
                self._lock(fd)
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        finally:
            self._thread_lock.release()

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise JournalError(f"cannot open the operation lock {self.path}: {exc.strerror}; nothing was recorded",
                               orig=exc) from exc

    def _lock(self, fd: int) -> None:
        deadline = time.monotonic() + self.wait_s
        while True:  # bounded by the deadline
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise JournalError("another program is running an operation on this terminal; "
                                       "nothing was recorded, retry") from None
                time.sleep(POLL_S)
            except OSError as exc:
                raise JournalError(f"cannot lock {self.path}: {exc.strerror}; nothing was recorded",
                                   orig=exc) from exc
