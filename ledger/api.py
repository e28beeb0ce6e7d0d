"""The ledger's HTTP API (FastAPI), exactly as documented in docs/internals.md.

- ``GET /v1/health`` → ``{"ok": true}``
- ``POST /v1/enroll`` JSON proof of the one-time code (``cardkit.enrollment``) → the terminal's id, the ledger's keys
  and documents, authenticated with the code and signed by the root key
- ``POST /v1/batches`` ``application/cbor`` sealed envelope → ``{acked_seq, applied, duplicates, last_hash,
  signature}``, the ack signed by the root key over the terminal's ``X-Cardpos-Nonce`` (``cardkit.answers``)
- ``GET /v1/pull?members=V&nonce=N&revocations=V&rules=V&trust=V`` signed by the terminal → signed documents or
  null (member snapshots sealed to the terminal), the ledger's ``versions`` and a root signature over all of it and
  the nonce
- ``GET /v1/members/lookup?card=C&nonce=N`` and ``GET /v1/operations/original?nonce=N&uuid=U`` signed by the
  terminal → one member's snapshot sealed to it, or an operation recorded anywhere and what is left to refund,
  root-signed over the nonce (``ledger.lookup``, docs/sync-protocol.md §3c, §3d)
- ``POST /v1/cards/new?card=C&nonce=N&request=UUID`` signed by the terminal → the new card of the tier upgrade
  journaled as entry UUID, signed by the root key over the nonce (``ledger.cards_issue``, ``cardkit.card_issue``)

Every error is JSON ``{"error": code, "message": one sentence}``. Bodies are bounded, typed and timed before a
handler runs (``ledger.edge``, which ``ledger.server`` wraps around this app): 413 ``too_large``, 415
``unsupported_media_type``, 408 ``timeout``. The OpenAPI schema is served at ``/openapi.json`` only when asked for
(``ledger serve --openapi``); there is no ``/docs`` or ``/redoc`` page (they load scripts from a CDN).
The database is peewee (blocking), so the
handlers are plain functions FastAPI runs in its thread pool; each thread keeps its own connection. Three
exceptions keep the latencies issue 14 names under batch load: ``/v1/health`` is answered on the event loop,
batch ingests run at most ``INGEST_THREADS`` at a time per process (the rest wait on the loop, holding no thread),
and authorizations run on threads of their own (``ledger.authorize_api``). A database
failure under any request is answered 503 with ``Retry-After``: ``busy`` (locked or a conflicting transaction)
or ``storage`` (a full disk, a read-only or damaged file, a lost connection); the log says which file or server.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from cardkit import answers, wire
from cardkit.envelope import MAX_ENVELOPE_BYTES
from ledger import admin, authorize_api, cards_issue, edge, events, lookup, noise, publish, store, terminal_reports
from ledger.enroll import RequestRefused, authenticate, b64, enroll_terminal, members_document
from ledger.errors import LedgerStorageError
from ledger.home import Clock, Ledger, open_ledger, system_clock
from ledger.ingest import IngestRejected, ingest_batch
from ledger.storage_errors import database_error_types, is_database_error, storage_error

log = logging.getLogger("cardpos.ledger.api")

MAX_BATCH_BYTES = MAX_ENVELOPE_BYTES  # ledger.edge refuses larger bodies (413) before they are read
MAX_VERSION = (1 << 63) - 1  # a document version the database can hold; larger is malformed, not a server error
OPENAPI_PATH = "/openapi.json"
INGEST_THREADS = 2
"""Batches one ledger process ingests at once; the others wait their turn on the event loop, holding no thread.

