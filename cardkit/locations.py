"""Every path cardpos uses, resolved in one place.

The data dir defaults to the platform's user data dir; ``CARDPOS_DATA_DIR`` or the config file override it,
and each path below hangs off it unless set on its own.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import platformdirs

APP_NAME = "cardpos"
KEYS_DIR_NAME = "keys"
"""The directory of secret files, under a data dir or a ledger dir (kept 0700)."""


def default_data_dir() -> Path:
    env = os.environ.get("CARDPOS_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_config_file() -> Path:
    env = os.environ.get("CARDPOS_CONFIG")
    return Path(env) if env else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def terminal_db(data_dir: Path) -> Path:
    return data_dir / "terminal.sqlite3"


def keys_dir(data_dir: Path) -> Path:
    return data_dir / KEYS_DIR_NAME


def log_file(data_dir: Path) -> Path:
    return data_dir / "logs" / "cardpos.jsonl"


def receipts_dir(data_dir: Path) -> Path:
    return data_dir / "receipts"


def ledger_dir(data_dir: Path) -> Path:
    return data_dir / "ledger"


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only (0600), atomically: a reader sees the old file or the new one,
    and a crash at any point leaves the old one in place.

    The data goes to a new temporary file in the same directory (0600, O_EXCL, O_NOFOLLOW), is fsynced, and is
    renamed over ``path``; then the directory is fsynced so the rename itself survives a power cut. A symlink at
    ``path`` is replaced, never followed. A missing parent is created 0700; an existing keys directory
    (``KEYS_DIR_NAME``) of ours is set back to 0700. Raises OSError, after removing the temporary file.
    """
    directory = path.parent
    _private_parent(directory)
    tmp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # the umask may have taken the owner's bits away
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)


def _private_parent(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        if directory.name != KEYS_DIR_NAME:
            return  # a directory someone chose (a wallet next to other files): its mode is theirs
    info = os.lstat(directory)
    # Only a real directory of this user: never chmod through a symlink or someone else's directory.
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(directory, 0o700)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(path: Path) -> Path:
    """A directory only its owner may enter: created 0700 (whatever the umask; parents that must be made get the
    default mode, they may be shared), and an existing one loses any group and other bits (``restrict_mode``)."""
    try:
        path.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        if not path.is_dir():
            raise
        restrict_mode(path)
    else:
        os.chmod(path, 0o700)  # the umask may have taken the owner's bits away
    return path


def restrict_mode(path: Path) -> bool:
    """Take group and other permission bits off an existing file or directory of this user; never add a bit (a
    file made read-only stays read-only), never chmod through a symlink or another user's file. False when the
    mode is still too open: the change failed (a read-only mount, an immutable file) or was not ours to make;
    the caller decides whether that matters (the file's next use reports its own error)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return True
    current = stat.S_IMODE(info.st_mode)
    if not current & 0o077:
        return True
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
        return False
    try:
        os.chmod(path, current & 0o700)
    except OSError:
        return False
    return True
