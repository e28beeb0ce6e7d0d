"""Journal entries for people: a one-line summary of what an entry did (pure), and the entries behind an alert's
evidence (``terminal:seq`` ids) with the store of the terminal that recorded them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import cbor2

from ledger import store
from ledger.console import fmt

_EVIDENCE = re.compile(r"(?P<terminal>[!-~]{1,40}):(?P<seq>\d{1,18})")
MAX_EVIDENCE_SHOWN = 50


def _money(payload: dict[str, Any], key: str) -> str | None:
    value, currency = payload.get(key), payload.get("cur")
    if type(value) is not int or not isinstance(currency, str):
        return None
    try:
        return fmt.money(value, currency)
    except Exception:
        return f"{value} {currency}"


def summary(kind: str, payload: dict[str, Any], t: Callable[..., str]) -> str:
    """What the entry did, in the page's language (amounts with their currency, points as numbers)."""
    parts: list[str] = []
    if kind == "sale":
        parts.append(_money(payload, "net") or "")
        if payload.get("sv"):
            parts.append(t("entry.paid_sv", amount=_money(payload, "sv") or ""))
        if payload.get("pts_earn"):
            parts.append(t("entry.points_earned", points=payload["pts_earn"]))
        if payload.get("pts_redeem"):
            parts.append(t("entry.points_redeemed", points=payload["pts_redeem"]))
    elif kind == "topup":
        parts.append(_money(payload, "amount") or "")
        if payload.get("bonus"):
            parts.append(t("entry.bonus", amount=_money(payload, "bonus") or ""))
    elif kind == "refund":
        parts.append(_money(payload, "amount") or "")
    elif kind == "void":
        parts.append(t("entry.voids", orig=str(payload.get("orig", ""))[:8]))
    elif kind == "redeem":
        parts.append(t("entry.points_redeemed", points=payload.get("pts", 0)))
        if payload.get("item"):
            parts.append(str(payload["item"])[:40])
    elif kind == "card_reject":
        parts.append(str(payload.get("reason", ""))[:40])
    elif kind == "tier_upgrade":
        parts.append(f"{payload.get('from', '')} → {payload.get('to', '')}")
    elif kind == "membership_fee":
        parts.append(_money(payload, "amount") or "")
    return " · ".join(p for p in parts if p)


def evidence_entries(evidence: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The applied entries an alert's evidence names (found), and the evidence ids that are not entries."""
    wanted: list[tuple[str, int]] = []
    other: list[str] = []
    for item in evidence[:MAX_EVIDENCE_SHOWN]:
        match = _EVIDENCE.fullmatch(item)
        if match:
            wanted.append((match.group("terminal"), int(match.group("seq"))))
        else:
            other.append(item)
    found: list[dict[str, Any]] = []
    stores = stores_of({t for t, _ in wanted})
    E = store.AppliedEntry
    for terminal_id, seq in wanted:
        row = E.get_or_none((E.terminal_id == terminal_id) & (E.seq == seq))
        if row is None:
            other.append(f"{terminal_id}:{seq}")
            continue
        payload = cbor2.loads(bytes(row.payload))
        found.append({"terminal_id": terminal_id, "seq": seq, "kind": str(row.kind), "wall_ms": int(row.wall_ms),
                      "member_id": row.member_id, "store_id": stores.get(terminal_id, ""),
                      "payload": payload if isinstance(payload, dict) else {}})
    return found, other


def stores_of(terminal_ids: set[str]) -> dict[str, str]:
    """The store of each of ``terminal_ids`` (terminals do not move between stores)."""
    ids = sorted(terminal_ids)[:1000]
    if not ids:
        return {}
    p = store.db.param
    rows = store.db.execute_sql(
        f'SELECT "terminal_id", "store_id" FROM "{store.Terminal._meta.table_name}" '
        f'WHERE "terminal_id" IN ({", ".join(p for _ in ids)})', ids).fetchall()
    return {str(tid): str(sid) for tid, sid in rows}
