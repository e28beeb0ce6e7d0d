"""The analytics page (issue 18): members, segments, cohorts, sales and lifetime value (to date and projected)
over a chosen period and store, as charts and tables. Aggregates only, no personal data, so marketing and
auditors see it whole; nothing here is per member, so the page writes no member-read audit entry."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response

from ledger.analytics import calendar, lifetime, models, projection, reports, rfm
from ledger.analytics.cohorts import percent
from ledger.analytics.scope import Scope, period_from
from ledger.console import charts, fmt
from ledger.console.web import Page
from ledger.errors import LedgerError

SEGMENT_TONES = {"new": "bar-info", "active": "bar-ok", "champions": "bar", "at_risk": "bar-warning",
                 "lapsed": "bar-muted"}
VIEWS = ("members", "segments", "cohorts", "sales", "ltv")


def analytics(page: Page) -> Response:
    t = page.t
    view = page.query("view", "members")
    view = view if view in VIEWS else "members"
    chosen = {"view": view, "from": page.query("from"), "to": page.query("to"), "store": page.query("store"),
              "merchant": page.query("merchant"),
              "horizon": page.query("horizon", str(projection.DEFAULT_MONTHS)), "discount": page.query("discount", "0")}
    values: dict[str, Any] = {"chosen": chosen, "views": VIEWS, "error": None, "report": None, "data": None}
    try:
        models.create_tables()
        scope = Scope.of(store_id=chosen["store"].strip() or None, merchant=chosen["merchant"].strip() or None)
        period = period_from(chosen["from"] or None, chosen["to"] or None, today=calendar.day_of_ms(page.now_ms),
                             default_days=reports.DEFAULT_DAYS[view])
        horizon = projection.Horizon(_whole(chosen["horizon"], "the horizon (months)"),
                                     _whole(chosen["discount"], "the discount rate (basis points)"))
        report = reports.build(view, period, scope, horizon)
    except LedgerError as exc:
        values["error"] = exc.message
        return page.render("analytics.html", 400, **values)
    values.update(report=report, data=report.to_json(), period_label=period.label())
    values.update(_charts(view, report, t))
    return page.render("analytics.html", **values)


def _whole(text: str, what: str) -> int:
    try:
        return int(text.strip() or "0")
    except ValueError:
        raise LedgerError(f"{what} is a whole number, not {text!r}") from None


def _charts(view: str, report: reports.AnyReport, t: Any) -> dict[str, Any]:
    if isinstance(report, lifetime.LifetimeReport):
        segment_charts = []
        for cur in report.valuations:
            rows = report.totals(cur, "segment")
            segment_charts.append(charts.hbar_chart(
                [charts.Bar(t(f"analytics.segment.{name}"), max(0, life + future),
                            fmt.money(life + future, cur), SEGMENT_TONES[name])
                 for name, (_, life, future) in rows.items()], t("analytics.chart_ltv", currency=cur)))
        return {"ltv_charts": segment_charts, "groupings": lifetime.GROUPINGS}
    if isinstance(report, reports.MembersReport):
        tier_charts, band_charts = [], []
        for g in report.groups.values():
            tier_charts.append(charts.hbar_chart(
                [charts.Bar(t(f"tier.{name}"), max(0, tf.spend), fmt.money(tf.spend, g.currency))
                 for name, tf in sorted(g.tiers.items())], t("analytics.chart_tiers", currency=g.currency)))
            data = report.currency_json(g)
            band_charts.append(charts.hbar_chart(
                [charts.Bar(b["visits"], b["buyers"], str(b["buyers"])) for b in data["visit_frequency"]],
                t("analytics.chart_frequency")))
        return {"tier_charts": tier_charts, "band_charts": band_charts}
    if isinstance(report, reports.SegmentsReport):
        return {"segment_chart": charts.hbar_chart(
            [charts.Bar(t(f"analytics.segment.{name}"), report.counts[name], str(report.counts[name]),
                        SEGMENT_TONES[name]) for name in rfm.SEGMENTS], t("analytics.chart_segments"))}
    if isinstance(report, reports.SalesReport):
        days = report.daily()
        currency = next((cur for _, amounts in days for cur in amounts), None)
        shown = days[-31:]
        return {"sales_chart": charts.column_chart(
            [charts.Bar(calendar.day_label(day)[8:], amounts.get(currency, 0) if currency else 0,
                        fmt.money(amounts.get(currency, 0), currency) if currency else "0")
             for day, amounts in shown], t("analytics.chart_sales", days=len(shown)))}
    assert isinstance(report, reports.CohortsReport)
    return {"percent": percent}


HANDLERS = {"analytics": analytics}
