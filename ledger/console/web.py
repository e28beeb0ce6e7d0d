"""The console's request plumbing: one guard in front of every handler, and the ``Page`` a handler works with.

For every request the guard (``admit``, then ``serve``) finds the session from its cookie and refuses a role the
route table (``roles.ROUTES``) does not list (403, or the sign-in page for nobody) before reading any body. For
a state-changing request it then reads a bounded form body (``app``), checks the CSRF token (the session's; the
sign-in form's own cookie before there is a session) and refuses a cross-site ``Origin``/``Sec-Fetch-Site``.
Handlers are plain functions run in the thread pool (peewee is blocking); what they raise as ``LedgerError`` is
shown as one sentence, never a traceback.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from cardkit.errors import CardposError
from ledger.console import fmt, i18n, roles, sessions
from ledger.console.roles import Role, Route
from ledger.console.settings import ConsoleSettings
from ledger.errors import LedgerError, LedgerStorageError
from ledger.home import Ledger

log = logging.getLogger("cardpos.ledger.console")

SESSION_COOKIE = "cardpos_console"
SIGNIN_COOKIE = "cardpos_console_signin"
LANG_COOKIE = "cardpos_console_lang"
MAX_FORM_BYTES = 64 * 1024
MAX_RULES_FORM_BYTES = 512 * 1024  # a rules file travels in the form (twice on the publish step)

NAV = (  # (route, catalog key): the top navigation, filtered by the role table
    ("dashboard", "nav.dashboard"), ("alerts", "nav.alerts"), ("terminals", "nav.terminals"),
    ("members", "nav.members"), ("merchants", "nav.merchants"), ("settlement", "nav.settlement"),
    ("analytics", "nav.analytics"), ("campaigns", "nav.campaigns"), ("rules", "nav.rules"), ("audit", "nav.audit"),
    ("admins", "nav.admins"),
)


class NotFound(LedgerError):
    title = "Not found"


class Refused(LedgerError):
    """403: the request is not allowed (role, CSRF, cross-site)."""

    title = "Refused"


@dataclass
class Console:
    """What every request shares: the open ledger, the settings, the templates and the static files."""

    ledger: Ledger
    ledger_dir: Path
    settings: ConsoleSettings
    templates: jinja2.Environment
    static: dict[str, tuple[bytes, str]]


@dataclass
class Page:
    console: Console
    request: Request
    route: Route
    session: sessions.Session | None
    token: str | None
    lang: str
    form: dict[str, list[str]]
    now_ms: int
    cookies: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    # -- what handlers read ---------------------------------------------------------------------------------
    @property
    def t(self) -> i18n.Translator:
        return i18n.Translator(self.lang)

    @property
    def role(self) -> Role | None:
        return self.session.role if self.session else None

    @property
    def actor(self) -> str:
        assert self.session is not None
        return self.session.admin

    @property
    def origin(self) -> str:
        client = self.request.client
        return client.host if client else ""

    @property
    def secure(self) -> bool:
        return self.request.url.scheme == "https" or self.console.settings.cookie_secure == "always"

    def param(self, name: str) -> str:
        return str(self.request.path_params.get(name, ""))

    def query(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default)[:200]

    def field(self, name: str, default: str = "", *, limit: int = 2000) -> str:
        values = self.form.get(name)
        return values[0][:limit] if values else default

    def fields(self, name: str) -> list[str]:
        return [v[:2000] for v in self.form.get(name, [])[:200]]

    def may(self, route_name: str) -> bool:
        return roles.allowed(self.role, route_name)

    # -- what handlers answer -------------------------------------------------------------------------------
    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        t = self.t
        msg = self.query("msg")
        flash = t(f"msg.{msg}") if msg and f"msg.{msg}" in i18n.catalog(self.lang) else None
        context = {
            "flash": flash,
            "t": t, "lang": self.lang, "session": self.session, "role": self.role, "may": self.may,
            "csrf": self.session.csrf_token if self.session else "", "path": self.request.url.path,
            "nav": [(name, roles.BY_NAME[name].path, t(key)) for name, key in NAV if self.may(name)],
            "route_name": self.route.name, "zone": self.console.settings.time_zone, "fmt": fmt, "now_ms": self.now_ms,
            "when": lambda ms, zone=None, seconds=False: fmt.when(ms, zone or self.console.settings.time_zone,
                                                                  seconds=seconds),
            "money": fmt.money, "markup": Markup, "query": self.request.url.query,
            **values,
        }
        html = self.console.templates.get_template(template).render(context)
        return self._finish(HTMLResponse(html, status_code=status))

    def redirect(self, url: str, *, message: str | None = None) -> Response:
        if message:
            url += ("&" if "?" in url else "?") + "msg=" + quote(message)
        return self._finish(RedirectResponse(url, status_code=303))

    def set_cookie(self, name: str, value: str, **options: Any) -> None:
        self.cookies.append((name, value, options))

    def _finish(self, response: Response) -> Response:
        for name, value, options in self.cookies:
            if value == "":
                response.delete_cookie(name, path=options.get("path", "/"))
            else:
                response.set_cookie(name, value, httponly=True, samesite="strict", secure=self.secure,
                                    path=options.get("path", "/"), max_age=options.get("max_age"))
        return response


Handler = Callable[[Page], Response]


def parse_form(body: bytes) -> dict[str, list[str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("the form is not UTF-8 text") from None
    return parse_qs(text, keep_blank_values=True, max_num_fields=500)


def cross_site(request: Request) -> bool:
    """A state-changing request another site made the browser send (CSRF defence in depth, besides the token)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return origin != expected


