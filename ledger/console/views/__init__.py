"""The console's page handlers, one module per area; ``handlers()`` maps route names (``roles.ROUTES``) to them."""

from __future__ import annotations

from ledger.console.views import (
    admins,
    alerts,
    analytics,
    audit,
    auth,
    campaigns,
    dashboard,
    members,
    merchants,
    rules,
    settlement,
    terminals,
)
from ledger.console.web import Handler


def handlers() -> dict[str, Handler]:
    merged: dict[str, Handler] = {}
    for module in (auth, dashboard, alerts, terminals, members, merchants, settlement, analytics, campaigns, rules,
                   audit, admins):
        for name, handler in module.HANDLERS.items():
            if name in merged:
                raise ValueError(f"two handlers for route {name}")
            merged[name] = handler
    return merged
