"""The member screen: who tapped, what they have, what they did last; the start of every operation, the
reprint of a past receipt (the history's selected line) and the language switch."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from cardkit.journal import EntryKind
from terminal.service.receipt_lines import RECEIPT_KINDS
from terminal.ui.messages import MemberLoaded, OperationDone
from terminal.ui.screens.base import CashierScreen
from terminal.ui.view import HistoryLine, Tapped, coupon_text, fit_lines, history_line, history_table, pack
from terminal.ui.widgets import Plain


class MemberScreen(CashierScreen):
    TITLE_KEY = "member.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sale", "Sale"),
        Binding("t", "topup", "Top-up"),
        Binding("r", "reverse", "Refund/void"),
        Binding("u", "upgrade", "Upgrade tier"),
        Binding("g", "redeem", "Gift"),
        Binding("f", "fee", "Fee"),
        Binding("e", "edit", "Notes/prefs"),
        Binding("p", "reprint_selected", "Reprint"),
        Binding("l", "switch_language", "Language"),
        Binding("escape", "done", "Done"),
    ]

    def __init__(self, card: Tapped) -> None:
        super().__init__()
        self.card = card
        self.lines: list[HistoryLine] = []
        self._resumed_once = False

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        with Horizontal(id="member-head"):
            yield Plain(id="member-name")
            yield Plain(id="member-tier")
            yield Plain(id="member-estimate")
        with Vertical(id="member-facts"):
            yield Plain(id="member-money")
            yield Plain(id="member-coupons")
            yield Plain(id="member-prefs")
            yield Plain(id="member-notes")
            yield Plain(id="member-upgrade", classes="warn")
            yield Plain(id="member-unknown", classes="warn")
        yield Plain(tr("member.history_title"), classes="section")
        yield DataTable(id="member-history", cursor_type="row", zebra_stripes=False)

    def on_mount(self) -> None:
        self.show()

    def show(self) -> None:
        tr = self.tr
        view = self.card.view
        self.query_one("#member-name", Static).update(self.card.name)
        self.query_one("#member-tier", Static).update(tr("member.tier", tier=tr(f"tier.{view.tier.value}")))
        estimate = self.query_one("#member-estimate", Static)
        # True to the last sync: the ledger's figures online; not yet confirmed when this terminal added some
        # while online; an estimate only while offline.
        online = self.ops.online()
        if not view.offline_estimate:
            label = "member.live"
        elif online and view.pending:
            label = "member.pending"
        else:
            label = "member.offline_estimate"
        estimate.update(tr(label))
        estimate.set_classes("ok" if label == "member.live" else "warn")
        self.query_one("#member-money", Static).update(
            tr("member.money", balance=str(view.balance), points=f"{view.points:,}", card=self.card.card_id))
        # Coupons and preferences are laid out item by item and notes word by word, so a long one takes a
        # second line at 80 columns instead of being cut or broken in the middle of a coupon id.
        width = self.body_width()
        coupons = [coupon_text(c) for c in view.coupons] or [tr("member.none")]
        self.query_one("#member-coupons", Static).update(
            pack([tr("member.coupons", coupons=coupons[0]), *coupons[1:]], width))
        prefs = [f"{k}={v}" for k, v in sorted(view.prefs.items())] or [tr("member.none")]
        self.query_one("#member-prefs", Static).update(pack([tr("member.prefs", prefs=prefs[0]), *prefs[1:]],
                                                            width, sep="; "))
        notes = tr("member.notes", notes=view.notes or tr("member.none"))
        self.query_one("#member-notes", Static).update("\n".join(fit_lines(notes, width)))
        self._show_unknown_balance()
        upgrade = self.query_one("#member-upgrade", Static)
        upgrade.display = view.upgrade_due is not None
        if view.upgrade_due is not None:
            upgrade.update(tr("member.upgrade_due", tier=tr(f"tier.{view.upgrade_due.value}")))
        tz = self.capp.services.tz
        self.lines = [history_line(op, tz, tr) for op in view.recent]
        history_table(self.query_one("#member-history", DataTable), self.lines, tr, width,
                      kind=lambda line: (tr(f"kind.{line.kind}") if tr.has(f"kind.{line.kind}") else line.kind)
                      + ("" if line.synced else " *"))
        self.refresh_bindings()

    def _show_unknown_balance(self) -> None:
        """The unknown-balance path (issue 14): a member this terminal was never sent and could not look up shows
        no figures at all, and says what can still be done, instead of a balance of 0.00."""
        tr = self.tr
        view = self.card.view
        unknown = self.query_one("#member-unknown", Static)
        unknown.display = not view.balance_known
        if view.balance_known:
            return
        estimate = self.query_one("#member-estimate", Static)
        estimate.update(tr("member.unknown_badge"))
        estimate.set_classes("warn")
        self.query_one("#member-money", Static).update(tr("member.unknown_money", card=self.card.card_id))
        self.query_one("#member-coupons", Static).update(tr("member.coupons", coupons=tr("member.unknown")))
        unknown.update(tr("member.unknown_explain"))

    def reload(self) -> None:
        self.load(self.ops.member_view(self.card))

    def on_member_loaded(self, message: MemberLoaded) -> None:
        self.card = replace(self.card, view=message.view)
        self.show()

    def on_screen_resume(self) -> None:
        if self._resumed_once:
            self.reload()  # back from an operation: show the figures after it
        self._resumed_once = True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "upgrade":
            return self.card.view.upgrade_due is not None  # offered only when the rules say it is due
        if action == "reprint_selected":
            return self.ops.has_printer and bool(self.lines)
        return True

    def action_reprint_selected(self) -> None:
        table = self.query_one("#member-history", DataTable)
        if not 0 <= table.cursor_row < len(self.lines):
            return
        line = self.lines[table.cursor_row]
        if line.kind not in RECEIPT_KINDS or line.kind == EntryKind.MEMBER_UPDATE:
            self.notify(self.tr("member.no_receipt", kind=self.tr(f"kind.{line.kind}")), severity="warning")
            return
        self.notify(self.tr("member.reprinting", label=f"#{line.seq}"))
        self.capp.reprint(line.uuid, f"#{line.seq}")

    def action_switch_language(self) -> None:
        self.capp.switch_language()

    def action_done(self) -> None:
        self.capp.return_to_idle()

    def action_sale(self) -> None:
        from terminal.ui.screens.sale import SaleScreen

        self.capp.push_screen(SaleScreen(self.card))

    def action_topup(self) -> None:
        from terminal.ui.screens.topup import TopUpScreen

        self.capp.push_screen(TopUpScreen(self.card))

    def action_reverse(self) -> None:
        from terminal.ui.screens.reverse import ReverseScreen

        self.capp.push_screen(ReverseScreen(self.card))

    def action_redeem(self) -> None:
        from terminal.ui.screens.redeem import RedeemScreen

        self.capp.push_screen(RedeemScreen(self.card))

    def action_fee(self) -> None:
        from terminal.ui.screens.fee import FeeScreen

        self.capp.push_screen(FeeScreen(self.card))

    def action_upgrade(self) -> None:
        from terminal.ui.screens.dialogs import ConfirmScreen

        target = self.card.view.upgrade_due
        if target is None:
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.start_operation(self.ops.upgrade(self.card, cashier=self.capp.cashier))

        self.capp.push_screen(ConfirmScreen(self.tr("member.upgrade_confirm", name=self.card.name,
                                                    tier=self.tr(f"tier.{target.value}"))), answer)

    def on_operation_done(self, message: OperationDone) -> None:
        from terminal.ui.screens.receipt import ReceiptScreen

        self.busy = False
        if message.kind == EntryKind.MEMBER_UPDATE:
            self.reload()
            self.notify(self.tr("edit.saved"))
            return
        if message.kind == EntryKind.TIER_UPGRADE:  # the upgrade's receipt, then its new card
            from terminal.ui.screens.newcard import NewCardScreen

            receipt = message.receipt
            self.capp.push_screen(ReceiptScreen(message.kind, receipt, message.path),
                                  lambda _: self.capp.push_screen(NewCardScreen(receipt)))
            return
        self.capp.push_screen(ReceiptScreen(message.kind, message.receipt, message.path))

    def action_edit(self) -> None:
        self.capp.push_screen(EditMemberScreen(self.card), self._edited)

    def _edited(self, change: tuple[str, dict[str, str]] | None) -> None:
        if change is None:
            return
        notes, prefs = change
        self.start_operation(self.ops.update_member(self.card.view.member_id, notes=notes, prefs=prefs,
                                                    cashier=self.capp.cashier))


def parse_prefs(text: str) -> dict[str, str]:
    """``seat=window; drink=tea`` → ``{"seat": "window", "drink": "tea"}``; the full-width ``；`` works too."""
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

    def __init__(self, card: Tapped) -> None:
        super().__init__()
        self.card = card

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        view = self.card.view
        yield Plain(tr("edit.for", name=self.card.name), classes="section")
        yield Plain(tr("edit.notes"))
        yield Input(view.notes, id="edit-notes")
        yield Plain(tr("edit.prefs"))
        yield Input("; ".join(f"{k}={v}" for k, v in sorted(view.prefs.items())), id="edit-prefs")
        yield Plain(tr("edit.keys"), classes="hint")

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
