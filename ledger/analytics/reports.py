"""The four reports — members, sales, segments, cohorts — as plain data: ``to_json`` for machines, ``table``
(a header and rows, for CSV and the console) and ``lines`` for people. Each first folds in the entries applied
since the last report (``catchup``), then reads the SQL aggregates (``queries``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ledger.analytics import calendar, catchup, projection, queries, rfm
from ledger.analytics.cohorts import Cohort, cohorts, percent
from ledger.analytics.formatting import Table, head, money, ratio_text, share
from ledger.analytics.lifetime import LifetimeReport, lifetime_report
from ledger.analytics.population import VISIT_BANDS, CurrencyGroup, Valuation, band_label, gather
from ledger.analytics.scope import Period, Scope

KINDS = ("members", "sales", "segments", "cohorts", "ltv")
DEFAULT_DAYS = {"members": 30, "sales": 30, "segments": rfm.WINDOW_DAYS, "cohorts": 365, "ltv": 1}
# -- members -----------------------------------------------------------------------------------------------------
@dataclass
class MembersReport:
    period: Period
    scope: Scope
    groups: dict[str, CurrencyGroup]
    horizon: projection.Horizon = field(default_factory=projection.Horizon)
    valuations: dict[str, Valuation] | None = None

    def valuation(self, g: CurrencyGroup) -> Valuation:
        if self.valuations is None:
            self.valuations = {}
        if g.currency not in self.valuations:
            self.valuations[g.currency] = g.valuation(self.period.last_day, self.horizon)
        return self.valuations[g.currency]

    def currency_json(self, g: CurrencyGroup) -> dict[str, Any]:
        top = g.top_quarter()
        churn = g.churn
        future = self.valuation(g).future_total
        projected = g.life_spend + future
        return {
            "currency": g.currency, "members": g.members, "new_members": g.new_members, "buyers": g.buyers,
            "visits": g.visits, "net_sales": g.spend,
            "visits_per_buyer": ratio_text(Fraction(g.visits, g.buyers)) if g.buyers else "0.00",
            "sales_per_visit": g.spend // g.visits if g.visits > 0 else 0,
            "top_quarter": {"buyers": top.buyers, "top_members": top.top_members, "top_sales": top.top_spend,
                            "buyers_sales": top.total_spend, "share_percent": top.percent()},
            "lifetime_value": {
                "to_date_total": g.life_spend, "to_date_average": g.life_spend // g.members if g.members else 0,
                "horizon_months": self.horizon.months, "discount_bp": self.horizon.discount_bp,
                "future_total": future, "projected_total": projected,
                "projected_average": projected // g.members if g.members else 0,
                "annual_churn_percent": percent(churn.rate)},
            "tiers": [{"tier": name, "members": t.members, "buyers": t.buyers, "visits": t.visits,
                       "net_sales": t.spend, "sales_per_member": t.spend // t.members if t.members else 0}
                      for name, t in sorted(g.tiers.items())],
            "visit_frequency": [{"visits": band_label(low, high), "buyers": n}
                                for (low, high), n in zip(VISIT_BANDS, g.visit_bands, strict=True)],
        }

    def to_json(self) -> dict[str, Any]:
        return {**head("members", self.period, self.scope),
                "currencies": [self.currency_json(g) for g in self.groups.values()]}

    def table(self) -> Table:
        rows: list[list[Any]] = []
        for g in self.groups.values():
            data = self.currency_json(g)
            for key in ("members", "new_members", "buyers", "visits", "net_sales", "visits_per_buyer",
                        "sales_per_visit"):
                rows.append([g.currency, key, "", data[key]])
            for key, value in data["top_quarter"].items():
                rows.append([g.currency, f"top_quarter_{key}", "", value])
            for key, value in data["lifetime_value"].items():
                rows.append([g.currency, f"lifetime_value_{key}", "", value])
            for tier in data["tiers"]:
                for key in ("members", "buyers", "visits", "net_sales", "sales_per_member"):
                    rows.append([g.currency, f"tier_{key}", tier["tier"], tier[key]])
            for band in data["visit_frequency"]:
                rows.append([g.currency, "buyers_with_visits", band["visits"], band["buyers"]])
        return ["currency", "figure", "group", "value"], rows

    def lines(self) -> list[str]:
        out = [f"members report, {self.scope.label}, {self.period.label()}"]
        if not self.groups:
            return [*out, "no members"]
        for g in self.groups.values():
            d = self.currency_json(g)
            cur = g.currency
            top, life = d["top_quarter"], d["lifetime_value"]
            out += [
                f"[{cur}] members {g.members}, new {g.new_members}, bought {g.buyers} "
                f"({share(g.buyers, g.members)} %)",
                f"  net sales {money(g.spend, cur)} in {g.visits} visits; {d['visits_per_buyer']} visits per buyer, "
                f"{money(d['sales_per_visit'], cur)} per visit",
                f"  top quarter ({top['top_members']} of {top['buyers']} buyers) made {top['share_percent']} % of "
                f"their sales ({money(top['top_sales'], cur)} of {money(top['buyers_sales'], cur)})",
                f"  lifetime value: to date {money(life['to_date_average'], cur)} per member, projected "
                f"{money(life['projected_average'], cur)} with the next {life['horizon_months']} months "
                f"(annual churn {life['annual_churn_percent']} %; `ledger report ltv` for the model)",
                "  per tier:"]
            for t in d["tiers"]:
                out.append(f"    {t['tier']:<10} {t['members']:>8} members {t['buyers']:>8} bought "
                           f"{money(t['net_sales'], cur):>16}  {money(t['sales_per_member'], cur)} per member")
            out.append("  visits per buyer: " + ", ".join(f"{b['visits']}: {b['buyers']}"
                                                          for b in d["visit_frequency"]))
        return out


def members_report(period: Period, scope: Scope, horizon: projection.Horizon = projection.Horizon()
                   ) -> MembersReport:
    catchup.catch_up()
    figures = queries.member_figures(period, scope, calibration_day=period.last_day - horizon.days)
    return MembersReport(period, scope, gather(figures, period.first_day, period.last_day, lifetime=True),
                         horizon)


# -- segments ----------------------------------------------------------------------------------------------------
@dataclass
class SegmentsReport:
    period: Period
    scope: Scope
    counts: dict[str, int]
    spend: dict[tuple[str, str], int]  # (currency, segment) → net sales in the window
    cuts: dict[str, rfm.Cuts]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {**head("segments", self.period, self.scope), "as_of": calendar.day_label(self.period.last_day),
                "members": self.total,
                "segments": [{"segment": name, "members": self.counts[name],
                              "share_percent": share(self.counts[name], self.total),
                              "net_sales": {cur: amount for (cur, seg), amount in sorted(self.spend.items())
                                            if seg == name}} for name in rfm.SEGMENTS],
                "cut_points": {cur: {"recency_last_visit": [calendar.day_label(d) for d in c.recency],
                                     "frequency_visits": list(c.frequency), "monetary_net_sales": list(c.monetary)}
                               for cur, c in self.cuts.items()},
                "thresholds": {"new_days": rfm.NEW_DAYS, "active_days": rfm.ACTIVE_DAYS,
                               "champion_score": rfm.CHAMPION_SCORE}}

    def table(self) -> Table:
        return (["segment", "members", "share_percent"],
                [[name, self.counts[name], share(self.counts[name], self.total)] for name in rfm.SEGMENTS])

    def lines(self) -> list[str]:
        out = [f"segments as of {calendar.day_label(self.period.last_day)}, {self.scope.label}, "
               f"RFM window {self.period.label()}"]
        for name in rfm.SEGMENTS:
            sales = ", ".join(money(a, cur) for (cur, seg), a in sorted(self.spend.items()) if seg == name and a)
            out.append(f"  {name:<10} {self.counts[name]:>9}  {share(self.counts[name], self.total):>5} %"
                       + (f"  net sales {sales}" if sales else ""))
        for cur, c in self.cuts.items():
            out.append(f"  [{cur}] cut points: visits {list(c.frequency)}, net sales "
                       f"{[money(v, cur) for v in c.monetary]}")
        return out


def segments_report(period: Period, scope: Scope) -> SegmentsReport:
    catchup.catch_up()
    groups = gather(queries.member_figures(period, scope), period.first_day, period.last_day)
    counts = dict.fromkeys(rfm.SEGMENTS, 0)
    spend: dict[tuple[str, str], int] = defaultdict(int)
    for group in groups.values():
        for i, name in enumerate(group.segments(period.last_day)):
            counts[name] += 1
            spend[(group.currency, name)] += group.period_spends[i]
    return SegmentsReport(period, scope, counts, dict(spend), {cur: g.cuts() for cur, g in groups.items()})


def members_in_segment(segment: str, period: Period, scope: Scope) -> Iterator[str]:
    catchup.catch_up()
    groups = gather(queries.member_figures(period, scope), period.first_day, period.last_day, keep_ids=True)
    for group in groups.values():
        for member_id, name in zip(group.ids, group.segments(period.last_day), strict=True):
            if name == segment:
                yield member_id


# -- sales -------------------------------------------------------------------------------------------------------
@dataclass
class SalesReport:
    period: Period
    scope: Scope
    rows: list[queries.SalesRow]

    def totals(self) -> dict[tuple[str, str], list[int]]:
        """(store, currency) → [net sales, visits, member sales, member visits]."""
        out: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for r in self.rows:
            t = out[(r.store_id, r.currency)]
            t[0] += r.spend
            t[1] += r.visits
            t[2] += r.member_spend
            t[3] += r.member_visits
        return dict(sorted(out.items()))

    def to_json(self) -> dict[str, Any]:
        return {**head("sales", self.period, self.scope),
                "stores": [{"store": s, "currency": c, "net_sales": t[0], "visits": t[1], "member_sales": t[2],
                            "member_visits": t[3], "member_share_percent": share(t[2], t[0])}
                           for (s, c), t in self.totals().items()],
                "days": [{"day": calendar.day_label(r.day), "store": r.store_id, "currency": r.currency,
                          "net_sales": r.spend, "visits": r.visits, "member_sales": r.member_spend,
                          "member_visits": r.member_visits, "members": r.members} for r in self.rows]}

    def table(self) -> Table:
        return (["day", "store", "currency", "net_sales", "visits", "member_sales", "member_visits", "members"],
                [[calendar.day_label(r.day), r.store_id, r.currency, r.spend, r.visits, r.member_spend,
                  r.member_visits, r.members] for r in self.rows])

    def lines(self) -> list[str]:
        out = [f"sales report, {self.scope.label}, {self.period.label()}"]
        totals = self.totals()
        if not totals:
            return [*out, "no sales"]
        for (s, c), t in totals.items():
            out.append(f"  {s:<16} net sales {money(t[0], c):>16} in {t[1]:>7} visits; members "
                       f"{money(t[2], c)} ({share(t[2], t[0])} %)")
        return out

    def daily(self) -> list[tuple[int, dict[str, int]]]:
        """Net sales per day and currency, every day of the period (for charts)."""
        by_day: dict[int, dict[str, int]] = {d: {} for d in range(self.period.first_day, self.period.last_day + 1)}
        for r in self.rows:
            by_day[r.day][r.currency] = by_day[r.day].get(r.currency, 0) + r.spend
        return sorted(by_day.items())


def sales_report(period: Period, scope: Scope) -> SalesReport:
    catchup.catch_up()
    return SalesReport(period, scope, queries.sales_by_day(period, scope))


# -- cohorts -----------------------------------------------------------------------------------------------------
@dataclass
class CohortsReport:
    period: Period
    scope: Scope
    cohorts: list[Cohort]
    last_month: int

    @property
    def width(self) -> int:
        return max((self.last_month - c.month + 1 for c in self.cohorts), default=0)

    def to_json(self) -> dict[str, Any]:
        return {**head("cohorts", self.period, self.scope),
                "cohorts": [{"cohort": c.label, "members": c.size,
                             "active": [c.active.get(k, 0) for k in range(self.last_month - c.month + 1)],
                             "retention_percent": [percent(c.retention(k))
                                                   for k in range(self.last_month - c.month + 1)]}
                            for c in self.cohorts]}

    def table(self) -> Table:
        header = ["cohort", "members", *[f"month_{k}" for k in range(self.width)]]
        return header, [[c.label, c.size, *[percent(c.retention(k)) for k in range(self.last_month - c.month + 1)]]
                        for c in self.cohorts]

    def lines(self) -> list[str]:
        out = [f"cohort retention (% of each join month's members who bought in month k), {self.scope.label}, "
               f"{self.period.label()}"]
        if not self.cohorts:
            return [*out, "no members joined in the period"]
        out.append("  cohort    members  " + " ".join(f"{'m' + str(k):>6}" for k in range(self.width)))
        for c in self.cohorts:
            out.append(f"  {c.label}  {c.size:>8}  " + " ".join(
                f"{percent(c.retention(k)):>6}" for k in range(self.last_month - c.month + 1)))
        return out


def cohorts_report(period: Period, scope: Scope) -> CohortsReport:
    """Cohorts of the whole months the period touches."""
    catchup.catch_up()
    first_month, last_month = calendar.month_of_day(period.first_day), calendar.month_of_day(period.last_day)
    months = Period(calendar.first_day_of_month(first_month), calendar.first_day_of_month(last_month + 1) - 1)
    sizes = queries.cohort_sizes(months, scope)
    return CohortsReport(months, scope, cohorts(sizes, queries.cohort_activity(months, scope, last_month),
                                                last_month), last_month)


AnyReport = MembersReport | SalesReport | SegmentsReport | CohortsReport | LifetimeReport


def build(kind: str, period: Period, scope: Scope, horizon: projection.Horizon = projection.Horizon()
          ) -> AnyReport:
    if kind == "ltv":
        return lifetime_report(period.last_day, scope, horizon)
    if kind == "members":
        return members_report(period, scope, horizon)
    if kind == "sales":
        return sales_report(period, scope)
    if kind == "segments":
        return segments_report(period, scope)
    return cohorts_report(period, scope)
