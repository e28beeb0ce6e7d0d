"""The dashboard: sales, top-ups and points per store (today, this week), a fortnight of daily sales, terminals
online / behind / silent, open alerts by severity; each figure as a chart and as text."""

from __future__ import annotations

from fastapi.responses import Response

from ledger.console import charts, figures, fmt, rollup
from ledger.console.scope import scope_of
from ledger.console.web import Page

STATE_TONES = {"online": "bar-ok", "behind": "bar-warning", "silent": "bar-critical", "never": "bar-muted",
               "pending": "bar-muted", "off": "bar-muted"}
SEVERITY_TONES = {"critical": "bar-critical", "warning": "bar-warning", "info": "bar-info"}


def _money_text(amounts: dict[str, int]) -> str:
    shown = {cur: v for cur, v in amounts.items() if v}
    return " + ".join(fmt.money(v, cur) for cur, v in sorted(shown.items())) if shown else "0"


def _main_amount(amounts: dict[str, int]) -> int:
    return max(amounts.values(), default=0)


def dashboard(page: Page) -> Response:
    rollup.catch_up(limit=50_000, now_ms=page.now_ms)  # the background thread does the rest
    settings = page.console.settings
    t = page.t
    scope = scope_of(page)  # a merchant manager: their stores, terminals and alerts only
    stores = [s for s in figures.store_figures(settings, page.now_ms) if scope.sees_store(s.store_id)]
    days = figures.daily_sales(settings, page.now_ms, stores=None if scope.whole_program else scope.store_ids)
    terminals = [t for t in figures.terminal_states(settings, page.now_ms) if scope.sees_terminal(t.terminal_id)]
    severities = figures.open_alerts_by_severity(None if scope.whole_program else scope.terminal_ids)
    states = {s: 0 for s in STATE_TONES}
    for terminal in terminals:
        states[terminal.state] += 1
    currency = next((cur for _, amounts in days for cur in amounts), None)
    sales_chart = charts.column_chart(
        [charts.Bar(label[3:], amounts.get(currency, 0) if currency else 0,
                    fmt.money(amounts.get(currency, 0), currency) if currency else "0") for label, amounts in days],
        t("dash.chart_daily", days=len(days)))
    store_sales_chart = charts.hbar_chart(
        [charts.Bar(s.name, _main_amount(s.today.sales), _money_text(s.today.sales)) for s in stores],
        t("dash.chart_today_by_store"), empty_text=t("dash.no_sales"))
    week_chart = charts.hbar_chart(
        [charts.Bar(s.name, _main_amount(s.week.sales), _money_text(s.week.sales)) for s in stores],
        t("dash.chart_week_by_store"), empty_text=t("dash.no_sales"))
    terminal_chart = charts.hbar_chart(
        [charts.Bar(t(f"terminal.state.{name}"), count, str(count), STATE_TONES[name])
         for name, count in states.items()], t("dash.chart_terminals"))
    alert_chart = charts.hbar_chart(
        [charts.Bar(t(f"severity.{name}"), count, str(count), SEVERITY_TONES[name])
         for name, count in severities.items()], t("dash.chart_alerts"))
    return page.render("dashboard.html", stores=stores, money_text=_money_text, terminals=terminals,
                       states=states, severities=severities, sales_chart=sales_chart,
                       store_sales_chart=store_sales_chart, week_chart=week_chart, terminal_chart=terminal_chart,
                       alert_chart=alert_chart, days=days, currency=currency)


HANDLERS = {"dashboard": dashboard}