def _refused(page: Page, exc: Refused) -> Response:
    session = page.session
    log.warning("console request refused", extra={"fields": {"route": page.route.name, "reason": exc.message,
                                                               "admin": session.admin if session else None}})
    if page.route.name == "alerts_feed":
        return Response('{"error": "refused"}', status_code=403, media_type="application/json")
    return page.render("error.html", 403, title=page.t("error.refused"), message=exc.message)


def admit(console: Console, route: Route, request: Request, now_ms: int) -> Page | Response:
    """The guard's first half, before any body is read: the session and the role (runs in the thread pool).
    Returns the page to serve, or the answer for a caller the route table does not let in."""
    token = request.cookies.get(SESSION_COOKIE)
    session = sessions.find(token, now_ms, touch=route.name != "alerts_feed") if token else None
    lang = i18n.negotiate(request.headers.get("accept-language"), request.cookies.get(LANG_COOKIE))
    page = Page(console=console, request=request, route=route, session=session, token=token, lang=lang, form={},
                now_ms=now_ms)
    if route.public:
        return page
    if session is None:
        if route.changes_state or route.name == "alerts_feed":
            return _refused(page, Refused("sign in first"))
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return page.redirect("/signin?next=" + quote(target, safe=""))
    if session.role not in route.roles:
        return _refused(page, Refused("your role may not use this page"))
    return page


def serve(page: Page, handler: Handler) -> Response:
    """The guard's second half: for a state-changing request the cross-site and CSRF checks, then the handler;
    errors become pages in one sentence (runs in the thread pool)."""
    route, request, session = page.route, page.request, page.session
    try:
        if route.changes_state:
            if cross_site(request):
                raise Refused("a form from another site was refused")
            expected = (request.cookies.get(SIGNIN_COOKIE, "") if route.name == "signin"
                        else session.csrf_token if session else "")
            given = page.field("csrf")
            if not expected or not given or not secrets.compare_digest(given.encode(), expected.encode()):
                raise Refused("the form had no valid CSRF token; reload the page and try again")
        return handler(page)
    except Refused as exc:
        return _refused(page, exc)
    except NotFound as exc:
        return page.render("error.html", 404, title=page.t("error.not_found"), message=exc.message)
    except LedgerStorageError as exc:
        log.warning("console database failure: %s", exc.message)
        return page.render("error.html", 503, title=page.t("error.unavailable"), message=exc.public_message)
    except CardposError as exc:
        return page.render("error.html", 400, title=page.t("error.bad_request"), message=exc.message)
    except Exception as exc:  # a bug: logged in full, answered in one sentence (the connection stays usable)
        log.exception("console request failed", extra={"fields": {"route": route.name, "detail": str(exc)[:300]}})
        return Response("the console failed to handle the request; see its log", status_code=500,
                        media_type="text/plain")


async def bounded_body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it is past ``limit`` bytes (never read further)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
