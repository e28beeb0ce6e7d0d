"""Terminals: online / behind / silent with their last sync and refused or quarantined entries; add one (its
one-time enrollment code shown once, with a QR code), disable, enable, revoke."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi.responses import Response

from ledger import admin
from ledger.console import figures, qr
from ledger.console.scope import scope_of
from ledger.console.web import Handler, Page


def enrollment_payload(code: str, ledger_url: str) -> str:
    """What the QR code holds: the code, and where to enroll when the console knows the terminals' API address."""
    if not ledger_url:
        return code
    return "cardpos://enroll?" + urlencode({"ledger": ledger_url, "code": code})


def _page(page: Page, status: int = 200, **extra: object) -> Response:
    scope = scope_of(page)
    rows = [t for t in figures.terminal_states(page.console.settings, page.now_ms)
            if scope.sees_terminal(t.terminal_id)]
    return page.render("terminals.html", status, terminals=rows,
                       **{"added": None, "error": None, **extra})


def terminals(page: Page) -> Response:
    return _page(page)


def terminal_add(page: Page) -> Response:
    name = page.field("name", limit=80).strip()
    store_id = page.field("store", limit=64).strip() or "store-1"
    try:
        terminal_id, code = admin.add_terminal(name, store_id, actor=page.actor)
    except admin.LedgerError as exc:
        return _page(page, 400, error=exc.message)
    ledger_url = page.console.settings.ledger_url
    added = {"terminal_id": terminal_id, "name": name, "store_id": store_id, "code": code, "ledger_url": ledger_url,
             "qr": qr.qr_svg(enrollment_payload(code, ledger_url), page.t("terminals.qr_title"))}
    return _page(page, added=added)  # shown once: the ledger keeps only the code's hash


def _status(action: str) -> Handler:
    def handler(page: Page) -> Response:
        terminal_id = page.param("terminal_id")
        {"disable": admin.disable_terminal, "enable": admin.enable_terminal,
         "revoke": admin.revoke_terminal}[action](terminal_id, page.actor)
        return page.redirect("/terminals", message=f"terminal_{action}d")

    return handler


HANDLERS = {"terminals": terminals, "terminal_add": terminal_add, "terminal_disable": _status("disable"),
            "terminal_enable": _status("enable"), "terminal_revoke": _status("revoke")}
