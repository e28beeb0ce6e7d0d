"""Merchants: the list (a merchant manager sees only their own), and one merchant with its stores and their
terminals (state and last sync) and its rule overrides."""

from __future__ import annotations

from fastapi.responses import Response

from ledger.console import figures
from ledger.console.scope import scope_of
from ledger.console.web import NotFound, Page
from ledger.errors import LedgerError
from ledger.merchants import admin as merchants
from ledger.merchants.models import Store


def merchants_page(page: Page) -> Response:
    scope = scope_of(page)
    rows = [m for m in merchants.list_merchants() if scope.sees_merchant(str(m["merchant_id"]))]
    return page.render("merchants.html", merchants=rows, program=merchants.program_view() if scope.whole_program
                       else None)


def merchant_page(page: Page) -> Response:
    merchant_id = page.param("merchant_id")
    scope = scope_of(page)
    if not scope.sees_merchant(merchant_id):
        raise NotFound(f"there is no merchant {merchant_id!r}")  # another merchant's: as if it did not exist
    try:
        view = merchants.merchant_view(merchant_id)
    except LedgerError as exc:
        raise NotFound(exc.message) from exc
    names = {str(s.store_id): str(s.name) for s in Store.select().where(Store.merchant_id == merchant_id)}
    terminals = [t for t in figures.terminal_states(page.console.settings, page.now_ms) if t.store_id in names]
    stores = [{"store_id": sid, "name": names[sid], "terminals": [t for t in terminals if t.store_id == sid]}
              for sid in sorted(names)]
    return page.render("merchant.html", merchant=view, stores=stores)


HANDLERS = {"merchants": merchants_page, "merchant": merchant_page}
