"""Rules: the version in force; upload a new TOML file, see it checked and a readable diff, then publish it
(terminals get it on their next pull)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response

from cardkit.core.rules import rules_from_toml
from cardkit.errors import CardposError
from ledger import admin, publish, store
from ledger.console import rulesdiff
from ledger.console.web import Page

MAX_RULES_CHARS = 200_000


def _current() -> dict[str, Any]:
    row = store.RulesVersion.select().order_by(store.RulesVersion.version.desc()).first()
    rules = publish.current_rules()
    return {"version": int(rules.version), "mapping": rules.to_mapping(), "text": str(row.toml_text) if row else "",
            "loaded_ms": int(row.loaded_ms) if row else None, "actor": str(row.actor) if row else "",
            "flat": rulesdiff.flatten({k: v for k, v in rules.to_mapping().items() if k != "version"})}


def rules(page: Page) -> Response:
    return page.render("rules.html", current=_current(), preview=None, text="", error=None)


def _checked(page: Page) -> tuple[str, Any, str | None]:
    text = page.field("toml", limit=MAX_RULES_CHARS).replace("\r\n", "\n")
    if not text.strip():
        return text, None, page.t("rules.empty")
    try:
        return text, rules_from_toml(text), None
    except CardposError as exc:
        return text, None, exc.message


def rules_preview(page: Page) -> Response:
    current = _current()
    text, parsed, error = _checked(page)
    if error is not None:
        return page.render("rules.html", 400, current=current, preview=None, text=text, error=error)
    preview = {"changes": rulesdiff.changes(current["mapping"], parsed.to_mapping()),
               "lines": rulesdiff.text_diff(current["text"], text) if current["text"] else [],
               "base_version": current["version"]}
    return page.render("rules.html", current=current, preview=preview, text=text, error=None)


def rules_publish(page: Page) -> Response:
    current = _current()
    text, _parsed, error = _checked(page)
    if error is None and page.field("base_version") != str(current["version"]):
        error = page.t("rules.moved", version=current["version"])
    if error is not None:
        return page.render("rules.html", 400, current=current, preview=None, text=text, error=error)
    version = admin.load_rules(text, page.actor)
    return page.redirect(f"/rules?v={version}", message="rules_published")


HANDLERS = {"rules": rules, "rules_preview": rules_preview, "rules_publish": rules_publish}
