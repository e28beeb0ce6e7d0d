"""Members: search by phone, card id, email or a whole word of the name; one member with balance, points, tier,
coupons, cards and the history across stores; edit notes and preferences; issue, hold, unhold, revoke and
replace cards. Every page showing personal data is a read in the audit log (a result page: one entry listing
the members it showed); marketing sees names, phones, emails and notes masked.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.responses import Response

from cardkit.core.members import Tier
from ledger import admin, cards_issue, signup, store
from ledger.console import entries, fmt, qr
from ledger.console.roles import Role, sees_personal_data
from ledger.console.scope import scope_of
from ledger.console.web import Handler, NotFound, Page
from ledger.errors import LedgerError

SEARCH_KINDS = ("auto", "phone", "card", "name", "email")
MAX_RESULTS = 50
_CARD_ID = re.compile(r"[0-9a-f]{16}")
_PHONE = re.compile(r"[+()\d][\d\s()+.\-]{4,30}")
MAX_PREFS = 30


def classify(text: str) -> str:
    """What a search box entry most likely is: a card id (16 hex digits), an email, a phone number, a name."""
    text = text.strip()
    if _CARD_ID.fullmatch(text.lower()):
        return "card"
    if "@" in text:
        return "email"
    if _PHONE.fullmatch(text) and sum(ch.isdigit() for ch in text) >= 5:
        return "phone"
    return "name"


def _masked(row: dict[str, Any], full: bool, *, notes: bool = False) -> dict[str, Any]:
    """``notes``: keep the notes (a merchant manager sees the shared profile: preferences and notes)."""
    if full:
        return row
    return {**row, "name": fmt.mask_name(str(row.get("name", ""))), "phone": fmt.mask_phone(str(row.get("phone", ""))),
            "email": fmt.mask_email(str(row.get("email", ""))), "notes": row.get("notes", "") if notes else "",
            "masked": True}


def members(page: Page) -> Response:
    text = page.query("q").strip()
    by = page.query("by") if page.query("by") in SEARCH_KINDS else "auto"
    if not text:
        return page.render("members.html", q="", by=by, results=None, kind=None, error=None)
    kind = classify(text) if by == "auto" else by
    if kind == "card" or store.Member.get_or_none(store.Member.member_id == text) is not None:
        member_id = text
        if kind == "card":
            card = store.Card.get_or_none(store.Card.card_id == text.lower())
            if card is None:
                return page.render("members.html", q=text, by=by, results=[], kind=kind, error=None)
            member_id = str(card.member_id)
        return page.redirect(f"/members/{member_id}")
    try:
        found = admin.find_members(**{kind: text})
    except LedgerError as exc:
        return page.render("members.html", 400, q=text, by=by, results=None, kind=kind, error=exc.message)
    found = found[:MAX_RESULTS]
    if found:
        admin.record_member_read([str(m["member_id"]) for m in found], actor=page.actor, via="console",
                                 origin=page.origin, action="member_search")
    full = page.role is not None and sees_personal_data(page.role)
    scope = scope_of(page)
    return page.render("members.html", q=text, by=by, kind=kind, error=None,
                       results=[_home_in_scope(_masked(m, full), scope.sees_store) for m in found])


def _home_in_scope(row: dict[str, Any], sees_store: Any) -> dict[str, Any]:
    """A member's home store, when it is one a merchant manager may see ("—": another merchant's store)."""
    return row if sees_store(str(row.get("store_id", ""))) else {**row, "store_id": "—"}


def _view(page: Page, member_id: str) -> dict[str, Any]:
    try:
        view = admin.member_view(member_id, history=100, actor=page.actor, via="console", origin=page.origin)
    except LedgerError as exc:
        if str(exc).startswith("there is no member"):
            raise NotFound(exc.message) from exc
        raise
    return view


def _member_page(page: Page, member_id: str, status: int = 200, **extra: Any) -> Response:
    view = _view(page, member_id)
    full = page.role is not None and sees_personal_data(page.role)
    scope = scope_of(page)  # members are the program's; a merchant manager sees only sales at their own stores
    history = [e for e in reversed(view["history"]) if scope.sees_terminal(str(e["terminal_id"]))]
    if not scope.whole_program:
        view = _home_in_scope({**view, "entries": len(history)}, scope.sees_store)
    stores = entries.stores_of({str(e["terminal_id"]) for e in history})
    settings = page.console.settings
    rows = [{**e, "store_id": stores.get(str(e["terminal_id"]), ""),
             "when": fmt.when(int(e["wall_ms"]), settings.store_zone(stores.get(str(e["terminal_id"])))),
             "summary": entries.summary(str(e["kind"]), e["payload"] if isinstance(e["payload"], dict) else {}, page.t)}
            for e in history]
    prefs = sorted((str(k), str(v)) for k, v in dict(view.get("prefs") or {}).items())
    return page.render("member.html", status, m=_masked(view, full, notes=page.role is Role.MERCHANT_MANAGER),
                       full=full, history=rows, prefs=prefs,
                       upgrades=pending_upgrades(view, rows),
                       waiting_cards=waiting_cards(member_id, settings), signups=member_signups(member_id, settings),
                       tiers=[tier.value for tier in Tier],
                       **{"issued": None, "error": None, **extra})


def pending_upgrades(view: dict[str, Any], history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cards still of a lower tier than the member's (an upgrade at a terminal asks for a new card): each with the
    upgrade entry that asked, when the history shows it."""
    tier = Tier(str(view["tier"]))
    asked = next((e for e in history if e["kind"] == "tier_upgrade"), None)
    return [{"card_id": c["card_id"], "card_tier": c["tier"], "tier": tier.value, "asked": asked}
            for c in view["cards"] if c["status"] in ("active", "on_hold") and Tier(str(c["tier"])).rank < tier.rank]


