"""Running the ledger API under uvicorn: one process, or several workers sharing one (PostgreSQL) database.

Once the server answers, ``cardpos-ledger: listening http://HOST:PORT`` is printed as the first line on
stdout (scripts and tests wait for it). SIGTERM and SIGINT stop it cleanly (uvicorn finishes open requests).
Workers are separate processes, each building its app from ``worker_app`` with the settings passed in the
environment, and each installing the alert observers for its own ingests.
"""

from __future__ import annotations

import http.client
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TextIO

import uvicorn
from fastapi import FastAPI

from ledger.api import create_app
from ledger.home import open_ledger

ENV_DIR = "CARDPOS_LEDGER_SERVE_DIR"
ENV_DB = "CARDPOS_LEDGER_SERVE_DB"
READY_TIMEOUT_S = 60.0


def worker_app() -> FastAPI:
    """uvicorn factory for ``--workers N`` (each worker process calls it once)."""
    return create_app(Path(os.environ[ENV_DIR]), os.environ.get(ENV_DB) or None)


def _probe_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _answers(host: str, port: int) -> bool:
    conn = http.client.HTTPConnection(_probe_host(host), port, timeout=1.0)
    try:
        conn.request("GET", "/v1/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _announce_when_ready(ready: Callable[[], bool], host: str, port: int, out: TextIO,
                         stopped: threading.Event) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and not stopped.is_set():
        if ready():
            shown = f"[{host}]" if ":" in host else host
            out.write(f"cardpos-ledger: listening http://{shown}:{port}\n")
            out.flush()
            return
        stopped.wait(0.05)


def _stop_requested(signum: int, frame: FrameType | None) -> None:
    """Runs only after uvicorn has finished shutting down (see ``serve``): nothing left to do."""


def serve(ledger_dir: Path, db_url: str | None, *, host: str = "127.0.0.1", port: int = 8750, workers: int = 1,
          out: TextIO = sys.stdout) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code."""
    stopped = threading.Event()
    common = {"host": host, "port": port, "log_level": "warning", "access_log": False,
              "timeout_graceful_shutdown": 10}
    if workers <= 1:
        app = create_app(ledger_dir, db_url)
        server = uvicorn.Server(uvicorn.Config(app, **common))  # type: ignore[arg-type]
        watcher = threading.Thread(target=_announce_when_ready, name="ledger-ready", daemon=True,
                                   args=(lambda: bool(server.started), host, port, out, stopped))
        watcher.start()
        # uvicorn re-raises the stopping signal once shut down, to whatever handler was there before it; a quiet
        # handler here makes a requested stop an orderly exit (status 0) instead of a death by signal.
        previous = {sig: signal.signal(sig, _stop_requested) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            server.run()
        finally:
            stopped.set()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0 if server.started else 1
    open_ledger(ledger_dir, db_url)  # fail here, in the parent, with one clear sentence if it cannot open
    os.environ[ENV_DIR] = str(ledger_dir)
    if db_url:
        os.environ[ENV_DB] = db_url
    watcher = threading.Thread(target=_announce_when_ready, name="ledger-ready", daemon=True,
                               args=(lambda: _answers(host, port), host, port, out, stopped))
    watcher.start()
    try:
        uvicorn.run("ledger.server:worker_app", factory=True, workers=workers, **common)  # type: ignore[arg-type]
    finally:
        stopped.set()
    return 0
