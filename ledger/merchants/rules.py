"""Which rules a store's terminals get: the program's, with the overrides of the merchant the store belongs to,
under a version of their own (docs/merchants.md, "Rules at the counter").

A terminal keeps a rules document only while versions move forward (``terminal/sync/versions.py``), so the
version a store is sent must grow whenever what it is sent changes, and only then for that store. It is

    program rules version + max(stamp of the store's merchant, stamp of the store's assignment)

where a stamp is a value of one ledger-wide counter (``merchant_rules``), taken when a merchant's overrides
change (``merchant:<id>``) or a store is given to a merchant (``store:<id>``). Loading program rules raises
every store's version by one; changing a merchant's overrides raises only its stores' versions; moving a store
to another merchant stamps the store with a value above every earlier stamp, so its version still grows.
A store that belongs to no merchant gets the program's rules under the program's version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import peewee

from ledger import store
from ledger.merchants.models import CouponFunder, Merchant, RulesStamp, Store
from ledger.merchants.overrides import MerchantOverrides, overrides_from_mapping

COUNTER = "merchant_rules"


def _scope(kind: str, key: str) -> str:
    return f"{kind}:{key}"


def stamp_merchant(merchant_id: str, now_ms: int) -> int:
    """Record that ``merchant_id``'s rules changed (call inside the change's write transaction)."""
    return _stamp(_scope("merchant", merchant_id), now_ms)


def stamp_store(store_id: str, now_ms: int) -> int:
    """Record that ``store_id`` was given to a merchant (call inside the assignment's write transaction)."""
    return _stamp(_scope("store", store_id), now_ms)


def _stamp(scope: str, now_ms: int) -> int:
    store.VersionCounter.insert(name=COUNTER, value=0).on_conflict_ignore().execute()
    value = store.bump(COUNTER)
    RulesStamp.insert(scope=scope, stamp=value, changed_ms=now_ms).on_conflict(
        conflict_target=[RulesStamp.scope],
        update={RulesStamp.stamp: value, RulesStamp.changed_ms: now_ms}).execute()
    return value


@dataclass(frozen=True, slots=True)
class StoreRules:
    """What a store's rules are made of besides the program's: its merchant (None: none), that merchant's
    overrides, the stamp added to the program's version, and when those last changed (ms; 0: never)."""

    merchant_id: str | None
    overrides: MerchantOverrides
    stamp: int
    changed_ms: int


NO_MERCHANT = StoreRules(merchant_id=None, overrides=MerchantOverrides(), stamp=0, changed_ms=0)


def store_rules(store_id: str) -> StoreRules:
    """The merchant part of ``store_id``'s rules (two small reads: the store with its merchant, and the stamps;
    every pull asks)."""
    assigned: Any = (Store.select(Store.merchant_id, Merchant.overrides)
                     .join(Merchant, peewee.JOIN.LEFT_OUTER, on=(Merchant.merchant_id == Store.merchant_id))
                     .where(Store.store_id == store_id).tuples().first())
    if assigned is None:
        return NO_MERCHANT
    merchant_id, raw = str(assigned[0]), assigned[1]
    overrides = overrides_from_mapping(_mapping(raw)) if raw else MerchantOverrides()
    scopes = (_scope("merchant", merchant_id), _scope("store", store_id))
    stamps: Any = (RulesStamp.select(RulesStamp.stamp, RulesStamp.changed_ms)
                   .where(RulesStamp.scope.in_(scopes)).tuples())
    found = [(int(stamp), int(changed)) for stamp, changed in stamps]
    return StoreRules(merchant_id=merchant_id, overrides=overrides,
                      stamp=max((f[0] for f in found), default=0), changed_ms=max((f[1] for f in found), default=0))


def _mapping(raw: Any) -> dict[str, Any]:
    """The overrides column as read by a ``tuples()`` query (JSON text on SQLite, already decoded elsewhere)."""
    return dict(json.loads(raw) if isinstance(raw, (str, bytes)) else raw)


def merchant_funders(coupon_ids: list[str] | None) -> dict[str, str]:
    """The merchant funding each of ``coupon_ids`` (None: every coupon) that a merchant funds; the others are
    the program's."""
    if coupon_ids is None:
        rows: Any = CouponFunder.select(CouponFunder.coupon_id, CouponFunder.merchant_id).tuples()
        return {str(cid): str(mid) for cid, mid in rows}
    wanted = sorted(set(coupon_ids))
    out: dict[str, str] = {}
    for start in range(0, len(wanted), FUNDERS_CHUNK):
        rows = CouponFunder.select().where(CouponFunder.coupon_id.in_(wanted[start:start + FUNDERS_CHUNK]))
        out.update({str(row.coupon_id): str(row.merchant_id) for row in rows})
    return out


FUNDERS_CHUNK = 400  # ids per IN (...) list