def waiting_cards(member_id: str, settings: Any) -> list[dict[str, Any]]:
    """New cards terminals asked for (tier upgrades, sign-ups) that the ledger has not issued yet."""
    return [{**r, "when": fmt.when(int(r["asked_ms"]), settings.store_zone(None))}
            for r in cards_issue.pending_requests(member_id)]


def member_signups(member_id: str, settings: Any) -> list[dict[str, Any]]:
    """The sign-ups that made this member or were merged onto it (a merge: the same phone signed up twice)."""
    return [{**r, "when": fmt.when(int(r["at_ms"]), settings.store_zone(None))}
            for r in signup.signups() if r["member_id"] == member_id]


def member(page: Page) -> Response:
    return _member_page(page, page.param("member_id"))


def member_edit(page: Page) -> Response:
    member_id = page.param("member_id")
    keys = page.fields("pref_key")[:MAX_PREFS]
    values = page.fields("pref_value")[:MAX_PREFS]
    prefs: dict[str, str] = {}
    for key, value in zip(keys, values, strict=False):
        if key.strip():
            prefs[key.strip()[:40]] = value.strip()[:200]
    removed = [k for k in page.fields("pref_remove") if k not in prefs]
    for key in removed[:MAX_PREFS]:
        prefs[key[:40]] = ""
    try:
        admin.update_member(member_id, notes=page.field("notes", limit=2000), prefs=prefs or None, actor=page.actor)
    except LedgerError as exc:
        if str(exc).startswith("there is no member"):
            raise NotFound(exc.message) from exc
        return _member_page(page, member_id, 400, error=exc.message)
    return page.redirect(f"/members/{member_id}", message="member_saved")


def _issued(page: Page, issued: admin.IssuedCard) -> dict[str, str]:
    return {"card_id": issued.card_id, "tier": issued.tier.value, "token_text": issued.token_text,
            "qr": qr.qr_svg(issued.token_text, page.t("member.card_qr_title"))}


def card_issue(page: Page) -> Response:
    member_id = page.param("member_id")
    tier = page.field("tier") or None
    try:
        issued = admin.issue_card(member_id, tier, actor=page.actor)
    except LedgerError as exc:
        if str(exc).startswith("there is no member"):
            raise NotFound(exc.message) from exc
        return _member_page(page, member_id, 400, error=exc.message)
    return _member_page(page, member_id, issued=_issued(page, issued))


def _card_member(card_id: str) -> str:
    card = store.Card.get_or_none(store.Card.card_id == card_id)
    if card is None:
        raise NotFound(f"there is no card {card_id!r}")
    return str(card.member_id)


def _card_action(action: str) -> Handler:
    def handler(page: Page) -> Response:
        card_id = page.param("card_id")
        member_id = _card_member(card_id)
        reason = page.field("reason", limit=32).strip() or ("hold" if action == "hold" else "")
        try:
            if action == "hold":
                admin.hold_card(card_id, reason, page.actor)
            elif action == "unhold":
                admin.unhold_card(card_id, page.actor)
            elif action == "revoke":
                admin.revoke_card(card_id, reason, page.actor)
            else:
                issued = admin.replace_card(card_id, page.field("tier") or None, page.actor)
                return _member_page(page, member_id, issued=_issued(page, issued))
        except LedgerError as exc:
            return _member_page(page, member_id, 400, error=exc.message)
        return page.redirect(f"/members/{member_id}", message=f"card_{action}")

    return handler


HANDLERS = {"members": members, "member": member, "member_edit": member_edit, "card_issue": card_issue,
            "card_hold": _card_action("hold"), "card_unhold": _card_action("unhold"),
            "card_revoke": _card_action("revoke"), "card_replace": _card_action("replace")}
