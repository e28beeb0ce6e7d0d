"""Journal writer for the crash test: appends forever and acknowledges each entry only after ``append`` returned.

Usage: ``python crash_writer.py DATA_DIR RUN [--wait]``. Prints ``ready`` once the store is open (with
``--wait`` it then waits for a line on stdin, so several writers can start appending together; with ``--pause``
it rests 2 ms between appends, like a person at a till, so two writers interleave), then one line per
acknowledged entry: ``ack SEQ UUID HASH_HEX RUN I SYNCED``. Each line goes out with a single ``os.write`` so a
SIGKILL can cut the stream between lines but never inside one. Payloads are a pure function of ``(RUN, I)`` so
the test can check the stored content, not only the ids.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from terminal.offline.store import TerminalStore

TERMINAL_ID = "T-CRASH"


def payload_for(run: int, i: int) -> tuple[str, dict[str, Any]]:
    """The entry the writer appends as the ``i``-th of run ``run`` (every 7th is PII-bearing)."""
    if i % 7 == 3:
        return "member_update", {"member": f"m-{i % 5}", "notes": f"note {run}/{i}", "prefs": {"run": run}}
    return "sale", {"card": f"card-{i % 11}", "member": f"m-{i % 5}", "cur": "CNY", "gross": 100 + i,
                    "net": 100 + i, "tender": "cash", "sv": 0, "pts_earn": i, "coupons": [f"cp-{run}"],
                    "run": run, "i": i, "offline": True}


def _say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def main(argv: list[str]) -> int:
    data_dir, run = Path(argv[1]), int(argv[2])
    store = TerminalStore.open(data_dir, TERMINAL_ID)
    _say("ready")
    if "--wait" in argv[3:]:
        sys.stdin.readline()
    pause = "--pause" in argv[3:]
    journal = store.journal
    for i in range(1_000_000):  # bounded; the test kills the process long before
        kind, payload = payload_for(run, i)
        entry = journal.append(kind, payload, f"cashier-{run % 3}")
        synced = journal.synced_seq
        if i % 10 == 9:  # the sync mark moves too, so its writes are interrupted as well
            synced = journal.mark_synced(max(0, entry.seq - 5))
        _say(f"ack {entry.seq} {entry.uuid} {entry.hash.hex()} {run} {i} {synced}")
        if pause:
            # A writer in a tight loop re-takes the write lock at once and the other one's busy handler
            # (which sleeps between retries) rarely wins; real tills pause between operations.
            time.sleep(0.002)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
