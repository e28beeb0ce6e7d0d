"""The lifetime value report (``cardpos ledger report ltv``, the console's LTV tab): each member's value to date
and projected over a horizon (``projection``), with the retention table it was calibrated on, totalled per
tier, RFM segment, home store and home store's merchant — and member by member on request.

One pass of ``queries.member_figures`` (with the calibration one horizon back), then pure Python."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ledger.analytics import calendar, catchup, projection, queries
from ledger.analytics.cohorts import percent
from ledger.analytics.formatting import Table, head, money, ratio_text
from ledger.analytics.population import CurrencyGroup, Valuation, gather
from ledger.analytics.scope import Period, Scope

GROUPINGS = ("tier", "segment", "store", "merchant")
NO_MERCHANT = "-"


@dataclass
class LifetimeReport:
    as_of_day: int
    scope: Scope
    horizon: projection.Horizon
    groups: dict[str, CurrencyGroup]
    valuations: dict[str, Valuation]
    merchant_of: dict[str, str]
    per_member: bool = False

    @property
    def period(self) -> Period:
        """The year up to the as-of day: the RFM window each member's segment is taken over."""
        return Period.ending(self.as_of_day, queries.YEAR_DAYS)

    def totals(self, currency: str, grouping: str) -> dict[str, tuple[int, int, int]]:
        """Group → (members, to date, future); a home store of no merchant is under ``NO_MERCHANT``."""
        got = self.valuations[currency].totals_by(grouping, self.merchant_of)
        return {(name or NO_MERCHANT) if grouping == "merchant" else name: v for name, v in got.items()}

    def member_rows(self, currency: str) -> Iterator[dict[str, Any]]:
        """Each member's figures (``per_member`` reports only): the model's inputs and its answer. Visits per
        year to two places, rounded half up; yearly spend rounded down (shown only: the future value is
        computed from the exact fraction)."""
        group, v = self.groups[currency], self.valuations[currency]
        c = v.columns
        kept = {k: percent(v.retention[s].rate) for k, s in enumerate(projection.SEGMENTS)}
        labels: dict[int, str] = {}
        year, floor_days, as_of = projection.YEAR_DAYS, projection.MIN_TENURE_DAYS, self.as_of_day
        for i, member_id in enumerate(group.ids):
            k = v.segments[i]
            life, visits, join_day, future = c.life_spends[i], c.life_visits[i], group.join_days[i], v.futures[i]
            tenure = max(floor_days, as_of - join_day + 1)
            per_year = (max(0, visits) * year * 200 + tenure) // (2 * tenure)  # hundredths, half up
            label = labels.get(join_day)
            if label is None:
                label = labels[join_day] = calendar.day_label(join_day)
            yield {"member_id": member_id, "segment": projection.SEGMENTS[k], "tier": c.tiers[c.tier_of[i]],
                   "store": c.homes[c.home_of[i]], "joined": label, "to_date": life, "visits": visits,
                   "spend_per_visit": life // visits if visits > 0 and life > 0 else 0,
                   "visits_per_year": f"{per_year // 100}.{per_year % 100:02d}",
                   "yearly_spend": max(0, life) * year // tenure, "retention_percent": kept[k], "future": future,
                   "projected": life + future}

    def currency_json(self, currency: str) -> dict[str, Any]:
        v = self.valuations[currency]
        members = len(v.futures)
        to_date, future = v.to_date_total, v.future_total
        data: dict[str, Any] = {
            "currency": currency, "members": members, "to_date_total": to_date, "future_total": future,
            "projected_total": to_date + future, "projected_average": (to_date + future) // members if members else 0,
            "future_average": future // members if members else 0,
            "retention": [{"segment": r.segment, "members_then": r.members, "kept": r.kept,
                           "observed_percent": None if r.observed is None else percent(r.observed),
                           "used_percent": percent(r.rate)} for r in v.retention.values()],
            "by": {g: [{"group": name, "members": n, "to_date": life, "future": fut, "projected": life + fut,
                        "projected_average": (life + fut) // n if n else 0}
                       for name, (n, life, fut) in self.totals(currency, g).items()] for g in GROUPINGS}}
        if self.per_member:
            data["per_member"] = list(self.member_rows(currency))
        return data

    def to_json(self) -> dict[str, Any]:
        calibration = self.as_of_day - self.horizon.days
        return {**head("ltv", self.period, self.scope), "as_of": calendar.day_label(self.as_of_day),
                "horizon": {"months": self.horizon.months, "days": self.horizon.days,
                            "discount_bp": self.horizon.discount_bp,
                            "factor": ratio_text(self.horizon.factor, 6)},
                "calibrated_as_of": calendar.day_label(calibration),
                "min_tenure_days": projection.MIN_TENURE_DAYS,
                "currencies": [self.currency_json(cur) for cur in self.valuations]}

    MEMBER_KEYS = ("member_id", "segment", "tier", "store", "joined", "to_date", "visits", "spend_per_visit",
                   "visits_per_year", "yearly_spend", "retention_percent", "future", "projected")

    def rows(self) -> tuple[list[str], Iterator[list[Any]]]:
        """The table with its rows streamed: one per member (``per_member``) or per group, as ``table``."""
        if self.per_member:
            keys = self.MEMBER_KEYS
            return (["currency", *keys], ([cur, *(row[k] for k in keys)] for cur in self.valuations
                                          for row in self.member_rows(cur)))
        return (["currency", "grouping", "group", "members", "to_date", "future", "projected"],
                self._group_rows())

    def _group_rows(self) -> Iterator[list[Any]]:
        for cur in self.valuations:
            for g in GROUPINGS:
                for name, (n, life, fut) in self.totals(cur, g).items():
                    yield [cur, g, name, n, life, fut, life + fut]
            for r in self.valuations[cur].retention.values():
                yield [cur, "retention", r.segment, r.members, r.kept, "", percent(r.rate)]

    def table(self) -> Table:
        header, rows = self.rows()
        return header, list(rows)

    def lines(self) -> list[str]:
        h = self.horizon
        discount = f", discounted at {h.discount_bp // 100}.{h.discount_bp % 100:02d} % a year" if h.discount_bp else ""
        out = [f"lifetime value as of {calendar.day_label(self.as_of_day)}, {self.scope.label}: to date, and "
               f"projected over the next {h.months} months{discount}",
               f"  retention: members in each segment on {calendar.day_label(self.as_of_day - h.days)} who "
               f"bought in the {h.days} days since"]
        if not self.valuations:
            return [*out, "no members"]
        for cur in self.valuations:
            d = self.currency_json(cur)
            out.append(f"[{cur}] {d['members']} members: to date {money(d['to_date_total'], cur)}, next "
                       f"{h.months} months {money(d['future_total'], cur)}, projected "
                       f"{money(d['projected_total'], cur)} ({money(d['projected_average'], cur)} per member)")
            out.append("  retention:  " + ", ".join(
                f"{r['segment']} {r['used_percent']} % ({r['kept']}/{r['members_then']})" for r in d["retention"]))
            for g in GROUPINGS:
                out.append(f"  per {g}:")
                for row in d["by"][g]:
                    out.append(f"    {row['group']:<12} {row['members']:>9} members  to date "
                               f"{money(row['to_date'], cur):>16}  next {money(row['future'], cur):>16}  "
                               f"projected {money(row['projected_average'], cur)} per member")
            if self.per_member:
                for row in d["per_member"]:
                    out.append(f"  {row['member_id']:<20} {row['segment']:<9} to date "
                               f"{money(row['to_date'], cur):>12}  next {money(row['future'], cur):>12}  "
                               f"projected {money(row['projected'], cur)}")
        return out


def lifetime_report(as_of_day: int, scope: Scope, horizon: projection.Horizon = projection.Horizon(), *,
                    per_member: bool = False) -> LifetimeReport:
    from ledger.merchants import admin as merchants_admin

    catchup.catch_up()
    period = Period.ending(as_of_day, queries.YEAR_DAYS)  # its figures are then the year's: summed once
    figures = queries.member_figures(period, scope, calibration_day=as_of_day - horizon.days,
                                     life_visits=per_member)
    groups = gather(figures, period.first_day, period.last_day, keep_ids=per_member, lifetime=True)
    valuations = {cur: g.valuation(as_of_day, horizon) for cur, g in groups.items()}
    merchant_of = {str(s["store_id"]): str(s["merchant_id"]) for s in merchants_admin.list_stores()}
    return LifetimeReport(as_of_day, scope, horizon, groups, valuations, merchant_of, per_member)
