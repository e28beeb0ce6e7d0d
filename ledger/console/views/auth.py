"""Signing in and out, the language switch, the admin's own account, static files."""

from __future__ import annotations

from fastapi.responses import Response

from ledger.console import accounts, i18n, sessions
from ledger.console.web import LANG_COOKIE, SESSION_COOKIE, SIGNIN_COOKIE, NotFound, Page, Refused


def safe_next(target: str) -> str:
    """A local path to go to after signing in: never another site (``//host``, ``/\\host``, ``https://``)."""
    if not target.startswith("/") or target.startswith(("//", "/\\")) or len(target) > 500:
        return "/dashboard"
    return target


def _signin_page(page: Page, *, error: str | None = None, status: int = 200) -> Response:
    token = page.request.cookies.get(SIGNIN_COOKIE) or sessions.new_token()
    page.set_cookie(SIGNIN_COOKIE, token, path="/signin", max_age=3600)
    return page.render("signin.html", status, signin_csrf=token, next=safe_next(page.query("next") or
                                                                                page.field("next")),
                       error=error, name=page.field("name", limit=64))


def signin_form(page: Page) -> Response:
    if page.session is not None:
        return page.redirect(safe_next(page.query("next")))
    return _signin_page(page)


def signin(page: Page) -> Response:
    try:
        account = accounts.authenticate(page.field("name", limit=64).strip(), page.field("password", limit=1100),
                                        page.field("code", limit=12), origin=page.origin)
    except accounts.SigninRefused:
        return _signin_page(page, error=page.t("signin.refused", tries=accounts.MAX_FAILURES,
                                               minutes=accounts.LOCK_MS // 60_000), status=401)
    token = sessions.start(account.name, page.origin, page.now_ms)
    page.set_cookie(SESSION_COOKIE, token)
    page.set_cookie(SIGNIN_COOKIE, "", path="/signin")
    return page.redirect(safe_next(page.field("next")))


def signout(page: Page) -> Response:
    sessions.end(page.token)
    page.set_cookie(SESSION_COOKIE, "")
    return page.redirect("/signin")


def lang(page: Page) -> Response:
    chosen = page.query("to")
    if chosen in i18n.LANGUAGES:
        page.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86_400)
    return page.redirect(safe_next(page.query("next") or "/"))


def static(page: Page) -> Response:
    found = page.console.static.get(page.param("name"))
    if found is None:
        raise NotFound("no such file")
    content, media_type = found
    return Response(content, media_type=media_type)


def home(page: Page) -> Response:
    return page.redirect("/dashboard")


def account(page: Page) -> Response:
    me = accounts.get_admin(page.actor)
    if me is None:
        raise Refused("your account no longer exists")
    return page.render("account.html", me=me, error=None)


def account_password(page: Page) -> Response:
    new = page.field("new", limit=1100)
    if new != page.field("repeat", limit=1100):
        me = accounts.get_admin(page.actor)
        return page.render("account.html", 400, me=me, error=page.t("account.mismatch"))
    try:
        accounts.change_password(page.actor, page.field("current", limit=1100), new, origin=page.origin)
    except accounts.LedgerError as exc:
        me = accounts.get_admin(page.actor)
        return page.render("account.html", 400, me=me, error=exc.message)
    sessions.end_others(page.actor, page.token)
    return page.redirect("/account", message="password_changed")


HANDLERS = {
    "signin_form": signin_form, "signin": signin, "signout": signout, "lang": lang, "static": static,
    "home": home, "account": account, "account_password": account_password,
}
