"""One demo per folder: a lock file holding the pid of the demo that runs there.

The lock is a kernel lock (``flock``) on that file, held for as long as the demo process lives: the kernel drops it
when the process ends, however it ends (Ctrl+Q, a signal, SIGKILL, a crash). A second demo on the same folder finds
the lock held and refuses, naming the pid it reads from the file; a lock file left behind by a demo that is gone
is stale (nobody holds the lock) and is taken over. The pid is also checked for liveness, so the refusal never
names a process that has ended.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from cardkit.errors import ConfigError

LOCK_NAME = ".cardpos-demo.lock"


class DemoBusy(ConfigError):
    title = "Demo already running"


class DemoLock:
    """Held from ``acquire`` until ``release`` (or the end of the process). Not inherited by child processes."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, folder: Path) -> DemoLock:
        path = folder / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise ConfigError(f"cannot create the demo lock file {path}: {exc.strerror}", orig=exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder is not None and _alive(holder) else ""
            raise DemoBusy(f"a cardpos demo{who} is already running on {folder}; quit it first (Ctrl+Q), or "
                           "run another demo with --dir OTHER_FOLDER") from None
        # Free, or stale: whoever wrote the old pid is gone. The file now names us.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)  # a later reader finds no pid to name
        os.close(self._fd)  # closing the last descriptor drops the flock
        self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
