"""One HTTP listener under uvicorn, in one process or in several workers: the ledger's API (``ledger serve``) and
the admins' console (``ledger console``) both run this way, each on its own port.

Once the listener answers, its ``listening`` line is printed as the first line on ``out`` (scripts, tests and the
demo wait for it). SIGTERM and SIGINT stop it cleanly: uvicorn finishes open requests, and the exit is an orderly
one (status 0), not a death by signal.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any, TextIO

import uvicorn

READY_TIMEOUT_S = 60.0


def probe_host(host: str) -> str:
    """The address to reach a listener bound to ``host`` from this machine (a wildcard is probed on loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def listening_url(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def announce_when_ready(ready: Callable[[], bool], line: str, out: TextIO, stopped: threading.Event) -> None:
    """Print ``line`` once ``ready()`` says the listener answers; give up after READY_TIMEOUT_S or when
    ``stopped``."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and not stopped.is_set():
        if ready():
            out.write(line + "\n")
            out.flush()
            return
        stopped.wait(0.05)


def _stop_requested(signum: int, frame: FrameType | None) -> None:
    """Runs only after uvicorn has finished shutting down (see ``run_listener``): nothing left to do."""


def run_listener(build_app: Callable[[], Any], worker_factory: str, *, workers: int, options: Mapping[str, Any],
                 line: str, answers: Callable[[], bool], out: TextIO, name: str) -> int:
    """Serve until SIGTERM/SIGINT and return the exit code.

    One worker: the app ``build_app()`` in this process, announced once uvicorn has started. Several: uvicorn's
    worker processes, each calling the factory named by ``worker_factory`` (``module:function``; the caller has
    put what it needs in the environment), announced once ``answers()`` says a worker answers. ``options`` are
    uvicorn's (host, port, protocol, limits)."""
    stopped = threading.Event()
    if workers > 1:
        _watch(answers, line, out, stopped, name)
        try:
            uvicorn.run(worker_factory, factory=True, workers=workers, **options)
        finally:
            stopped.set()
        return 0
    server = uvicorn.Server(uvicorn.Config(build_app(), **options))
    _watch(lambda: bool(server.started), line, out, stopped, name)
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


def _watch(ready: Callable[[], bool], line: str, out: TextIO, stopped: threading.Event, name: str) -> None:
    threading.Thread(target=announce_when_ready, name=f"{name}-ready", daemon=True,
                     args=(ready, line, out, stopped)).start()
