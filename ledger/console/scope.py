"""Tenant isolation: what a console user may see of the program. Everyone but a merchant manager sees the whole
program; a merchant manager sees one merchant (recorded with their account: ``cardpos ledger admin add NAME
--role merchant_manager --merchant M``): its stores, its terminals, alerts raised on them, sales made at them and
its own settlement lines. Members belong to the program, so their shared profile (tier, balance, points,
preferences and notes) shows at every merchant; their sales at other merchants do not.

Every page and export asks the scope (``scope_of(page)``) in its query, on the server: a manager's page of another
merchant's thing is "not found", and a list is simply empty of what is not theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import peewee

from ledger import store
from ledger.console.roles import Role
from ledger.merchants.models import PROGRAM, Merchant, Store


@dataclass(frozen=True)
class Scope:
    """``merchant_id`` None: the whole program. Otherwise the merchant's stores and terminals, read once per
    request (a store moved to another merchant leaves the manager's view at their next page)."""

    merchant_id: str | None
    store_ids: frozenset[str] = frozenset()
    terminal_ids: frozenset[str] = frozenset()

    @property
    def whole_program(self) -> bool:
        return self.merchant_id is None

    def sees_merchant(self, merchant_id: str) -> bool:
        return self.merchant_id is None or merchant_id == self.merchant_id

    def sees_store(self, store_id: str) -> bool:
        return self.merchant_id is None or store_id in self.store_ids

    def sees_terminal(self, terminal_id: str) -> bool:
        return self.merchant_id is None or terminal_id in self.terminal_ids

    def sees_party(self, party: str) -> bool:
        """A settlement party: a merchant, or the program operator (the whole program's view only)."""
        return self.merchant_id is None or party == self.merchant_id

    def terminal_filter(self, column: Any) -> Any:
        """A WHERE clause keeping rows of the scope's terminals (True for the whole program)."""
        if self.merchant_id is None:
            return peewee.SQL("1 = 1")
        return column.in_(sorted(self.terminal_ids)) if self.terminal_ids else peewee.SQL("1 = 0")


WHOLE_PROGRAM = Scope(None)


def merchant_scope(merchant_id: str) -> Scope:
    store_rows: Any = Store.select(Store.store_id).where(Store.merchant_id == merchant_id).tuples()
    stores = frozenset(str(s) for (s,) in store_rows)
    terminals: frozenset[str] = frozenset()
    if stores:
        terminal_rows: Any = (store.Terminal.select(store.Terminal.terminal_id)
                              .where(store.Terminal.store_id.in_(sorted(stores))).tuples())
        terminals = frozenset(str(t) for (t,) in terminal_rows)
    return Scope(merchant_id, stores, terminals)


def scope_for(role: Role | None, merchant_id: str | None) -> Scope:
    """The scope of a signed-in account. A merchant manager whose merchant is missing (or was never recorded)
    sees nothing: an empty scope of a merchant no row names, never the whole program."""
    if role is not Role.MERCHANT_MANAGER:
        return WHOLE_PROGRAM
    if not merchant_id or merchant_id == PROGRAM or Merchant.get_or_none(Merchant.merchant_id == merchant_id) is None:
        return Scope(merchant_id or "\x00none")
    return merchant_scope(merchant_id)


def scope_of(page: Any) -> Scope:
    """The scope of the page's signed-in user (``ledger.console.web.Page``)."""
    session = page.session
    if session is None:
        return Scope("\x00none")
    return scope_for(session.role, session.merchant_id)
