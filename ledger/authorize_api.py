"""``POST /v1/authorize``: the HTTP side of online authorization (``ledger.authorize`` decides and records).

The request is authenticated like a pull (the terminal's signature over ``/v1/authorize?digest=...``, the digest
being the SHA-256 of the body, checked here), decoded with fixed limits (``cardkit.authorization``), decided under
the member's lock, and answered with the decision signed by the root key over the body digest and the terminal's
nonce. Errors are the API's JSON ``{"error", "message"}``: 400 ``malformed``, 401/403 as for pulls, 409
``uuid_reused``, 503 ``busy`` / ``storage``.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from cardkit import authorization, wire
from ledger import authorize, holds, store
from ledger.enroll import RequestRefused, authenticate
from ledger.home import Ledger

AUTHORIZE_THREADS = 4
"""Threads of a ledger process that decide authorizations, apart from the pool every other request shares. They
live as long as the process, each with its database connections open from the start: a thread from the shared
pool may be new (anyio ends threads idle for 10 s), and its first query then opens a connection, which on
PostgreSQL under batch load took longer than the authorization itself. On SQLite authorizations take the holds
file's write lock one at a time anyway; on PostgreSQL four threads serve four members at once per worker."""
WARM_UP_TIMEOUT_S = 10.0


def _authorization_threads() -> ThreadPoolExecutor:
    """``AUTHORIZE_THREADS`` threads, started now, each with its ledger and holds connections already open."""
    executor = ThreadPoolExecutor(max_workers=AUTHORIZE_THREADS, thread_name_prefix="authorize")
    started = threading.Barrier(AUTHORIZE_THREADS, timeout=WARM_UP_TIMEOUT_S)

    def connect() -> None:
        started.wait()  # every thread holds one task at once: the executor starts all of them
        store.db.connect(reuse_if_open=True)
        authorize.holds_db.connect(reuse_if_open=True)

    for future in [executor.submit(connect) for _ in range(AUTHORIZE_THREADS)]:
        future.result(timeout=2 * WARM_UP_TIMEOUT_S)
    return executor


class AuthorizeResponse(BaseModel):
    uuid: str
    decision: str = Field(description='"approved" or "declined"')
    reason: str = Field(description="decline code (cardkit.authorization.DECLINE_REASONS), empty when approved")
    auth_id: str = Field(description="16 hex digits naming the hold (or the recorded decline)")
    signature: str = Field(description="hex Ed25519 root-key signature (cardkit.wire.authorization_signature_text)")


def mount(app: FastAPI, ledger: Ledger, responses: dict[int | str, dict[str, Any]]) -> None:
    """Add ``POST /v1/authorize`` to the API over ``ledger`` (the holds table is opened here)."""
    authorize.open_holds()
    authorize.install()
    hold_ttl_ms = holds.install().ttl_ms  # the scheduled sweep of held authorizations (ledger.holds)
    threads = _authorization_threads()

    @app.post(wire.AUTHORIZE_PATH, response_model=AuthorizeResponse, responses=responses)
    async def authorize_request(request: Request, digest: str = Query("", max_length=64)) -> Any:
        body = await request.body()
        path = request.scope.get("raw_path") or request.scope["path"].encode()
        query = request.scope.get("query_string", b"")
        path_query = (path + b"?" + query if query else path).decode("latin-1")
        headers = [request.headers.get(name) for name in wire.SIGNED_REQUEST_HEADERS]

        def handle() -> tuple[str, authorization.AuthorizationRequest, bytes, authorize.Outcome]:
            caller = authenticate(ledger, "POST", path_query, *headers)
            body_digest = authorization.request_digest(body)
            if not hmac.compare_digest(digest.encode(), body_digest.hex().encode()):
                raise RequestRefused(400, "malformed", f"the {wire.DIGEST_PARAM} is not the SHA-256 of the body")
            try:
                parsed = authorization.parse_request(body)
            except authorization.AuthorizationRefused as exc:
                raise RequestRefused(400, exc.reason, exc.message) from None
            outcome = authorize.authorize(parsed, body_digest, terminal_id=caller.terminal_id, now_ms=ledger.now_ms(),
                                          ttl_ms=hold_ttl_ms)
            return caller.terminal_id, parsed, body_digest, outcome

        try:
            # Its own threads: never queued behind batch ingests, never a new thread or connection to open.
            terminal_id, parsed, body_digest, outcome = await asyncio.get_running_loop().run_in_executor(
                threads, handle)
        except authorize.AuthorizationConflict as exc:
            return JSONResponse({"error": "uuid_reused", "message": exc.message}, status_code=409)
        # No TerminalSeen event here: its observers may write, and an authorization must never wait on a write lock.
        return authorization.answer_fields(outcome.answer, terminal_id=terminal_id, nonce=parsed.nonce,
                                           digest=body_digest, root_key=ledger.keys.root())
