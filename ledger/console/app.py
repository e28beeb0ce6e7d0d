"""The console's FastAPI app: every route of ``roles.ROUTES`` bound to its handler behind the guard
(``web.handle``), security headers on every answer, and the dashboard's roll-up kept fresh in the background.

The app refuses to start when a route row has no handler or a handler no route row, so the role table is the
whole truth about what the console serves.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger import alert_store
from ledger.analytics import catchup as analytics_catchup
from ledger.analytics import models as analytics_models
from ledger.console import member_app, models, rollup, views
from ledger.console.roles import ROUTES, Route
from ledger.console.settings import load_console_settings
from ledger.console.web import MAX_FORM_BYTES, MAX_RULES_FORM_BYTES, Console, Handler, admit, bounded_body, serve
from ledger.errors import LedgerError
from ledger.home import Clock, open_ledger, system_clock

log = logging.getLogger("cardpos.ledger.console")

PACKAGE_DIR = Path(__file__).parent
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
ROLLUP_EVERY_S = 5.0


class SecurityHeaders:
    """Adds the console's security headers to every response, errors and static files included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in (b"server",)]
                headers += [
                    (b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
                    (b"cache-control", b"public, max-age=3600" if static else b"no-store"),
                ]
                if https:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _load_static() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for path in sorted((PACKAGE_DIR / "static").iterdir()):
        if path.suffix in STATIC_TYPES:
            files[path.name] = (path.read_bytes(), STATIC_TYPES[path.suffix])
    return files


def _templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(PACKAGE_DIR / "templates")),
                              autoescape=jinja2.select_autoescape(default=True), undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def _endpoint(console: Console, route: Route, handler: Handler,
              clock: Clock) -> Callable[[Request], Awaitable[Response]]:
    limit = MAX_RULES_FORM_BYTES if route.name.startswith("rules_") else MAX_FORM_BYTES

    async def endpoint(request: Request) -> Response:
        admitted = await run_in_threadpool(admit, console, route, request, clock())
        if isinstance(admitted, Response):
            return admitted
        if route.changes_state:
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/x-www-form-urlencoded":
                return Response("a form post is application/x-www-form-urlencoded", status_code=415,
                                media_type="text/plain")
            body = await bounded_body(request, limit)
            if body is None:
                return Response(f"a form is at most {limit} bytes", status_code=413, media_type="text/plain")
            from ledger.console.web import Refused, parse_form

            try:
                admitted.form = parse_form(body)
            except (Refused, ValueError):
                return Response("the form is not well formed", status_code=400, media_type="text/plain")
        return await run_in_threadpool(serve, admitted, handler)

    endpoint.__name__ = route.name
    return endpoint


def create_app(ledger_dir: Path, db_url: str | None = None, *, clock: Clock = system_clock,
               background: bool = True) -> FastAPI:
    """The console over the ledger in ``ledger_dir`` (its recorded database unless ``db_url`` is given)."""
    ledger = open_ledger(ledger_dir, db_url, clock=clock)
    models.create_tables()
    alert_store.create_tables()
    analytics_models.create_tables()
    console = Console(ledger=ledger, ledger_dir=ledger_dir, settings=load_console_settings(ledger_dir),
                      templates=_templates(), static=_load_static())
    handlers = views.handlers()
    missing = sorted({r.name for r in ROUTES} - set(handlers))
    extra = sorted(set(handlers) - {r.name for r in ROUTES})
    if missing or extra:
        raise LedgerError(f"console routes and handlers differ: no handler for {missing}, no route for {extra}")
    stop = threading.Event()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if background:
            threading.Thread(target=_keep_rollup_fresh, args=(stop,), name="console-rollup", daemon=True).start()
        try:
            yield
        finally:
            stop.set()

    app = FastAPI(title="cardpos console", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.console = console
    for route in ROUTES:
        app.add_api_route(route.path, _endpoint(console, route, handlers[route.name], clock),
                          methods=[route.method], name=route.name, include_in_schema=False)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        text = {404: "not found", 405: "method not allowed"}.get(exc.status_code, "refused")
        return Response(text, status_code=exc.status_code, media_type="text/plain")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        log.exception("console request failed")
        return Response("the console failed to handle the request; see its log", status_code=500,
                        media_type="text/plain")

    from ledger.campaigns import web as campaign_web

    campaign_web.mount(app, ledger_dir, clock)  # unsubscribe links and the SMS gateway's callbacks
    member_app.mount(app, console, clock)  # the members' own page (/me) and the SMS gateway's callback
    app.add_middleware(SecurityHeaders)
    return app


def _keep_rollup_fresh(stop: threading.Event) -> None:
    while not stop.wait(ROLLUP_EVERY_S):
        try:
            rollup.catch_up()
            analytics_catchup.catch_up()  # the analytics too: a report page then rarely has entries to fold
        except Exception:
            log.exception("console roll-up failed")

