"""The members' own page, served by the console process beside the admins' pages (issue 18): ``/me``.

A member signs in with their phone (or email) and a one-time code (``member_access``; sent by SMS to a phone, by
mail to an email, through ``member_codes`` off the request path), then sees their balance,
points, tier, coupons, history across stores, preferences and consent. Mobile first; the console's stylesheet,
nothing from outside. Its own cookies (path ``/me``) and CSRF token (double submit: a cookie and the form field),
never the admins' session. Every view of the account is audited as a member read (``member_view`` through
``member_page``).

Consent per channel is the member's to change here (``ledger.member_facts``, source ``member_page``). A member's
``BAL`` text is answered by ``ledger.sms.balance_query``, registered with the one SMS callback
(``ledger.campaigns.web`` → ``ledger.sms.inbound``). The gateway and the mail relay are the campaigns'
(``campaigns.toml`` ``[sms]`` and ``[mail]``).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from cardkit.core.money import Money
from ledger import admin, member_facts, store
from ledger.campaigns import config as campaign_config
from ledger.console import fmt, i18n, member_access, member_codes
from ledger.console.web import Console, bounded_body, cross_site, parse_form
from ledger.errors import LedgerError
from ledger.home import Clock
from ledger.sms import balance_query, inbound
from ledger.sms.callbacks import InboundMessage
from ledger.sms.provider import HttpSmsProvider, SmsProvider

log = logging.getLogger("cardpos.ledger.console.members")

SESSION_COOKIE = "cardpos_member"
ATTEMPT_COOKIE = "cardpos_member_try"
CSRF_COOKIE = "cardpos_member_csrf"
MAX_FORM = 2048


def consent_of(member_id: str) -> dict[str, str]:
    """``yes`` / ``no`` per channel, as ``ledger.member_facts`` holds it now (no statement: no consent)."""
    return {channel: "yes" if member_facts.has_consent(member_id, channel) else "no"
            for channel in member_facts.CHANNELS}


async def _form(request: Request) -> dict[str, list[str]] | None:
    body = await bounded_body(request, MAX_FORM)
    if body is None:
        return None
    try:
        return parse_form(body)
    except (ValueError, LedgerError):
        return None


def _field(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    return values[0][:200] if values else ""


def mount(app: FastAPI, console: Console, clock: Clock) -> None:
    """Add the member page and the SMS callback to the console app."""
    member_access.create_tables()
    balance_query.create_tables()
    settings = campaign_config.load(console.ledger_dir)
    provider: SmsProvider | None = HttpSmsProvider(settings.sms) if settings.sms is not None else None
    courier = member_codes.CodeCourier(provider, settings.mail)
    app.state.member_codes = courier

    def answer_balance(message: InboundMessage, now_ms: int) -> bool:
        outcome = balance_query.handle(message, provider, now_ms=now_ms)
        log.info("SMS inbound", extra={"fields": {"id": message.message_id, "outcome": outcome.value}})
        return outcome is not balance_query.Outcome.NOT_A_QUERY

    inbound.add_inbound_handler(answer_balance)

    def lang_of(request: Request) -> str:
        return i18n.negotiate(request.headers.get("accept-language"), request.cookies.get("cardpos_console_lang"))

    def render(request: Request, template: str, status: int = 200, **values: Any) -> Response:
        lang = lang_of(request)
        csrf = request.cookies.get(CSRF_COOKIE) or ""
        fresh = not (16 <= len(csrf) <= 64)
        if fresh:
            csrf = secrets.token_urlsafe(24)
        html = console.templates.get_template(template).render(t=i18n.Translator(lang), lang=lang, csrf=csrf,
                                                               **values)
        response = HTMLResponse(html, status_code=status)
        if fresh:
            _cookie(request, response, CSRF_COOKIE, csrf)
        return response

    def secure(request: Request) -> bool:
        return request.url.scheme == "https" or console.settings.cookie_secure == "always"

    def _cookie(request: Request, response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(name, value, httponly=True, samesite="strict", secure=secure(request), path="/me",
                            max_age=max_age)

    def origin(request: Request) -> str:
        return request.client.host if request.client else ""

    def checked(request: Request, form: dict[str, list[str]] | None) -> bool:
        if form is None or cross_site(request):
            return False
        expected, given = request.cookies.get(CSRF_COOKIE, ""), _field(form, "csrf")
        return bool(expected) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())

    def account(request: Request, member_id: str) -> Response:
        view = admin.member_view(member_id, history=50, actor=f"member:{member_id}", via="member_page",
                                 origin=origin(request))
        stores = {t.terminal_id: t.store_id for t in store.Terminal.select(store.Terminal.terminal_id,
                                                                              store.Terminal.store_id)}
        history = []
        for entry in reversed(view["history"]):
            payload = entry["payload"]
            amount = payload.get("net", payload.get("amount")) if entry["kind"] != "void" else payload.get("spend")
            history.append({"when": entry["wall_ms"], "kind": entry["kind"],
                            "store": stores.get(entry["terminal_id"], entry["terminal_id"]),
                            "amount": str(Money(int(amount), view["currency"])) if type(amount) is int else "",
                            "points": int(payload.get("pts_earn", 0) or 0) - int(payload.get("pts_redeem", 0) or 0)})
        return render(request, "member_account.html", view=view, history=history, prefs=view["prefs"],
                      consent=consent_of(member_id),
                      when=lambda ms: fmt.when(ms, console.settings.time_zone),
                      money=lambda minor: str(Money(int(minor), view["currency"])))

    async def me(request: Request) -> Response:
        now = clock()
        signed = await run_in_threadpool(member_access.find_session, request.cookies.get(SESSION_COOKIE), now)
        if signed is not None:
            return await run_in_threadpool(account, request, signed.member_id)
        step = "code" if request.query_params.get("step") == "code" and request.cookies.get(ATTEMPT_COOKIE) else "who"
        return render(request, "member_signin.html", step=step, message="", sms=provider is not None)

    async def ask_code(request: Request) -> Response:
        form = await _form(request)
        if not checked(request, form):
            return render(request, "member_signin.html", 403, step="who", message="refused", sms=provider is not None)
        assert form is not None

        def work() -> member_access.CodeRequest:
            return member_access.request_code(_field(form, "who"), origin=origin(request), now_ms=clock())

        try:
            asked = await run_in_threadpool(work)
        except LedgerError:
            return render(request, "member_signin.html", 400, step="who", message="bad_who", sms=provider is not None)
        # handed to the courier, never sent here: a member's answer must not take longer than a stranger's
        courier.hand_over(member_codes.CodeDelivery(asked.channel, asked.send_to, asked.code,
                                                    f"code-{asked.attempt_token[:20]}")
                          if asked.send_to is not None and courier.can_send(asked.channel) else None)
        response = RedirectResponse("/me?step=code", status_code=303)
        _cookie(request, response, ATTEMPT_COOKIE, asked.attempt_token, max_age=member_access.CODE_TTL_MS // 1000)
        return response

    async def sign_in(request: Request) -> Response:
        form = await _form(request)
        if not checked(request, form):
            return render(request, "member_signin.html", 403, step="code", message="refused", sms=provider is not None)
        assert form is not None

        def work() -> member_access.SigninResult:
            return member_access.check_code(request.cookies.get(ATTEMPT_COOKIE), _field(form, "code"),
                                            origin=origin(request), now_ms=clock())

        result = await run_in_threadpool(work)
        if result.member_id is None:
            step = "code" if result.problem == "wrong" else "who"
            return render(request, "member_signin.html", 400 if result.problem == "wrong" else 429, step=step,
                          message=result.problem, sms=provider is not None)
        token = await run_in_threadpool(member_access.start_session, result.member_id, clock())
        response = RedirectResponse("/me", status_code=303)
        _cookie(request, response, SESSION_COOKIE, token)
        response.delete_cookie(ATTEMPT_COOKIE, path="/me")
        return response

    async def sign_out(request: Request) -> Response:
        form = await _form(request)
        if checked(request, form):
            await run_in_threadpool(member_access.end_session, request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/me", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/me")
        return response

    async def change_consent(request: Request) -> Response:
        form = await _form(request)
        signed = await run_in_threadpool(member_access.find_session, request.cookies.get(SESSION_COOKIE), clock())
        channel = _field(form, "channel") if form is not None else ""
        if signed is None or not checked(request, form) or channel not in member_facts.CHANNELS:
            return RedirectResponse("/me", status_code=303)
        granted = _field(form or {}, "granted") == "yes"
        await run_in_threadpool(member_facts.set_consent, signed.member_id, channel, granted, at_ms=clock(),
                                source="member_page", actor=f"member:{signed.member_id}")
        return RedirectResponse("/me", status_code=303)

    app.add_api_route("/me", me, methods=["GET"], include_in_schema=False)
    app.add_api_route("/me/code", ask_code, methods=["POST"], include_in_schema=False)
    app.add_api_route("/me/signin", sign_in, methods=["POST"], include_in_schema=False)
    app.add_api_route("/me/signout", sign_out, methods=["POST"], include_in_schema=False)
    app.add_api_route("/me/consent", change_consent, methods=["POST"], include_in_schema=False)
