"""Two endpoints the console process serves outside its signed-in pages (no session, no CSRF form):

- ``/unsubscribe/<token>``: GET shows a page with one button; POST (the RFC 8058 one-click, or that button)
  withdraws the consent the signed token names. Only POST acts: link scanners follow GET links.
- ``POST /sms/callback``: the SMS gateway's signed receipts and replies (``ledger.sms.inbound``).

Bodies are bounded before they are read; every refusal is a status and one line of text.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from cardkit.errors import CardposError
from ledger import member_facts
from ledger.campaigns import config as campaign_config
from ledger.campaigns import tables, unsubscribe
from ledger.console.web import bounded_body
from ledger.sms import inbound
from ledger.sms.callbacks import SIGNATURE_HEADER, CallbackError

MAX_UNSUBSCRIBE_BODY = 1024
MAX_CALLBACK_BODY = 64 * 1024

PAGE = """<!doctype html><html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title></head>
<body><main><h1>{title}</h1><p>{text}</p>{form}</main></body></html>"""


def mount(app: FastAPI, ledger_dir: Path, clock: Callable[[], int]) -> None:
    """Add the two endpoints to the console's app (``ledger.console.app.create_app`` calls this)."""
    tables.create_tables()
    key = unsubscribe.load_key(ledger_dir)

    async def unsubscribe_page(token: str) -> Response:
        if unsubscribe.read_token(key, token) is None:
            return PlainTextResponse("this unsubscribe link is not valid", status_code=404)
        form = (f'<form method="post" action="/unsubscribe/{html.escape(token)}">'
                '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
                '<button type="submit">退订 / Unsubscribe</button></form>')
        return HTMLResponse(PAGE.format(title="退订 / Unsubscribe", form=form,
                                        text="按下按钮即退订。/ Press the button to unsubscribe."))

    async def unsubscribe_post(token: str, request: Request) -> Response:
        what = unsubscribe.read_token(key, token)
        if what is None:
            return PlainTextResponse("this unsubscribe link is not valid", status_code=404)
        if await bounded_body(request, MAX_UNSUBSCRIBE_BODY) is None:
            return PlainTextResponse("the request body is too large", status_code=413)

        def act() -> None:
            member_facts.set_consent(what.member_id, what.channel, False, at_ms=clock(),
                                     source=f"unsubscribe:{what.campaign_id}"[:64], actor="member")

        try:
            await run_in_threadpool(act)
        except CardposError:
            return PlainTextResponse("this unsubscribe link is not valid", status_code=404)
        return HTMLResponse(PAGE.format(title="已退订 / Unsubscribed", form="",
                                        text="您不会再收到此类消息。/ You will get no more of these messages."))

    async def sms_callback(request: Request) -> Response:
        body = await bounded_body(request, MAX_CALLBACK_BODY)
        if body is None:
            return PlainTextResponse("the callback body is too large", status_code=413)
        settings = await run_in_threadpool(campaign_config.load, ledger_dir)
        if settings.sms is None or not settings.sms.callback_secret:
            return PlainTextResponse("no SMS gateway is configured", status_code=404)
        sms = settings.sms
        try:
            done = await run_in_threadpool(inbound.handle, sms, body, request.headers.get(SIGNATURE_HEADER), clock())
        except CallbackError as exc:
            return PlainTextResponse(exc.message, status_code=400)
        except inbound.ReceiptTooEarly as exc:
            return PlainTextResponse(exc.message, status_code=503)
        return PlainTextResponse(done)

    app.add_api_route("/unsubscribe/{token}", unsubscribe_page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/unsubscribe/{token}", unsubscribe_post, methods=["POST"], include_in_schema=False)
    app.add_api_route("/sms/callback", sms_callback, methods=["POST"], include_in_schema=False)
