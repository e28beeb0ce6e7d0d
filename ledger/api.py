"""The ledger's HTTP API (FastAPI), exactly as documented in docs/internals.md.

- ``GET /v1/health`` → ``{"ok": true}``
- ``POST /v1/enroll`` JSON ``{code, identity_key, suite}`` → the terminal's id and the ledger's keys and documents
- ``POST /v1/batches`` ``application/cbor`` sealed envelope → ``{acked_seq, applied, duplicates}``
- ``GET /v1/pull?trust=V&revocations=V&rules=V&members=V`` signed by the terminal → signed documents or null

Every error is JSON ``{"error": code, "message": one sentence}``. The database is peewee (blocking), so the
handlers are plain functions FastAPI runs in its thread pool; each thread keeps its own connection. A database
failure under any request is answered 503 with ``Retry-After``: ``busy`` (locked or a conflicting transaction)
or ``storage`` (a full disk, a read-only or damaged file, a lost connection); the log says which file or server.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from cardkit import wire
from ledger import events, noise, publish, store
from ledger.enroll import RequestRefused, authenticate, b64, enroll_terminal
from ledger.errors import LedgerStorageError
from ledger.home import Clock, Ledger, open_ledger, system_clock
from ledger.ingest import IngestRejected, ingest_batch
from ledger.storage_errors import database_error_types, storage_error

log = logging.getLogger("cardpos.ledger.api")

MAX_BATCH_BYTES = 32 * 1024 * 1024
RETRY_AFTER_S = 1  # busy: a lock or a conflicting transaction clears in a moment
STORAGE_RETRY_AFTER_S = 10  # a full disk, a read-only file or a lost server takes a person to fix
INTERNAL_MESSAGE = "the ledger failed to handle the request; see its log"


class EnrollRequest(BaseModel):
    code: str = Field(min_length=1, max_length=64, description="one-time enrollment code from `ledger terminal add`")
    identity_key: str = Field(min_length=64, max_length=64, description="hex raw Ed25519 public key of the terminal")
    suite: str = Field(default="x25519", description='"x25519" or "mlkem768x25519"')


class EnrollResponse(BaseModel):
    terminal_id: str
    store_id: str
    issuer: str
    ledger_hpke_public_key: str
    hpke_suite: str
    root_public_key: str
    trust_list: str
    rules: str
    revocations: str


class BatchResponse(BaseModel):
    acked_seq: int
    applied: int
    duplicates: int
    quarantined: list[int] | None = Field(
        default=None, description="seqs of this batch journaled but not applied (left out when none)")


class PullResponse(BaseModel):
    trust_list: str | None
    revocations: str | None
    rules: str | None
    members: str | None


class ErrorBody(BaseModel):
    error: str
    message: str
    acked_seq: int | None = None


def error(status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
          **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status, headers=headers)


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 409: {"model": ErrorBody},
    503: {"model": ErrorBody},
}


def create_app(ledger_dir: Path, db_url: str | None = None, *, clock: Clock = system_clock,
               install_alerts: bool = True) -> FastAPI:
    """The API over the ledger in ``ledger_dir`` (its recorded database unless ``db_url`` is given)."""
    ledger: Ledger = open_ledger(ledger_dir, db_url, clock=clock)
    if install_alerts:
        from ledger import alerts

        alerts.install(ledger_dir)
    app = FastAPI(title="cardpos ledger", version="1",
                  description="Central ledger of cardpos terminals: enrollment, batch ingest, signed pulls.")
    app.state.ledger = ledger

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(400, "malformed", f"the request is not well formed: {where} {first.get('msg', '')}".strip())

    @app.exception_handler(RequestRefused)
    async def refused(_: Request, exc: RequestRefused) -> JSONResponse:
        return error(exc.status, exc.code, exc.message)

    def storage_answer(exc: LedgerStorageError) -> JSONResponse:
        if not exc.retryable:  # a statement the database refused: a bug, logged in full, not worth a retry
            log.error("ledger database refused a request: %s", exc.message, exc_info=exc.orig or exc)
            return error(500, "internal", INTERNAL_MESSAGE)
        # The log names the file or server and what to do; the caller learns only what happened.
        log.warning("ledger database failure: %s", exc.message)
        retry_s = RETRY_AFTER_S if exc.reason == "busy" else STORAGE_RETRY_AFTER_S
        return error(503, exc.reason, exc.public_message, headers={"Retry-After": str(retry_s)})

    @app.exception_handler(LedgerStorageError)
    async def storage_failure(_: Request, exc: LedgerStorageError) -> JSONResponse:
        return storage_answer(exc)

    async def database_failure(_: Request, exc: Exception) -> JSONResponse:
        # The boundary: peewee, sqlite3 and psycopg2 errors from any handler become one storage answer.
        return storage_answer(storage_error(exc, store.describe_database()))

    for kind in database_error_types():
        app.add_exception_handler(kind, database_failure)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("ledger request failed")
        return error(500, "internal", INTERNAL_MESSAGE)

    @app.get(wire.HEALTH_PATH)
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.post(wire.ENROLL_PATH, response_model=EnrollResponse, responses=_ERRORS)
    def enroll(body: EnrollRequest) -> dict[str, Any]:
        return enroll_terminal(ledger, body.code, body.identity_key, body.suite)

    @app.post(wire.BATCHES_PATH, response_model=BatchResponse, response_model_exclude_none=True, responses=_ERRORS,
              openapi_extra={"requestBody": {"required": True, "content": {"application/cbor": {"schema": {
                  "type": "string", "format": "binary",
                  "description": "sealed batch envelope (docs/sync-protocol.md)"}}}}})
    async def batches(request: Request) -> Any:
        envelope = await request.body()
        if not envelope or len(envelope) > MAX_BATCH_BYTES:
            return error(400, "malformed", f"a batch is 1 to {MAX_BATCH_BYTES} bytes of CBOR")
        try:
            result = await run_in_threadpool(ingest_batch, envelope, now_ms=ledger.now_ms(), ledger=ledger,
                                             source=_source(request))
        except IngestRejected as exc:
            extra: dict[str, Any] = {"acked_seq": exc.acked_seq} if exc.acked_seq is not None else {}
            return error(exc.status, exc.reason, exc.message, **extra)
        return {"acked_seq": result.acked_seq, "applied": result.applied, "duplicates": result.duplicates,
                "quarantined": result.quarantined or None}

    @app.get(wire.PULL_PATH, response_model=PullResponse, responses=_ERRORS)
    def pull(request: Request, trust: int = Query(0, ge=0), revocations: int = Query(0, ge=0),
             rules: int = Query(0, ge=0), members: int = Query(0, ge=0)) -> dict[str, Any]:
        path = request.scope.get("raw_path") or request.scope["path"].encode()
        query = request.scope.get("query_string", b"")
        path_query = (path + b"?" + query if query else path).decode("latin-1")
        caller = _authenticated_pull(request, path_query)
        out: dict[str, Any] = {
            "trust_list": b64(publish.signed_trust_list(ledger)) if publish.trust_version() > trust else None,
            "revocations": b64(publish.signed_revocation_delta(ledger, revocations))
            if publish.revocation_version() != revocations else None,
            "rules": b64(publish.signed_rules(ledger)) if max(publish.rules_version(), 1) > rules else None,
            "members": b64(publish.signed_members_delta(ledger, caller.store_id, members))
            if publish.members_version() != members else None,
        }
        events.publish(events.TerminalSeen(caller.terminal_id, caller.store_id, caller.time_ms, ledger.now_ms()))
        return out

    def _authenticated_pull(request: Request, path_query: str) -> Any:
        """The pull's caller; an unsigned pull is counted per source (``ledger.noise``), never echoed in full."""
        headers = [request.headers.get(name) for name in wire.SIGNED_REQUEST_HEADERS]
        try:
            return authenticate(ledger, "GET", path_query, *headers)
        except RequestRefused as exc:
            if exc.code not in noise.UNSIGNED_PULL_CODES:
                raise
            noise.refused(_source(request), "pull", exc.code, headers[0], 0, ledger.now_ms())
            raise RequestRefused(exc.status, exc.code, noise.unsigned_pull_message(exc.code, headers[0])) from None

    return app


def _source(request: Request) -> str:
    """The caller's network address (what unsigned refusals are counted by)."""
    return request.client.host if request.client is not None else "unknown"
