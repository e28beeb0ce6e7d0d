"""Running the console under uvicorn: its own listener, apart from the terminals' API (``ledger serve``), so the
two trust boundaries stay apart. One process, or several workers on one (PostgreSQL) database: sessions live in
the database, so any worker serves any admin.

Once it answers, ``cardpos-console: listening http://HOST:PORT`` is the first line on stdout (scripts, tests and
the demo wait for it). SIGTERM and SIGINT stop it cleanly. uvicorn's ``Server`` header is off; it believes
``X-Forwarded-Proto``/``-For`` only from the addresses in ``trusted_proxies`` (console.toml).
"""

from __future__ import annotations

import os
import signal
import ssl
import sys
import threading
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import uvicorn
from fastapi import FastAPI

from ledger.console.app import create_app
from ledger.console.settings import load_console_settings
from ledger.server import announce_when_ready

ENV_DIR = "CARDPOS_CONSOLE_DIR"
ENV_DB = "CARDPOS_CONSOLE_DB"


def worker_app() -> FastAPI:
    """uvicorn factory for ``--workers N`` (each worker process calls it once)."""
    return create_app(Path(os.environ[ENV_DIR]), os.environ.get(ENV_DB) or None)


def _probe_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _answers(url: str) -> bool:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # our own certificate, on our own address: only "is it up" is asked
    try:
        with urllib.request.urlopen(f"{url}/signin", timeout=1.0, context=context) as answer:
            return int(answer.status) == 200
    except OSError:
        return False


def _stop_requested(signum: int, frame: FrameType | None) -> None:
    """Runs only after uvicorn has finished shutting down: nothing left to do."""


def serve(ledger_dir: Path, db_url: str | None, *, host: str = "127.0.0.1", port: int = 8760, workers: int = 1,
          tls_cert: Path | None = None, tls_key: Path | None = None, out: TextIO = sys.stdout) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code."""
    settings = load_console_settings(ledger_dir)
    stopped = threading.Event()
    scheme = "https" if tls_cert else "http"
    shown = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{shown}:{port}"
    line = f"cardpos-console: listening {url}"
    probe = f"{scheme}://{_probe_host(host)}:{port}" if ":" not in _probe_host(host) else url
    common: dict[str, Any] = {
        "host": host, "port": port, "log_level": "warning", "access_log": False, "timeout_graceful_shutdown": 10,
        "server_header": False, "proxy_headers": True, "forwarded_allow_ips": list(settings.trusted_proxies),
    }
    if tls_cert is not None:
        common.update(ssl_certfile=str(tls_cert), ssl_keyfile=str(tls_key))
    if workers <= 1:
        app = create_app(ledger_dir, db_url)
        server = uvicorn.Server(uvicorn.Config(app, **common))
        watcher = threading.Thread(target=announce_when_ready, name="console-ready", daemon=True,
                                   args=(lambda: bool(server.started), line, out, stopped))
        watcher.start()
        previous = {sig: signal.signal(sig, _stop_requested) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            server.run()
        finally:
            stopped.set()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0 if server.started else 1
    os.environ[ENV_DIR] = str(ledger_dir)
    if db_url:
        os.environ[ENV_DB] = db_url
    watcher = threading.Thread(target=announce_when_ready, name="console-ready", daemon=True,
                               args=(lambda: _answers(probe), line, out, stopped))
    watcher.start()
    try:
        uvicorn.run("ledger.console.server:worker_app", factory=True, workers=workers, **common)
    finally:
        stopped.set()
    return 0
