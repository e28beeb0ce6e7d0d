"""One demo per folder: the lock file names the running demo, refuses a second one and is taken over when stale."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardkit.errors import ConfigError
from cardpos.demo.command import DEMO_MARKER, prepare_dir
from cardpos.demo.lock import LOCK_NAME, DemoBusy, DemoLock

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()}\\n".encode())
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture
def other_demo(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A demo folder whose lock another live process holds."""
    root = tmp_path / "demo"
    root.mkdir()
    (root / DEMO_MARKER).write_text("")
    (root / "wallet.json").write_text("{}")
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root / LOCK_NAME)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    yield root, proc
    proc.kill()
    proc.wait(5)
    proc.stdout.close()


def test_a_running_demo_is_named_and_its_folder_left_alone(other_demo: tuple[Path, subprocess.Popen[str]]) -> None:
    root, holder = other_demo
    with pytest.raises(DemoBusy) as refused:
        prepare_dir(root)
    assert str(refused.value) == (f"a cardpos demo (pid {holder.pid}) is already running on {root}; quit it first "
                                  "(Ctrl+Q), or run another demo with --dir OTHER_FOLDER")
    assert (root / "wallet.json").read_text() == "{}"  # nothing deleted
    assert (root / LOCK_NAME).read_text() == f"{holder.pid}\n"


def test_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    root = tmp_path / "demo"
    root.mkdir()
    (root / DEMO_MARKER).write_text("")
    (root / LOCK_NAME).write_text(gone.stdout)  # a demo that was killed: its pid, no lock held
    (root / "receipts").mkdir()
    lock = prepare_dir(root)
    try:
        assert (root / LOCK_NAME).read_text() == f"{os.getpid()}\n"
        assert sorted(p.name for p in root.iterdir()) == [DEMO_MARKER, LOCK_NAME]  # emptied for the new run
        with pytest.raises(DemoBusy, match=f"pid {os.getpid()}"):
            DemoLock.acquire(root)  # while held, even this process's second demo is refused
    finally:
        lock.release()
    assert (root / LOCK_NAME).read_text() == ""  # released: no pid to name
    DemoLock.acquire(root).release()


def test_a_folder_that_is_no_demo_is_refused_untouched(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    (root / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(ConfigError, match="is not a cardpos demo directory"):
        prepare_dir(root)
    assert sorted(p.name for p in root.iterdir()) == ["holiday.jpg"]
