"""Running the ledger API under uvicorn: one process, or several workers sharing one (PostgreSQL) database.

Once the server answers, ``cardpos-ledger: listening http://HOST:PORT`` is printed as the first line on
stdout (scripts and tests wait for it). SIGTERM and SIGINT stop it cleanly (uvicorn finishes open requests); the
listener's running is ``ledger.listener``'s, shared with the console.
Workers are separate processes, each building its app from ``worker_app`` with the settings passed in the
environment, and each installing the alert observers for its own ingests.

The edge (docs/security.md, "Hostile bytes at the ledger's edge"): the app is wrapped in ``ledger.edge.EdgeGuard``
(body limits, content types, body timeouts, no tracebacks) and served by ``EdgeH11Protocol``, uvicorn's h11
protocol with a deadline on the request head: a client that has not sent a complete request line and headers
``HEAD_TIMEOUT_S`` after connecting (or after its previous answer) is answered 408 and cut off, however it drips
bytes. Request heads are at most ``ledger.edge.MAX_HEAD_BYTES`` (h11 refuses an incomplete head past it); idle
keep-alive connections close after ``KEEP_ALIVE_TIMEOUT_S``; no ``server`` header is sent.

A ledger process hands the GIL over every ``GIL_SWITCH_INTERVAL_S`` (1 ms, not CPython's 5 ms), so online
authorizations and ``/v1/health`` are not kept waiting by batch ingests decoding beside them (issue 14).
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import json
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ledger.api import create_app
from ledger.edge import MAX_HEAD_BYTES, ASGIApp, EdgeGuard, count_connection_refusal
from ledger.home import open_ledger
from ledger.listener import listening_url, probe_host, run_listener

ENV_DIR = "CARDPOS_LEDGER_SERVE_DIR"
ENV_DB = "CARDPOS_LEDGER_SERVE_DB"
ENV_OPENAPI = "CARDPOS_LEDGER_SERVE_OPENAPI"
HEAD_TIMEOUT_S = 5.0
"""Longest time from connecting (or from the previous answer) to a complete request line and headers."""
KEEP_ALIVE_TIMEOUT_S = 5
"""An idle keep-alive connection (no byte since the last answer) is closed after this long."""
GIL_SWITCH_INTERVAL_S = 0.001
"""How long a thread of the ledger process may keep the GIL while another waits for it (CPython's default is
5 ms). An authorization takes the GIL back after every database call and the event loop after every socket
wait; each time, a batch ingest busy decoding may hold it for up to this long. At 1 ms the authorization p99
under 50 pushing terminals fell from 245 / 200 ms to 172 / 144 ms (two same-machine pairs, load 10-11)."""

log = logging.getLogger("cardpos.ledger.edge")


def _json_answer(status: int, reason: bytes, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection (for when h11 has no request to answer)."""
    body = json.dumps({"error": code, "message": message}).encode()
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % (status, reason, len(body))) + body


class EdgeH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline on the request head, and JSON for a request that is not HTTP.

    uvicorn arms no timer until a first answer has been sent, and any byte cancels its keep-alive timer, so a
    client dripping one header byte every few seconds would hold a connection (and a file descriptor) forever.
    """

    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None:
            if self.conn.their_state is h11.IDLE:
                self._head_bytes = True
            else:  # the request line and headers are in; the body has its own timeouts (ledger.edge)
                self._cancel_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self._cancel_head_timer()
        count_connection_refusal(self.loop, self.client[0] if self.client else None, "malformed")
        self.transport.write(_json_answer(400, b"Bad Request", "malformed", "the request is not valid HTTP/1.1"))
        self.transport.close()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_bytes = False
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self._head_bytes:  # part of a request came: say why it is cut off
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
            log.info("request head too slow; connection closed", extra={"fields": {"client": client}})
            count_connection_refusal(self.loop, self.client[0] if self.client else None, "timeout")
            self.transport.write(_json_answer(
                408, b"Request Timeout", "timeout",
                f"the request line and headers did not arrive within {HEAD_TIMEOUT_S:g} s"))
        self.transport.close()


def build_app(ledger_dir: Path, db_url: str | None, *, openapi: bool = False) -> ASGIApp:
    """The API guarded by its edge: what uvicorn serves."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    api = create_app(ledger_dir, db_url, openapi=openapi)
    tune_collector()
    return EdgeGuard(api, now_ms=api.state.ledger.now_ms)


GC_YOUNG_THRESHOLD = 100_000
"""Allocations (less frees) between two young-generation collections. A batch keeps its entries, payloads and
rows alive until it is applied (40,000-60,000 containers for a batch of 7,142), so at CPython's default, 700,
the collector walked them over and over: 4-5 µs of ingest CPU per entry; at 20,000, 1.8 µs (two collections a
batch); at this threshold a batch of that size triggers none. Garbage cycles wait a little longer: a few MB at most."""


def tune_collector() -> None:
    """What start-up made (modules, the app, caches) lives as long as the process: frozen, full collections no
    longer walk it again and again; young collections run less often (``GC_YOUNG_THRESHOLD``)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def worker_app() -> ASGIApp:
    """uvicorn factory for ``--workers N`` (each worker process calls it once)."""
    return build_app(Path(os.environ[ENV_DIR]), os.environ.get(ENV_DB) or None,
                     openapi=os.environ.get(ENV_OPENAPI) == "1")


def _answers(host: str, port: int) -> bool:
    conn = http.client.HTTPConnection(probe_host(host), port, timeout=1.0)
    try:
        conn.request("GET", "/v1/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def serve(ledger_dir: Path, db_url: str | None, *, host: str = "127.0.0.1", port: int = 8750, workers: int = 1,
          out: TextIO = sys.stdout, openapi: bool = False) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code. ``openapi``: also serve ``/openapi.json``."""
    options = {"host": host, "port": port, "log_level": "warning", "access_log": False,
               "timeout_graceful_shutdown": 10, "http": EdgeH11Protocol, "server_header": False,
               "timeout_keep_alive": KEEP_ALIVE_TIMEOUT_S, "h11_max_incomplete_event_size": MAX_HEAD_BYTES}
    if workers > 1:
        open_ledger(ledger_dir, db_url)  # fail here, in the parent, with one clear sentence if it cannot open
        os.environ[ENV_DIR] = str(ledger_dir)
        if db_url:
            os.environ[ENV_DB] = db_url
        os.environ[ENV_OPENAPI] = "1" if openapi else "0"
    return run_listener(lambda: build_app(ledger_dir, db_url, openapi=openapi), "ledger.server:worker_app",
                        workers=workers, options=options,
                        line=f"cardpos-ledger: listening {listening_url('http', host, port)}",
                        answers=lambda: _answers(host, port), out=out, name="ledger")
