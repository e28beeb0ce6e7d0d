"""The sale: amount on the keypad, tier discount applied by itself, a coupon, points, a tender, confirm.

Every change re-quotes the sale in a worker (the same check the sale itself runs), so the cashier sees the
discounts, the net, the points earned — or why it would be declined — before pressing Enter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Static

from cardkit.core.loyalty import TENDERS
from terminal.ui.messages import OperationDone, QueryDeclined, QueryFailed, QueryName, SaleQuoted
from terminal.ui.screens.base import CashierScreen
from terminal.ui.view import Tapped, coupon_text
from terminal.ui.widgets import Plain
from terminal.ui.widgets.amount import AmountEntry, NumberEntry

if TYPE_CHECKING:
    from cardkit.core.loyalty import SaleQuote


class SaleScreen(CashierScreen):
    TITLE_KEY = "sale.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "confirm", "Confirm"),
        Binding("c", "coupon", "Coupon"),
        Binding("t", "tender", "Tender"),
        Binding("tab", "app.focus_next", "Amount/points", show=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, card: Tapped) -> None:
        super().__init__()
        self.card = card
        self.coupons = card.view.coupons
        self.currency = card.view.balance.currency
        self.coupon_index = -1  # -1: no coupon; else an index into the member's usable coupons
        # A member whose balance is unknown here (issue 14) can only pay by cash or bank card: start from cash.
        self.tender = TENDERS[0] if card.view.balance_known else "cash"
        self.quote: SaleQuote | None = None
        self.quote_problem: str | None = None

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        view = self.card.view
        yield Plain(tr("sale.for", name=self.card.name, tier=tr(f"tier.{self.card.tier}"), balance=str(view.balance),
                        points=f"{view.points:,}"), id="sale-member")
        with Horizontal(id="sale-entries"):
            with Vertical():
                yield Plain(tr("sale.amount"))
                yield AmountEntry(self.currency, id="sale-amount")
            with Vertical():
                yield Plain(tr("sale.points"))
                yield NumberEntry(suffix=tr("sale.points_unit"), id="sale-points")
        yield Plain(id="sale-choices")
        yield Plain(id="sale-quote", classes="prose")
        yield Plain(tr("sale.keys"), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#sale-amount", AmountEntry).focus()
        self.show_choices()
        self.show_quote()

    # -- choices --------------------------------------------------------------------------------------------
    @property
    def coupon_ids(self) -> list[str]:
        return [] if self.coupon_index < 0 else [self.coupons[self.coupon_index].coupon_id]

    def show_choices(self) -> None:
        tr = self.tr
        coupon = (coupon_text(self.coupons[self.coupon_index]) if self.coupon_index >= 0
                  else tr("sale.no_coupon"))
        self.query_one("#sale-choices", Static).update(
            tr("sale.choices", coupon=coupon, tender=tr(f"tender.{self.tender}")))

    def action_coupon(self) -> None:
        if not self.coupons:
            self.notify(self.tr("sale.no_coupons_held"))
            return
        self.coupon_index += 1
        if self.coupon_index >= len(self.coupons):
            self.coupon_index = -1
        self.changed()

    def action_tender(self) -> None:
        self.tender = TENDERS[(TENDERS.index(self.tender) + 1) % len(TENDERS)]
        self.changed()

    def on_number_entry_changed(self, _: NumberEntry.Changed) -> None:
        self.changed()

    def changed(self) -> None:
        self.quote = None
        self.quote_problem = None
        self.show_choices()
        amount = self.query_one("#sale-amount", AmountEntry).amount
        if amount is not None:
            self.load(self.ops.preview_sale(self.card, amount, coupons=self.coupon_ids, points=self.points,
                                            tender=self.tender))
        self.show_quote()

    @property
    def points(self) -> int:
        return self.query_one("#sale-points", NumberEntry).integer

    # -- quote ----------------------------------------------------------------------------------------------
    def on_sale_quoted(self, message: SaleQuoted) -> None:
        self.quote = message.quote
        self.quote_problem = None
        self.show_quote()

    def on_query_declined(self, message: QueryDeclined) -> None:
        if message.what == QueryName.SALE_QUOTE:
            # A preview that would be declined is shown in place; the dialog is for a confirmed sale.
            self.quote = None
            self.quote_problem = message.text
            self.show_quote()
            message.prevent_default()  # handled here: the base screen's decline dialog is not wanted

    def on_query_failed(self, message: QueryFailed) -> None:
        if message.what == QueryName.SALE_QUOTE:
            self.quote_problem = message.text
            self.show_quote()
            message.prevent_default()

    def show_quote(self) -> None:
        tr = self.tr
        widget = self.query_one("#sale-quote", Static)
        if self.quote_problem:
            widget.update(tr("sale.would_decline", text=self.quote_problem))
            widget.set_class(True, "warn")
            return
        widget.set_class(False, "warn")
        q = self.quote
        if q is None:
            widget.update(tr("sale.enter_amount"))
            return
        widget.update(tr(
            "sale.quote", gross=str(q.gross), tier=str(q.tier_disc), coupon=str(q.coupon_disc), points=str(q.pts_disc),
            net=str(q.net), earn=q.pts_earn, redeem=q.pts_redeem, tender=tr(f"tender.{q.tender}")))

    # -- confirm --------------------------------------------------------------------------------------------
    def action_confirm(self) -> None:
        amount = self.query_one("#sale-amount", AmountEntry).amount
        if amount is None:
            self.notify(self.tr("sale.enter_amount"), severity="warning")
            return
        self.start_operation(self.ops.sale(self.card, amount, coupons=self.coupon_ids, points=self.points,
                                           tender=self.tender, cashier=self.capp.cashier))

    def on_operation_done(self, message: OperationDone) -> None:
        from terminal.ui.screens.receipt import ReceiptScreen

        self.busy = False
        self.capp.switch_screen(ReceiptScreen(message.kind, message.receipt, message.path))

    def action_cancel(self) -> None:
        self.dismiss(None)
