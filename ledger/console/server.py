"""Running the console under uvicorn: its own listener, apart from the terminals' API (``ledger serve``), so the
two trust boundaries stay apart. One process, or several workers on one (PostgreSQL) database: sessions live in
the database, so any worker serves any admin.

Once it answers, ``cardpos-console: listening http://HOST:PORT`` is the first line on stdout (scripts, tests and
the demo wait for it). SIGTERM and SIGINT stop it cleanly. uvicorn's ``Server`` header is off; it believes
``X-Forwarded-Proto``/``-For`` only from the addresses in ``trusted_proxies`` (console.toml).
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.request
from pathlib import Path
from typing import Any, TextIO

from fastapi import FastAPI

from ledger.console.app import create_app
from ledger.console.settings import load_console_settings
from ledger.listener import listening_url, probe_host, run_listener

ENV_DIR = "CARDPOS_CONSOLE_DIR"
ENV_DB = "CARDPOS_CONSOLE_DB"


def worker_app() -> FastAPI:
    """uvicorn factory for ``--workers N`` (each worker process calls it once)."""
    return create_app(Path(os.environ[ENV_DIR]), os.environ.get(ENV_DB) or None)


def _answers(url: str) -> bool:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # our own certificate, on our own address: only "is it up" is asked
    try:
        with urllib.request.urlopen(f"{url}/signin", timeout=1.0, context=context) as answer:
            return int(answer.status) == 200
    except OSError:
        return False


def serve(ledger_dir: Path, db_url: str | None, *, host: str = "127.0.0.1", port: int = 8760, workers: int = 1,
          tls_cert: Path | None = None, tls_key: Path | None = None, out: TextIO = sys.stdout) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code."""
    settings = load_console_settings(ledger_dir)
    scheme = "https" if tls_cert else "http"
    url = listening_url(scheme, host, port)
    probe = listening_url(scheme, probe_host(host), port) if ":" not in probe_host(host) else url
    options: dict[str, Any] = {
        "host": host, "port": port, "log_level": "warning", "access_log": False, "timeout_graceful_shutdown": 10,
        "server_header": False, "proxy_headers": True, "forwarded_allow_ips": list(settings.trusted_proxies),
    }
    if tls_cert is not None:
        options.update(ssl_certfile=str(tls_cert), ssl_keyfile=str(tls_key))
    if workers > 1:
        os.environ[ENV_DIR] = str(ledger_dir)
        if db_url:
            os.environ[ENV_DB] = db_url
    return run_listener(lambda: create_app(ledger_dir, db_url), "ledger.console.server:worker_app", workers=workers,
                        options=options, line=f"cardpos-console: listening {url}", answers=lambda: _answers(probe),
                        out=out, name="console")
