"""Console roles and the one table of what each may reach: every route the console serves is a row here, and the
app refuses to start with a handler missing from the table or a row without a handler. The server checks the
table on every request (``ledger.console.app``); templates only use it to hide links a role could not follow.

- **owner**: everything, including admin accounts and publishing rules.
- **support**: members (with personal data), cards, terminals, alerts.
- **marketing**: the dashboard, members with personal data masked, the analytics (segments and reports), the
  rules in force.
- **auditor**: read-only: dashboard, alerts, terminals, rules and the audit log; no personal data.
- **merchant_manager**: one merchant (``ledger.console.scope``): its dashboard, stores, terminals, alerts, sales
  and settlement lines; members' shared profile (personal data masked, preferences and notes shown) with only
  the sales made at its own stores.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    OWNER = "owner"
    SUPPORT = "support"
    MARKETING = "marketing"
    AUDITOR = "auditor"
    MERCHANT_MANAGER = "merchant_manager"

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls(text.strip().lower().replace("-", "_").replace(" ", "_"))
        except ValueError:
            from ledger.errors import LedgerError

            names = ", ".join(r.value for r in cls)
            raise LedgerError(f"unknown role {text!r}; a role is one of {names}") from None


OWNER, SUPPORT, MARKETING, AUDITOR, MANAGER = (Role.OWNER, Role.SUPPORT, Role.MARKETING, Role.AUDITOR,
                                               Role.MERCHANT_MANAGER)
EVERYONE = frozenset(Role)
PUBLIC: frozenset[Role] = frozenset()
"""Routes anyone may reach without signing in (the sign-in page, static files, the language switch)."""


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    roles: frozenset[Role]

    @property
    def public(self) -> bool:
        return not self.roles

    @property
    def changes_state(self) -> bool:
        return self.method != "GET"


def _r(name: str, method: str, path: str, *roles: Role) -> Route:
    return Route(name, method, path, frozenset(roles))


READ_ALERTS = (OWNER, SUPPORT, AUDITOR, MANAGER)
SETTLEMENT = (OWNER, AUDITOR, MANAGER)
SUPPORTING = (OWNER, SUPPORT)

ROUTES: tuple[Route, ...] = (
    _r("signin_form", "GET", "/signin"),
    _r("signin", "POST", "/signin"),
    _r("lang", "GET", "/lang"),
    _r("static", "GET", "/static/{name}"),
    _r("signout", "POST", "/signout", *EVERYONE),
    _r("home", "GET", "/", *EVERYONE),
    _r("dashboard", "GET", "/dashboard", *EVERYONE),
    _r("account", "GET", "/account", *EVERYONE),
    _r("account_password", "POST", "/account/password", *EVERYONE),
    _r("alerts", "GET", "/alerts", *READ_ALERTS),
    _r("alerts_feed", "GET", "/alerts/feed", *READ_ALERTS),
    _r("alert", "GET", "/alerts/{alert_id}", *READ_ALERTS),
    _r("alert_acknowledge", "POST", "/alerts/{alert_id}/acknowledge", *SUPPORTING),
    _r("alert_resolve", "POST", "/alerts/{alert_id}/resolve", *SUPPORTING),
    _r("terminals", "GET", "/terminals", OWNER, SUPPORT, AUDITOR, MANAGER),
    _r("terminal_add", "POST", "/terminals", *SUPPORTING),
    _r("terminal_disable", "POST", "/terminals/{terminal_id}/disable", *SUPPORTING),
    _r("terminal_enable", "POST", "/terminals/{terminal_id}/enable", *SUPPORTING),
    _r("terminal_revoke", "POST", "/terminals/{terminal_id}/revoke", *SUPPORTING),
    _r("members", "GET", "/members", OWNER, SUPPORT, MARKETING, MANAGER),
    _r("member", "GET", "/members/{member_id}", OWNER, SUPPORT, MARKETING, MANAGER),
    _r("member_edit", "POST", "/members/{member_id}/details", *SUPPORTING),
    _r("card_issue", "POST", "/members/{member_id}/cards", *SUPPORTING),
    _r("card_hold", "POST", "/cards/{card_id}/hold", *SUPPORTING),
    _r("card_unhold", "POST", "/cards/{card_id}/unhold", *SUPPORTING),
    _r("card_revoke", "POST", "/cards/{card_id}/revoke", *SUPPORTING),
    _r("card_replace", "POST", "/cards/{card_id}/replace", *SUPPORTING),
    _r("rules", "GET", "/rules", OWNER, SUPPORT, MARKETING, AUDITOR),
    _r("analytics", "GET", "/analytics", OWNER, SUPPORT, MARKETING, AUDITOR),
    _r("rules_preview", "POST", "/rules/preview", OWNER),
    _r("rules_publish", "POST", "/rules/publish", OWNER),
    _r("merchants", "GET", "/merchants", *SETTLEMENT),
    _r("merchant", "GET", "/merchants/{merchant_id}", *SETTLEMENT),
    _r("settlement", "GET", "/settlement", *SETTLEMENT),
    _r("settlement_statement", "GET", "/settlement/{period}", *SETTLEMENT),
    _r("settlement_print", "GET", "/settlement/{period}/print", *SETTLEMENT),
    _r("settlement_csv", "GET", "/settlement/{period}/statement.csv", *SETTLEMENT),
    _r("settlement_json", "GET", "/settlement/{period}/statement.json", *SETTLEMENT),
    _r("settlement_liability", "GET", "/settlement-liability", *SETTLEMENT),
    _r("audit", "GET", "/audit", OWNER, AUDITOR),
    _r("campaigns", "GET", "/campaigns", OWNER, MARKETING),
    _r("campaign_create", "POST", "/campaigns", OWNER, MARKETING),
    _r("campaign", "GET", "/campaigns/{campaign_id}", OWNER, MARKETING),
    _r("campaign_test_send", "POST", "/campaigns/{campaign_id}/test", OWNER, MARKETING),
    _r("campaign_schedule", "POST", "/campaigns/{campaign_id}/schedule", OWNER, MARKETING),
    _r("admins", "GET", "/admins", OWNER),
    _r("admin_add", "POST", "/admins", OWNER),
    _r("admin_disable", "POST", "/admins/{name}/disable", OWNER),
    _r("admin_enable", "POST", "/admins/{name}/enable", OWNER),
    _r("admin_reset", "POST", "/admins/{name}/reset", OWNER),
)

BY_NAME: dict[str, Route] = {route.name: route for route in ROUTES}


def allowed(role: Role | None, route_name: str) -> bool:
    """Whether ``role`` (None: not signed in) may use the route."""
    route = BY_NAME[route_name]
    return route.public or (role is not None and role in route.roles)


def sees_personal_data(role: Role) -> bool:
    """Names, phones, emails and notes in clear: owner and support; marketing sees them masked."""
    return role in (OWNER, SUPPORT)