One write lock (SQLite's file lock; PostgreSQL's ``members`` counter row) lets one batch apply at a time anyway,
so a second thread only overlaps one batch's decrypting and decoding with another's apply. Every thread more is
one more CPU-bound thread taking the GIL in turns with the event loop and the authorization threads: with fifty
batches in fifty threads, an online authorization waited 375 ms p99 for its turns (docs/benchmarks.md, #14)."""
RETRY_AFTER_S = 1  # busy: a lock or a conflicting transaction clears in a moment
STORAGE_RETRY_AFTER_S = 10  # a full disk, a read-only file or a lost server takes a person to fix
INTERNAL_MESSAGE = "the ledger failed to handle the request; see its log"


HEX = r"^[0-9a-fA-F]*$"


class EnrollRequest(BaseModel):
    """Proof of the one-time code without the code (``cardkit.enrollment``, docs/sync-protocol.md §1)."""

    code_id: str = Field(min_length=32, max_length=32, pattern=HEX, description="hex HKDF code id of the code")
    identity_key: str = Field(min_length=64, max_length=64, pattern=HEX,
                              description="hex raw Ed25519 public key of the terminal")
    suite: str = Field(default="x25519", max_length=32, description='"x25519" or "mlkem768x25519"')
    terminal_hpke_key: str = Field(min_length=64, max_length=2432, pattern=HEX,
                                   description="hex HPKE public key member snapshots are sealed to")
    nonce: str = Field(min_length=64, max_length=64, pattern=HEX, description="hex 32 fresh random bytes")
    root_key: str | None = Field(default=None, min_length=64, max_length=64, pattern=HEX,
                                 description="hex root key the terminal expects (refused, code unused, if not ours)")
    proof: str = Field(min_length=64, max_length=64, pattern=HEX, description="hex HMAC-SHA256 keyed by the code")


class EnrollResponse(BaseModel):
    answer: str = Field(description="b64 deterministic CBOR: terminal id, store, keys, echoes, documents")
    mac: str = Field(description="hex HMAC-SHA256 keyed by the code over the nonce and the answer")
    signature: str = Field(description="hex Ed25519 signature by the root key over the answer")


class BatchResponse(BaseModel):
    acked_seq: int
    applied: int
    duplicates: int
    last_hash: str = Field(description="hex hash of entry acked_seq as the ledger holds it")
    signature: str = Field(description="hex Ed25519 root-key signature (docs/sync-protocol.md, signed answers)")
    quarantined: list[int] | None = Field(
        default=None, description="seqs of this batch journaled but not applied (left out when none)")


class PullResponse(BaseModel):
    trust_list: str | None
    revocations: str | None
    rules: str | None
    members: str | None
    versions: dict[str, int] = Field(description="the ledger's version of each kind")
    signature: str = Field(description="hex Ed25519 root-key signature over the answer and the request's nonce")


class ErrorBody(BaseModel):
    error: str
    message: str
    acked_seq: int | None = None
    last_hash: str | None = None
    signature: str | None = None


def error(status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
          **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status, headers=headers)


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 408: {"model": ErrorBody},
    409: {"model": ErrorBody}, 413: {"model": ErrorBody}, 415: {"model": ErrorBody}, 503: {"model": ErrorBody},
}


def audit_members_sent(request: Request, caller: Any, member_ids: list[str]) -> bool:
    """Personal data leaves the ledger: one audit entry per pull, with every member id sent. False when the entry
    could not be written (the caller then withholds the snapshots rather than send them unaudited)."""
    try:
        admin.record_member_read(member_ids, actor=f"terminal:{caller.terminal_id}", via="api",
                                 origin=request.client.host if request.client else "", action="members_pull")
    except Exception as exc:
        if not isinstance(exc, LedgerStorageError) and not is_database_error(exc):
            raise
        log.warning("member snapshots withheld, their read could not be audited: %s", exc)
        return False
    return True


def _path_query(request: Request) -> str:
    """The ``path?query`` exactly as the terminal signed it."""
    path = request.scope.get("raw_path") or request.scope["path"].encode()
    query = request.scope.get("query_string", b"")
    return str((path + b"?" + query if query else path).decode("latin-1"))


