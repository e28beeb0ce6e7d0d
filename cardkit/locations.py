"""Every path cardpos uses, resolved in one place.

The data dir defaults to the platform's user data dir; ``CARDPOS_DATA_DIR`` or the config file override it,
and each path below hangs off it unless set on its own.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import platformdirs

APP_NAME = "cardpos"


def default_data_dir() -> Path:
    env = os.environ.get("CARDPOS_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_config_file() -> Path:
    env = os.environ.get("CARDPOS_CONFIG")
    return Path(env) if env else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def terminal_db(data_dir: Path) -> Path:
    return data_dir / "terminal.sqlite3"


def keys_dir(data_dir: Path) -> Path:
    return data_dir / "keys"


def log_file(data_dir: Path) -> Path:
    return data_dir / "logs" / "cardpos.jsonl"


def receipts_dir(data_dir: Path) -> Path:
    return data_dir / "receipts"


def ledger_dir(data_dir: Path) -> Path:
    return data_dir / "ledger"


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only (0600), atomically, creating missing parents as 0700.

    The bytes go to a fresh temporary file beside ``path`` (``O_EXCL | O_NOFOLLOW``: never an existing file, never
    through a planted symlink), are fsynced, and the file is renamed over ``path`` (a rename replaces a symlink at
    ``path`` itself, never what it points to); then the directory is fsynced so the new name survives a power
    cut. Readers see the old file or the new one, never a torn one. Modes are set explicitly: the umask does not
    matter.
    """
    parent = path.parent
    if not parent.is_dir():
        private_dir(parent)
    tmp = parent / f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(parent)


def fsync_dir(path: Path) -> None:
    """Make the names in a directory durable (after a rename or a link into it)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(path: Path) -> Path:
    """A directory only its owner may enter: created 0700 (whatever the umask), and an existing one loses any
    group and other bits. Parents that must be created are made with the default mode (they may be shared)."""
    try:
        path.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        if not path.is_dir():
            raise
        restrict_mode(path)
    else:
        path.chmod(0o700)  # the umask may have taken owner bits away from the mkdir mode
    return path


def restrict_mode(path: Path) -> bool:
    """Take group and other permission bits off an existing file or directory; never add any bit (a file made
    read-only stays read-only). False when the mode could not be changed (a read-only mount, an immutable or
    another user's file): the caller decides whether that matters; the file's later use reports its own error.
    """
    try:
        current = stat.S_IMODE(path.stat().st_mode)
        if current & 0o077:
            path.chmod(current & 0o700)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
