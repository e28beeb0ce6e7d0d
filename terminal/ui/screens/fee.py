"""The annual membership fee: a year of a tier for its price (what it gives, until when), refused while the year
the member holds is still paid."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import DataTable

from cardkit.core.loyalty import TENDERS, YEAR_S
from cardkit.core.rules import BP_ONE
from terminal.ui.messages import OperationDone
from terminal.ui.screens.base import CashierScreen
from terminal.ui.view import Tapped
from terminal.ui.widgets import Plain

if TYPE_CHECKING:
    from cardkit.core.members import Tier
    from cardkit.core.rules import TierRule

def fee_paid_for(tier: Tier, member_tier: Tier, paid_until_s: int, now_s: int) -> bool:
    """Whether a year of ``tier`` is already paid: the member holds that tier or a higher one and the paid year
    has not ended (paying again would buy a second year in advance, which the counter does not sell)."""
    return paid_until_s > now_s and member_tier.rank >= tier.rank


def percent(bp: int) -> str:
    whole, frac = divmod(bp, 100)
    return f"{whole}%" if not frac else f"{whole}.{frac:02d}".rstrip("0") + "%"


def multiplier(bp: int) -> str:
    return f"{bp / BP_ONE:g}x"  # display only: the rules keep basis points


class FeeScreen(CashierScreen):
    TITLE_KEY = "fee.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "confirm", "Confirm", priority=True),
        Binding("t", "tender", "Tender"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, card: Tapped) -> None:
        super().__init__()
        self.card = card
        self.tiers: list[tuple[Tier, TierRule]] = []
        self.tender = "cash"

    def compose_body(self) -> Iterable[Widget]:
        yield Plain(id="fee-member", classes="section")
        yield DataTable(id="fee-table", cursor_type="row", zebra_stripes=False)
        yield Plain(id="fee-tender")
        yield Plain(id="fee-choice")
        yield Plain(self.tr("fee.keys"), classes="hint")

    def on_mount(self) -> None:
        tr = self.tr
        self.tiers = self.ops.fee_tiers()
        state = self.card.view.state
        paid = tr("fee.paid_until", date=self.date(state.fee_paid_until)) if state.fee_paid_until > self.ops.now_s() \
            else tr("fee.not_paid")
        self.query_one("#fee-member", Plain).update(
            tr("fee.for", name=self.card.name, tier=tr(f"tier.{state.tier.value}"), paid=paid))
        table = self.query_one("#fee-table", DataTable)
        table.add_column(tr("fee.col_tier"), width=12)
        table.add_column(tr("fee.col_price"), width=14)
        table.add_column(tr("fee.col_gives"))
        for tier, rule in self.tiers:
            assert rule.annual_fee is not None  # fee_tiers lists only tiers with a fee
            gives = tr("fee.gives", discount=percent(rule.discount_bp), points=multiplier(rule.points_multiplier_bp))
            table.add_row(tr(f"tier.{tier.value}"), str(rule.annual_fee), gives, key=tier.value)
        table.focus()
        self.show()
        if not self.tiers:
            self.notify(tr("fee.none"), severity="warning")

    def date(self, epoch_s: int) -> str:
        return datetime.fromtimestamp(epoch_s, tz=self.capp.services.tz).strftime("%Y-%m-%d")

    def selected(self) -> tuple[Tier, TierRule] | None:
        table = self.query_one("#fee-table", DataTable)
        if not self.tiers or not 0 <= table.cursor_row < len(self.tiers):
            return None
        return self.tiers[table.cursor_row]

    def already_paid(self, tier: Tier) -> bool:
        state = self.card.view.state
        return fee_paid_for(tier, state.tier, state.fee_paid_until, self.ops.now_s())

    @on(DataTable.RowHighlighted)
    def show(self) -> None:
        tr = self.tr
        self.query_one("#fee-tender", Plain).update(tr("fee.tender", tender=tr(f"tender.{self.tender}")))
        choice = self.selected()
        widget = self.query_one("#fee-choice", Plain)
        if choice is None:
            widget.update("")
            return
        tier, rule = choice
        state = self.card.view.state
        if self.already_paid(tier):
            widget.update(tr("fee.already_paid", tier=tr(f"tier.{tier.value}"), date=self.date(state.fee_paid_until)))
            widget.set_classes("warn")
            return
        until = max(self.ops.now_s(), state.fee_paid_until) + YEAR_S
        widget.update(tr("fee.choice", tier=tr(f"tier.{tier.value}"), price=str(rule.annual_fee),
                         date=self.date(until)))
        widget.set_classes("")

    def action_tender(self) -> None:
        self.tender = TENDERS[(TENDERS.index(self.tender) + 1) % len(TENDERS)]
        self.show()

    def action_confirm(self) -> None:
        choice = self.selected()
        if choice is None:
            self.notify(self.tr("fee.none"), severity="warning")
            return
        tier, _ = choice
        if self.already_paid(tier):
            self.notify(self.tr("fee.already_paid", tier=self.tr(f"tier.{tier.value}"),
                                date=self.date(self.card.view.state.fee_paid_until)), severity="warning")
            return
        self.start_operation(self.ops.membership_fee(self.card, tier, tender=self.tender,
                                                     cashier=self.capp.cashier))

    def on_operation_done(self, message: OperationDone) -> None:
        from terminal.ui.screens.receipt import ReceiptScreen

        self.busy = False
        self.capp.switch_screen(ReceiptScreen(message.kind, message.receipt, message.path))

    def action_cancel(self) -> None:
        self.dismiss(None)
