"""Tables of the merchant model: the program's settings, merchants, stores (each belongs to a merchant) and
which merchant funds a coupon. Terminals already name their store (``store.Terminal.store_id``) and members
their home store (``store.Member.store_id``): a member's home merchant is their home store's merchant.

Members, cards, stored value and points belong to the program, never to a merchant.
"""

from __future__ import annotations

import peewee

from ledger import store

PROGRAM = "program"
"""The program operator (the group) as a party: it holds the float, settles with every merchant, funds what no
merchant funds (opening balances, coupons issued without a merchant) and stands for stores no merchant owns."""

FLOAT_HOLDERS = ("operator", "direct")
"""``operator``: merchants settle with the program operator, who holds members' stored value (the default; the
group-issuer case of single-purpose prepaid card rules). ``direct``: merchants net with each other."""


class ProgramSettings(store.BaseModel):
    """The program's settings: one row (``program_id`` = ``PROGRAM``)."""

    program_id = peewee.CharField(primary_key=True, max_length=16)
    name = peewee.TextField(default="cardpos program")
    float_holder = peewee.CharField(max_length=16, default="operator")
    point_cost_minor = peewee.BigIntegerField(default=1)
    """What ``point_cost_points`` points cost, in minor units of ``currency`` (issuing merchants pay it to the
    program, redeeming merchants are paid it)."""
    point_cost_points = peewee.BigIntegerField(default=1)
    currency = peewee.CharField(max_length=3, default="CNY")
    reserve_bp = peewee.IntegerField(default=3000)
    """Share of the previous quarter's outstanding stored value to keep in escrow (30 %: a group issuer)."""
    updated_ms = peewee.BigIntegerField(default=0)


class Merchant(store.BaseModel):
    merchant_id = peewee.CharField(primary_key=True, max_length=32)
    name = peewee.TextField()
    status = peewee.CharField(max_length=16, default="active")  # active, inactive
    overrides = store.JSONField(default=dict)  # ledger.merchants.overrides mapping form, checked before stored
    created_ms = peewee.BigIntegerField()
    updated_ms = peewee.BigIntegerField()


class Store(store.BaseModel):
    """A store and the merchant it belongs to. A store id terminals or members name without a row here belongs
    to no merchant yet; its sales settle as the program's own."""

    store_id = peewee.CharField(primary_key=True, max_length=64)
    merchant_id = peewee.CharField(max_length=32, index=True)
    name = peewee.TextField(default="")
    assigned_ms = peewee.BigIntegerField()


class CouponFunder(store.BaseModel):
    """The merchant that issued (and funds) a coupon; a coupon without a row is funded by the program."""

    coupon_id = peewee.CharField(primary_key=True, max_length=40)
    merchant_id = peewee.CharField(max_length=32, index=True)


class RulesStamp(store.BaseModel):
    """When a merchant's overrides or a store's merchant last changed, as a number from one counter for all of
    them (``ledger.merchants.rules``): the rules a store's terminals pull carry the program's rules version plus
    the larger stamp of their store and its merchant, so such a change reaches exactly those terminals."""

    scope = peewee.CharField(primary_key=True, max_length=80)  # "merchant:<id>" or "store:<id>"
    stamp = peewee.BigIntegerField()
    changed_ms = peewee.BigIntegerField()


MODELS: list[type[peewee.Model]] = [ProgramSettings, Merchant, Store, CouponFunder, RulesStamp]
store.register_models(*MODELS)
