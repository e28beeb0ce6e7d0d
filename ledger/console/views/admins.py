"""Admin accounts for owners: list, add (a generated password shown once), disable, enable, reset."""

from __future__ import annotations

from fastapi.responses import Response

from ledger.console import accounts, qr
from ledger.console.roles import Role
from ledger.console.web import Handler, Page
from ledger.errors import LedgerError


def _page(page: Page, status: int = 200, **extra: object) -> Response:
    return page.render("admins.html", status, admins=accounts.list_admins(), roles=[r.value for r in Role],
                       **{"created": None, "error": None, **extra})


def admins(page: Page) -> Response:
    return _page(page)


def _shown_once(page: Page, creds: accounts.Credentials) -> dict[str, object]:
    return {"name": creds.name, "password": creds.password, "totp_secret": creds.totp_secret,
            "qr": qr.qr_svg(creds.totp_uri, page.t("admins.totp_qr_title")) if creds.totp_uri else None}


def admin_add(page: Page) -> Response:
    try:
        creds = accounts.add_admin(page.field("name", limit=64).strip(), page.field("role"),
                                   with_totp=page.field("totp") == "1",
                                   merchant_id=page.field("merchant", limit=32).strip() or None, actor=page.actor)
    except LedgerError as exc:
        return _page(page, 400, error=exc.message)
    return _page(page, created=_shown_once(page, creds))


def _status(action: str) -> Handler:
    def handler(page: Page) -> Response:
        name = page.param("name")
        try:
            if action == "disable":
                accounts.disable_admin(name, actor=page.actor)
            elif action == "enable":
                accounts.enable_admin(name, actor=page.actor)
            else:
                creds = accounts.reset_admin(name, with_totp=True if page.field("totp") == "1" else None,
                                             actor=page.actor)
                return _page(page, created=_shown_once(page, creds))
        except LedgerError as exc:
            return _page(page, 400, error=exc.message)
        return page.redirect("/admins", message=f"admin_{action}d")

    return handler


HANDLERS = {"admins": admins, "admin_add": admin_add, "admin_disable": _status("disable"),
            "admin_enable": _status("enable"), "admin_reset": _status("reset")}
