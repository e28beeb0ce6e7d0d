"""Settlement: the periods (closed and signed, or a draft as it stands), one period's statement with the
who-owes-whom table, a printable page, the CSV and JSON exports, and the stored-value liability report.

A merchant manager sees the same pages cut down to their own merchant (``scoped_statement``): their position and
adjustments, the transfers they pay or receive, the stored value they issued. A cut-down statement is not the
signed document, so its JSON export carries no signature and says whose lines it holds.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response

from ledger.console.scope import Scope, scope_of
from ledger.console.web import NotFound, Page
from ledger.errors import LedgerError
from ledger.settlement import books, export, periods
from ledger.settlement.records import ClosedPeriod, FundingTotal

MAX_PERIODS = 120


def scoped_statement(document: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """The statement as ``scope`` may see it (unchanged for the whole program). Pure."""
    if scope.whole_program:
        return document
    mine = scope.sees_party
    return {**{k: v for k, v in document.items() if k != "signature"},
            "scope": scope.merchant_id,
            "parties": [r for r in document["parties"] if mine(r["party"])],
            "adjustments": [r for r in document["adjustments"] if mine(r["party"])],
            "positions": [r for r in document["positions"] if mine(r["party"])],
            "transfers": [t for t in document["transfers"] if mine(t["from"]) or mine(t["to"])],
            "liability": [r for r in document["liability"] if mine(r["issuer"])]}


def period_rows() -> list[dict[str, Any]]:
    """Every period with funding lines or a closed statement, newest first."""
    closed = {str(r.period): r for r in ClosedPeriod.select()}
    seen: Any = FundingTotal.select(FundingTotal.period).distinct().tuples()
    names = sorted({*closed, *(str(p) for (p,) in seen)}, reverse=True)[:MAX_PERIODS]
    return [{"period": p, "status": "closed" if p in closed else "draft",
             "closed_ms": int(closed[p].closed_ms) if p in closed else None,
             "sha256": str(closed[p].sha256) if p in closed else None} for p in names]


def _period(page: Page) -> str:
    text = page.param("period")
    try:
        return periods.check_period(text)
    except LedgerError as exc:
        raise NotFound(exc.message) from exc


def _statement(page: Page) -> tuple[dict[str, Any], Scope]:
    scope = scope_of(page)
    return scoped_statement(books.draft(_period(page)), scope), scope


def settlement(page: Page) -> Response:
    scope = scope_of(page)
    rows = period_rows()
    if not scope.whole_program:
        f = FundingTotal
        involved: Any = (f.select(f.period).where((f.merchant_id == scope.merchant_id)
                                                  | (f.issuer_id == scope.merchant_id)).distinct().tuples())
        mine = {str(p) for (p,) in involved}
        rows = [r for r in rows if r["period"] in mine]
    current = periods.period_of(page.now_ms)
    return page.render("settlement.html", periods=rows, current=current)


def settlement_statement(page: Page) -> Response:
    document, scope = _statement(page)
    return page.render("statement.html", s=document, scoped=not scope.whole_program, printable=False)


def settlement_print(page: Page) -> Response:
    document, scope = _statement(page)
    return page.render("statement.html", s=document, scoped=not scope.whole_program, printable=True)


def _download(body: str, media: str, name: str) -> Response:
    return Response(body, media_type=media, headers={"content-disposition": f'attachment; filename="{name}"'})


def settlement_csv(page: Page) -> Response:
    document, scope = _statement(page)
    suffix = "" if scope.whole_program else f"-{scope.merchant_id}"
    return _download(export.to_csv(document), "text/csv; charset=utf-8",
                     f"settlement-{document['period']}{suffix}.csv")


def settlement_json(page: Page) -> Response:
    document, scope = _statement(page)
    suffix = "" if scope.whole_program else f"-{scope.merchant_id}"
    return _download(json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1), "application/json",
                     f"settlement-{document['period']}{suffix}.json")


def settlement_liability(page: Page) -> Response:
    scope = scope_of(page)
    day = page.query("day").strip() or None
    try:
        report = books.reserve_report(day)
    except LedgerError as exc:
        return page.render("liability.html", 400, report=None, error=exc.message, day=day or "")
    if not scope.whole_program:
        issuers = [r for r in report["issuers"] if scope.sees_party(r["issuer"])]
        report = {**report, "issuers": issuers, "total_outstanding": sum(r["outstanding"] for r in issuers),
                  "total_reserve": sum(r["reserve"] for r in issuers)}
    return page.render("liability.html", report=report, error=None, day=report["day"])


HANDLERS = {"settlement": settlement, "settlement_statement": settlement_statement,
            "settlement_print": settlement_print, "settlement_csv": settlement_csv,
            "settlement_json": settlement_json, "settlement_liability": settlement_liability}