def create_app(ledger_dir: Path, db_url: str | None = None, *, clock: Clock = system_clock,
               install_alerts: bool = True, openapi: bool = False) -> FastAPI:
    """The API over the ledger in ``ledger_dir`` (its recorded database unless ``db_url`` is given).

    ``openapi``: serve the schema at ``/openapi.json`` (off by default: it maps the attack surface for anyone).
    """
    ledger: Ledger = open_ledger(ledger_dir, db_url, clock=clock)
    if install_alerts:
        from ledger import alerts

        alerts.install(ledger_dir)
    app = FastAPI(title="cardpos ledger", version="1",
                  description="Central ledger of cardpos terminals: enrollment, batch ingest, signed pulls.",
                  docs_url=None, redoc_url=None, openapi_url=OPENAPI_PATH if openapi else None)
    app.state.ledger = ledger
    ingest_limiter = anyio.CapacityLimiter(INGEST_THREADS)

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
        return error(exc.status, exc.code, exc.message, headers=exc.headers)

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
    async def health() -> dict[str, bool]:
        # On the event loop: no thread to wait for and no second GIL hand-over, whatever the batches are doing.
        return {"ok": True}

    @app.post(wire.ENROLL_PATH, response_model=EnrollResponse, responses={**_ERRORS, 429: {"model": ErrorBody}})
    def enroll(body: EnrollRequest, request: Request) -> dict[str, Any]:
        try:
            return enroll_terminal(ledger, body.model_dump(), source=_source(request))
        except RequestRefused as exc:
            _note_enroll_refusal(request, exc.code)
            raise

    @app.post(wire.BATCHES_PATH, response_model=BatchResponse, response_model_exclude_none=True, responses=_ERRORS,
              openapi_extra={"requestBody": {"required": True, "content": {"application/cbor": {"schema": {
                  "type": "string", "format": "binary",
                  "description": "sealed batch envelope (docs/sync-protocol.md)"}}}}})
    async def batches(request: Request) -> Any:
        nonce = answers.parse_nonce(request.headers.get(wire.NONCE_HEADER))
        if nonce is None:  # nothing checked yet: the edge counts this refusal per source
            return error(400, "malformed", f"{wire.NONCE_HEADER} is 0 to {wire.MAX_NONCE_BYTES} bytes of lowercase hex")
        envelope = await request.body()
        if not envelope or len(envelope) > MAX_BATCH_BYTES:  # the edge already refused larger ones (413)
            return error(400, "malformed", f"a batch is 1 to {MAX_BATCH_BYTES} bytes of CBOR")
        try:
            result = await anyio.to_thread.run_sync(
                functools.partial(ingest_batch, envelope, now_ms=ledger.now_ms(), ledger=ledger),
                limiter=ingest_limiter)
        except IngestRejected as exc:
            _note_batch_refusal(request, exc)
            extra: dict[str, Any] = {"acked_seq": exc.acked_seq} if exc.acked_seq is not None else {}
            if extra and exc.terminal_id and exc.batch_id is not None and exc.acked_hash is not None:
                extra.update(signed_ack(extra, exc.terminal_id, exc.batch_id, exc.acked_hash, nonce))
            return error(exc.status, exc.reason, exc.message, **extra)
        edge.note(request.scope).authenticated = True
        answer: dict[str, Any] = {"acked_seq": result.acked_seq, "applied": result.applied,
                                  "duplicates": result.duplicates}
        if result.quarantined:
            answer["quarantined"] = result.quarantined
        return {**answer, **signed_ack(answer, result.terminal_id, result.batch_id, result.acked_hash, nonce)}

    def signed_ack(answer: dict[str, Any], terminal_id: str, batch_id: str, acked_hash: bytes,
                   nonce: bytes) -> dict[str, str]:
        """The root signature over an ack (its ``quarantined`` list too, when the answer carries one)."""
        ack = answers.Ack(terminal_id=terminal_id, batch_id=batch_id, acked_seq=int(answer["acked_seq"]),
                          last_hash=acked_hash, quarantined=answers.quarantined_list(answer.get("quarantined")))
        return answers.ack_fields(ack, nonce, ledger.keys.root())

    cards_issue.create_tables()

    @app.post(wire.NEW_CARD_PATH, responses=_ERRORS)
    def new_card(request: Request, card: str = Query("", max_length=40),
                 request_id: str = Query(alias="request", min_length=1, max_length=36),
                 nonce: str = Query("", max_length=2 * wire.MAX_NONCE_BYTES)) -> dict[str, Any]:
        caller, nonce_bytes = _signed_caller(ledger, request, nonce, "POST")
        return cards_issue.new_card_answer(ledger, caller, request_id=request_id, card_id=card, nonce=nonce_bytes)

    @app.get(wire.PULL_PATH, response_model=PullResponse, responses=_ERRORS)
    def pull(request: Request, trust: int = Query(0, ge=0, le=MAX_VERSION),
             revocations: int = Query(0, ge=0, le=MAX_VERSION), rules: int = Query(0, ge=0, le=MAX_VERSION),
             members: int = Query(0, ge=0, le=MAX_VERSION),
             nonce: str = Query("", max_length=2 * wire.MAX_NONCE_BYTES),
             app: str = Query("", alias=wire.APP_VERSION_PARAM, max_length=terminal_reports.MAX_VERSION_CHARS,
                              pattern=r"^[0-9A-Za-z.+_-]*$"),
             queue: int = Query(-1, alias=wire.QUEUE_PARAM, ge=-1, le=MAX_VERSION)) -> dict[str, Any]:
        caller = _authenticated_pull(request, _path_query(request))
        nonce_bytes = answers.parse_nonce(nonce)
        if nonce_bytes is None:
            raise RequestRefused(400, "malformed", f"the {wire.NONCE_PARAM} is 0 to {wire.MAX_NONCE_BYTES} bytes of "
                                                   "lowercase hex")
        # read once: the signed versions and the null documents agree
        versions = publish.current_versions(caller.store_id)
        members_doc, shown = members_document(ledger, caller, members, versions["members"])
        if shown and not audit_members_sent(request, caller, shown):
            members_doc = None  # no unaudited read: the snapshots wait for the next pull, the rest goes out now
        docs: dict[str, bytes | None] = {
            "trust_list": publish.signed_trust_list(ledger) if versions["trust"] > trust else None,
            "revocations": publish.signed_revocation_delta(ledger, revocations)
            if versions["revocations"] != revocations else None,
            "rules": publish.signed_rules(ledger, caller.store_id) if versions["rules"] > rules else None,
            "members": members_doc,
        }
        out: dict[str, Any] = {name: b64(doc) if doc is not None else None for name, doc in docs.items()}
        out.update(answers.pull_fields(caller.terminal_id, nonce_bytes, versions, docs, ledger.keys.root()))
        if app or queue >= 0:  # what the terminal says of itself, signed with the pull (older terminals say nothing)
            terminal_reports.record(caller.terminal_id, app, max(queue, 0), ledger.now_ms())
        events.publish(events.TerminalSeen(caller.terminal_id, caller.store_id, caller.time_ms, ledger.now_ms()))
        return out

    def _authenticated_pull(request: Request, path_query: str) -> Any:
        """The pull's caller; an unsigned pull is left to the edge to count per source, never echoed in full."""
        headers = [request.headers.get(name) for name in wire.SIGNED_REQUEST_HEADERS]
        request_note = edge.note(request.scope)
        try:
            caller = authenticate(ledger, "GET", path_query, *headers)
        except RequestRefused as exc:
            if exc.code not in noise.UNSIGNED_PULL_CODES:  # the terminal's signature checked out
                request_note.authenticated = True
                raise
            request_note.reason, request_note.claimed = exc.code, headers[0]
            raise RequestRefused(exc.status, exc.code, noise.unsigned_pull_message(exc.code, headers[0])) from None
        request_note.authenticated = True
        return caller

    add_lookup_routes(app, ledger)
    authorize_api.mount(app, ledger, _ERRORS)
    return app


