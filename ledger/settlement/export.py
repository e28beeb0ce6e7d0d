"""A statement as CSV and as text for people. Pure: statement mapping in, text out. Amounts in CSV are decimal
strings of the statement's currency (exact, from integer minor units); points are whole numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from cardkit.core.money import Money

MONEY_ITEMS = ("sv_taken_in", "bonus_funded", "sv_redeemed", "fees_collected", "points_issued_cost",
               "points_redeemed_value", "coupons_funded", "coupons_honoured", "net")
COLUMNS = ("section", "period", "from_period", "party", "name", "sv_taken_in", "bonus_funded", "sv_redeemed",
           "fees_collected", "points_issued", "points_issued_cost", "points_redeemed", "points_redeemed_value",
           "coupons_funded", "coupons_honoured", "net", "payer", "payee", "amount", "issuer", "opening", "joined",
           "taken_in", "redeemed", "adjustments", "closing")


def to_csv(statement: Mapping[str, Any]) -> str:
    """One row per party (``position``), per adjustment, per transfer and per issuer's liability."""
    currency = statement["currency"]

    def money(minor: int) -> str:
        return Money(minor, currency).to_decimal_string()

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    period = statement["period"]
    for section, rows in (("position", statement["parties"]), ("adjustment", statement["adjustments"])):
        for row in rows:
            line = {"section": section, "period": period, "from_period": row.get("from_period", ""),
                    "party": row["party"], "name": row.get("name", "")}
            for key in ("points_issued", "points_redeemed"):
                line[key] = row[key]
            for key in MONEY_ITEMS:
                line[key] = money(row[key])
            writer.writerow(line)
    for transfer in statement["transfers"]:
        writer.writerow({"section": "transfer", "period": period, "payer": transfer["from"],
                         "payee": transfer["to"], "amount": money(transfer["amount"])})
    for row in statement["liability"]:
        writer.writerow({"section": "liability", "period": period, "issuer": row["issuer"],
                         **{k: money(row[k]) for k in ("opening", "joined", "taken_in", "redeemed", "adjustments",
                                                       "closing")}})
    return out.getvalue()


def to_text(statement: Mapping[str, Any]) -> str:
    currency = statement["currency"]

    def money(minor: int) -> str:
        return Money(minor, currency).to_decimal_string()

    status = statement["status"]
    lines = [f"settlement {statement['period']}  {statement['program']}  ({status}; amounts in {currency}; float "
             f"held by the {statement['float_holder']})"]
    header = (f"{'party':<16} {'taken in':>12} {'bonus':>10} {'redeemed':>12} {'fees':>10} {'pts issued':>12} "
              f"{'pts redeemed':>13} {'coupons -':>10} {'coupons +':>10} {'net':>12}")
    lines.append(header)
    for row in statement["parties"]:
        lines.append(f"{row['party']:<16} {money(row['sv_taken_in']):>12} {money(row['bonus_funded']):>10} "
                     f"{money(row['sv_redeemed']):>12} {money(row['fees_collected']):>10} "
                     f"{money(row['points_issued_cost']):>12} {money(row['points_redeemed_value']):>13} "
                     f"{money(row['coupons_funded']):>10} {money(row['coupons_honoured']):>10} "
                     f"{money(row['net']):>12}")
    if statement["adjustments"]:
        lines.append("adjustments (entries that arrived after their period was closed):")
        for row in statement["adjustments"]:
            lines.append(f"  from {row['from_period']}  {row['party']:<16} net {money(row['net'])}")
    lines.append("transfers:" if statement["transfers"] else "transfers: none")
    for t in statement["transfers"]:
        lines.append(f"  {t['from']} pays {t['to']} {money(t['amount'])}")
    lines.append("stored value outstanding by issuer (opening + joined + taken in - redeemed +- adjustments = "
                 "closing):")
    for row in statement["liability"]:
        lines.append(f"  {row['issuer']:<16} {money(row['opening'])} + {money(row['joined'])} + "
                     f"{money(row['taken_in'])} - {money(row['redeemed'])} + {money(row['adjustments'])} = "
                     f"{money(row['closing'])}")
    signature = statement.get("signature")
    if signature:
        lines.append(f"sha256 {signature['sha256']}  signed by root key {signature['root_key'][:16]}...")
    return "\n".join(lines)


def reserve_text(report: Mapping[str, Any]) -> str:
    currency = report["currency"]
    bp = report["reserve_bp"]
    lines = [f"stored value liability on {report['day']} (reserve {bp // 100}.{bp % 100:02d}% of the previous "
             f"quarter-end balance; amounts in {currency})",
             f"{'issuer':<16} {'outstanding':>14} {'quarter end':>14} {'reserve':>12}"]
    for row in report["issuers"]:
        lines.append(f"{row['issuer']:<16} {Money(row['outstanding'], currency).to_decimal_string():>14} "
                     f"{Money(row['previous_quarter_end'], currency).to_decimal_string():>14} "
                     f"{Money(row['reserve'], currency).to_decimal_string():>12}")
    lines.append(f"{'total':<16} {Money(report['total_outstanding'], currency).to_decimal_string():>14} "
                 f"{'':>14} {Money(report['total_reserve'], currency).to_decimal_string():>12}")
    return "\n".join(lines)
