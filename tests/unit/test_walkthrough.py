"""The tmux walk-through script (tools/walkthrough.py) holds together: its steps list, and it reads the demo PINs
off a sign-in screen the way a newcomer does. Running it takes a minute and tmux; it regenerates docs/screens."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "walkthrough.py"


def test_the_walkthrough_lists_its_steps() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()]
    for step in ("sale", "topup", "fee", "gift", "refund", "supervisor", "zreport", "idle-zh"):
        assert step in names


def test_the_demo_pins_are_read_off_the_captured_sign_in_screen() -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import walkthrough
    finally:
        sys.path.remove(str(SCRIPT.parent))
    screen = (ROOT / "docs" / "screens" / "walk-01-signin.txt").read_text(encoding="utf-8")
    assert walkthrough.demo_accounts(screen) == {"cashier": ("1001", "1234"), "supervisor": ("9001", "9999"),
                                                 "technician": ("7001", "7777")}
    printed = (ROOT / "docs" / "screens" / "walk-23-zreport-printed.txt").read_text(encoding="utf-8")
    assert printed.startswith("Z-REPORT")