ENROLL_GUARD_CODES = frozenset({"bad_code", "too_many_attempts"})
"""Enrollment refusals the enrollment guard already counts, audits and alerts per source (``ledger.enroll``)."""


def _note_enroll_refusal(request: Request, code: str) -> None:
    request_note = edge.note(request.scope)
    if code in ENROLL_GUARD_CODES:
        request_note.accounted = True
    elif code == "root_key_mismatch":  # refused after the proof of the code held
        request_note.authenticated = True
    else:
        request_note.reason = code


def _note_batch_refusal(request: Request, exc: IngestRejected) -> None:
    """Tell the edge whether this refusal is the terminal's (recorded by ingest) or an unsigned one to count."""
    request_note = edge.note(request.scope)
    if exc.unsigned:
        request_note.reason, request_note.claimed = exc.reason, exc.claimed
    else:
        request_note.authenticated = True


def _source(request: Request) -> str:
    """The caller's network address (what unsigned refusals are counted by)."""
    return request.client.host if request.client is not None else "unknown"


def _signed_caller(ledger: Ledger, request: Request, nonce: str, method: str = "GET") -> tuple[Any, bytes]:
    """The terminal that signed the request (``ledger.enroll.authenticate``) and the request's nonce."""
    caller = authenticate(ledger, method, _path_query(request),
                          *(request.headers.get(name) for name in wire.SIGNED_REQUEST_HEADERS))
    edge.note(request.scope).authenticated = True  # later refusals are this terminal's, not unsigned noise
    nonce_bytes = answers.parse_nonce(nonce)
    if nonce_bytes is None:
        raise RequestRefused(400, "malformed", f"the {wire.NONCE_PARAM} is 0 to {wire.MAX_NONCE_BYTES} bytes of "
                                               "lowercase hex")
    return caller, nonce_bytes


def add_lookup_routes(app: FastAPI, ledger: Ledger) -> None:
    """``GET /v1/members/lookup`` and ``GET /v1/operations/original`` (``ledger.lookup``)."""

    @app.get(wire.MEMBER_LOOKUP_PATH, responses={**_ERRORS, 404: {"model": ErrorBody}})
    def member_lookup(request: Request, card: str = Query(..., max_length=lookup.MAX_ID_CHARS),
                      nonce: str = Query("", max_length=2 * wire.MAX_NONCE_BYTES)) -> dict[str, Any]:
        caller, nonce_bytes = _signed_caller(ledger, request, nonce)
        return lookup.member_lookup(ledger, caller, card, nonce_bytes,
                                    origin=request.client.host if request.client else "")

    @app.get(wire.ORIGINAL_PATH, responses={**_ERRORS, 404: {"model": ErrorBody}})
    def original(request: Request, uuid: str = Query(..., max_length=lookup.MAX_ID_CHARS),
                 nonce: str = Query("", max_length=2 * wire.MAX_NONCE_BYTES)) -> dict[str, Any]:
        caller, nonce_bytes = _signed_caller(ledger, request, nonce)
        return lookup.original_operation(ledger, caller, uuid, nonce_bytes)
