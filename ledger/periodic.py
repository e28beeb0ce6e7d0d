"""Jobs a ledger server process runs on an interval, on its one background loop: the alert delivery worker
(``ledger.delivery.DeliveryWorker``), which wakes every ``poll_s`` (default 2 s) and already runs the alerts' own
periodic checks (silent terminals, noise summaries). A module registers a job with its interval; the worker calls
``run_due`` each round and a job runs when its interval has passed (so no more often than ``poll_s``).

Each job is isolated: one that raises is logged and tried again at its next interval, and the others and the
alert deliveries of that round still run. With several worker processes (PostgreSQL) each process runs its own
jobs; a job that must run once per interval across processes takes its own lock (``ledger.holds`` does).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("cardpos.ledger.periodic")


@dataclass
class Job:
    name: str
    every_ms: int
    run: Callable[[int], object]
    """Called with the ledger's clock (epoch ms)."""
    next_ms: int = 0


_jobs: dict[str, Job] = {}
_lock = threading.Lock()


def register(name: str, every_s: float, run: Callable[[int], object]) -> None:
    """Run ``run(now_ms)`` every ``every_s`` seconds from the next round on (registering a name again replaces
    the job)."""
    with _lock:
        _jobs[name] = Job(name, max(1, int(every_s * 1000)), run)


def unregister(name: str) -> None:
    with _lock:
        _jobs.pop(name, None)


def registered() -> list[str]:
    with _lock:
        return sorted(_jobs)


def run_due(now_ms: int) -> list[str]:
    """Run every job whose time has come (the delivery worker's thread); returns the names of those that ran."""
    with _lock:
        due = [job for job in _jobs.values() if now_ms >= job.next_ms]
        for job in due:
            job.next_ms = now_ms + job.every_ms
    ran = []
    for job in due:
        try:
            job.run(now_ms)
        except Exception:  # the next interval tries again; the other jobs and the deliveries still run
            log.exception("periodic job failed", extra={"fields": {"job": job.name}})
            continue
        ran.append(job.name)
    return ran
