"""``write_private``: secret files are written atomically, 0600, in a 0700 directory, never through a symlink."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardkit.locations import KEYS_DIR_NAME, write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def harsh_umask() -> Iterator[None]:
    """A umask that would leave a file unreadable and a directory unusable by its owner."""
    old = os.umask(0o277)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_file_is_0600_in_a_new_0700_directory(tmp_path: Path) -> None:
    path = tmp_path / "data" / KEYS_DIR_NAME / "root.key"
    write_private(path, b"secret")
    assert path.read_bytes() == b"secret"
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700


def test_modes_hold_whatever_the_umask(tmp_path: Path, harsh_umask: None) -> None:
    path = tmp_path / "wallets" / "wallet.json"
    write_private(path, b"{}")
    write_private(path, b"{}\n")  # the directory must stay usable for a second write
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700


def test_rewriting_replaces_the_content_and_tightens_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "pii.key"
    path.write_bytes(b"an old and longer secret")
    path.chmod(0o644)
    write_private(path, b"new")
    assert path.read_bytes() == b"new" and _mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pii.key"]  # no temporary file left behind


def test_an_existing_keys_directory_is_set_back_to_0700(tmp_path: Path) -> None:
    keys = tmp_path / KEYS_DIR_NAME
    keys.mkdir(mode=0o755)
    keys.chmod(0o755)
    write_private(keys / "terminal_identity.key", b"k")
    assert _mode(keys) == 0o700


def test_another_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "work"
    shared.mkdir()
    shared.chmod(0o755)
    write_private(shared / "wallet.json", b"{}")
    assert _mode(shared) == 0o755


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"not yours")
    victim.chmod(0o644)
    path = tmp_path / "root.key"
    path.symlink_to(victim)
    write_private(path, b"secret")
    assert not path.is_symlink() and path.read_bytes() == b"secret" and _mode(path) == 0o600
    assert victim.read_bytes() == b"not yours" and _mode(victim) == 0o644


def test_a_dangling_symlink_does_not_create_its_target(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path = tmp_path / "root.key"
    path.symlink_to(elsewhere / "planted.key")
    write_private(path, b"secret")
    assert not path.is_symlink() and path.read_bytes() == b"secret"
    assert list(elsewhere.iterdir()) == []


def test_a_crash_between_write_and_rename_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    write_private(path, b"old secret")
    # A real process dies at the rename: everything before it (temporary file written and fsynced) has happened.
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from cardkit.locations import write_private
        os.replace = lambda src, dst: os._exit(9)
        write_private(Path({str(path)!r}), b"new secret")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 9, proc.stderr
    assert path.read_bytes() == b"old secret" and _mode(path) == 0o600
    leftovers = [p for p in tmp_path.iterdir() if p != path]
    assert len(leftovers) == 1  # the complete temporary file, hidden and private, never under the target's name
    assert leftovers[0].name.startswith(".root.key.") and leftovers[0].read_bytes() == b"new secret"
    assert _mode(leftovers[0]) == 0o600


def test_an_error_half_way_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    write_private(path, b"old secret")
    with pytest.raises(TypeError):
        write_private(path, "text is not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old secret"
    assert [p.name for p in tmp_path.iterdir()] == ["root.key"]


def test_a_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "wallet.json"
    contents = (b"a" * 300_000, b"b" * 200_000)
    write_private(path, contents[0])
    seen: set[bytes] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            data = path.read_bytes()
            seen.add(data if data in contents else b"partial: " + data[:20])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(40):
            write_private(path, contents[i % 2])
    finally:
        stop.set()
        reader.join()
    assert seen <= set(contents)
