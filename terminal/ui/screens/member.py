"""The member screen: who tapped, what they have, what they did last; the start of every operation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from terminal.ui import ops
from terminal.ui.messages import DataLoaded, OperationDone
from terminal.ui.screens.base import CashierScreen
from terminal.ui.view import HistoryLine, MemberFacts, coupon_text, history_line, member_facts

HISTORY_ROWS = 10


class MemberScreen(CashierScreen):
    TITLE_KEY = "member.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sale", "Sale"),
        Binding("t", "topup", "Top-up"),
        Binding("r", "reverse", "Refund/void"),
        Binding("u", "upgrade", "Upgrade tier"),
        Binding("e", "edit", "Notes/prefs"),
        Binding("escape", "done", "Done"),
    ]

    def __init__(self, view: Any) -> None:
        super().__init__()
        self.view = view
        self.facts: MemberFacts = member_facts(view)
        self.history: list[HistoryLine] = []

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        f = self.facts
        with Horizontal(id="member-head"):
            yield Static(f.name, id="member-name")
            yield Static(tr("member.tier", tier=tr(f"tier.{f.tier}")), id="member-tier")
            yield Static(tr("member.offline_estimate") if f.offline else tr("member.live"),
                         id="member-estimate", classes="warn" if f.offline else "ok")
        with Vertical(id="member-facts"):
            yield Static(id="member-money")
            yield Static(id="member-coupons")
            yield Static(id="member-prefs")
            yield Static(id="member-notes")
            yield Static(id="member-upgrade", classes="warn")
        yield Static(tr("member.history_title"), classes="section")
        yield DataTable(id="member-history", cursor_type="row", zebra_stripes=False)

    def on_mount(self) -> None:
        table = self.query_one("#member-history", DataTable)
        tr = self.tr
        table.add_columns(tr("history.when"), tr("history.kind"), tr("history.amount"), tr("history.points"),
                          tr("history.tender"))
        self.show_facts()
        self.reload_history()

    def show_facts(self) -> None:
        tr = self.tr
        f = self.facts
        self.query_one("#member-money", Static).update(
            tr("member.money", balance=str(f.balance), points=f"{f.points:,}", card=f.card_id))
        coupons = " · ".join(coupon_text(c) for c in f.coupons) or tr("member.none")
        self.query_one("#member-coupons", Static).update(tr("member.coupons", coupons=coupons))
        prefs = "; ".join(f"{k}={v}" for k, v in sorted(f.prefs.items())) or tr("member.none")
        self.query_one("#member-prefs", Static).update(tr("member.prefs", prefs=prefs))
        self.query_one("#member-notes", Static).update(tr("member.notes", notes=f.notes or tr("member.none")))
        upgrade = self.query_one("#member-upgrade", Static)
        upgrade.display = bool(f.upgrade_to)
        if f.upgrade_to:
            upgrade.update(tr("member.upgrade_due", tier=tr(f"tier.{f.upgrade_to}")))
        self.refresh_bindings()

    def reload_history(self) -> None:
        self.load("history", ops.history(self.capp.services.counter, self.facts.card_id, HISTORY_ROWS))

    def reload_member(self) -> None:
        self.load("member", ops.member_view(self.capp.services.counter, self.facts.card_id))

    def on_data_loaded(self, message: DataLoaded) -> None:
        if message.what == "history":
            tz = self.capp.services.tz
            self.history = [history_line(item, tz) for item in message.value][:HISTORY_ROWS]
            table = self.query_one("#member-history", DataTable)
            table.clear()
            for line in self.history:
                table.add_row(line.when, self.tr(f"kind.{line.kind}") if self.tr.has(f"kind.{line.kind}")
                              else line.kind, line.amount, line.points, self._tender(line.tender), key=line.uuid)
        elif message.what == "member" and message.value is not None:
            self.view = message.value
            self.facts = member_facts(message.value)
            self.show_facts()
        elif message.what == "member_saved":
            self.busy = False
            self.reload_member()

    def _tender(self, tender: str) -> str:
        return self.tr(f"tender.{tender}") if tender and self.tr.has(f"tender.{tender}") else tender

    def on_screen_resume(self) -> None:
        if self.is_mounted and getattr(self, "_resumed_once", False):
            # Back from an operation: show the figures after it.
            self.reload_member()
            self.reload_history()
        self._resumed_once = True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "upgrade":
            return bool(self.facts.upgrade_to) or None
        return True

    def action_done(self) -> None:
        self.capp.return_to_idle()

    def action_sale(self) -> None:
        from terminal.ui.screens.sale import SaleScreen

        self.capp.push_screen(SaleScreen(self.view))

    def action_topup(self) -> None:
        from terminal.ui.screens.topup import TopUpScreen

        self.capp.push_screen(TopUpScreen(self.view))

    def action_reverse(self) -> None:
        from terminal.ui.screens.reverse import ReverseScreen

        self.capp.push_screen(ReverseScreen(self.view))

    def action_upgrade(self) -> None:
        from terminal.ui.screens.dialogs import ConfirmScreen

        target = self.facts.upgrade_to
        if not target:
            return
        facts = self.facts

        def answer(yes: bool | None) -> None:
            if yes:
                self.start_operation("tier_upgrade", ops.upgrade(self.capp.services.counter, facts.card_id,
                                                                 cashier=self.capp.cashier))

        self.capp.push_screen(ConfirmScreen(self.tr("member.upgrade_confirm", name=facts.name,
                                                    tier=self.tr(f"tier.{target}"))), answer)

    def on_operation_done(self, message: OperationDone) -> None:
        from terminal.ui.screens.receipt import ReceiptScreen

        self.busy = False
        self.capp.push_screen(ReceiptScreen(message.kind, message.receipt, message.path))

    def action_edit(self) -> None:
        self.capp.push_screen(EditMemberScreen(self.facts), self._edited)

    def _edited(self, change: tuple[str, dict[str, str]] | None) -> None:
        if change is None:
            return
        notes, prefs = change
        self.load("member_saved", ops.update_member(self.capp.services.counter, self.facts.member_id,
                                                    notes=notes, prefs=prefs, cashier=self.capp.cashier))


def parse_prefs(text: str) -> dict[str, str]:
    """``seat=window; drink=tea`` → ``{"seat": "window", "drink": "tea"}`` (entries without ``=`` are kept as
    ``note``-less flags with an empty value)."""
    prefs: dict[str, str] = {}
    for part in text.replace("；", ";").split(";"):
        key, _, value = part.partition("=")
        if key.strip():
            prefs[key.strip()] = value.strip()
    return prefs


class EditMemberScreen(CashierScreen):
    """Edit the member's notes and preferences; saved through the journal and synced to every store."""

    TITLE_KEY = "edit.title"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+s", "save", "Save"), Binding("escape", "cancel", "Cancel")]

    def __init__(self, facts: MemberFacts) -> None:
        super().__init__()
        self.facts = facts

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        yield Static(tr("edit.for", name=self.facts.name), classes="section")
        yield Static(tr("edit.notes"))
        yield Input(self.facts.notes, id="edit-notes")
        yield Static(tr("edit.prefs"))
        yield Input("; ".join(f"{k}={v}" for k, v in sorted(self.facts.prefs.items())), id="edit-prefs")
        yield Static(tr("edit.keys"), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#edit-notes", Input).focus()

    @on(Input.Submitted, "#edit-notes")
    def _next(self) -> None:
        self.query_one("#edit-prefs", Input).focus()

    @on(Input.Submitted, "#edit-prefs")
    def _submitted(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        notes = self.query_one("#edit-notes", Input).value.strip()
        prefs = parse_prefs(self.query_one("#edit-prefs", Input).value)
        self.dismiss((notes, prefs))

    def action_cancel(self) -> None:
        self.dismiss(None)
