"""Small dialogs over the current screen: a decline, a supervisor's PIN, a yes/no, the demo card wallet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from cardkit.errors import CardposError
from terminal.ui.i18n import translate_bindings
from terminal.ui.messages import SignedIn, SignInRefused
from terminal.ui.widgets import Plain
from terminal.ui.widgets.footer import CashierFooter

if TYPE_CHECKING:
    from terminal.ui.app import CashierApp
    from terminal.ui.i18n import Translator


class Dialog(ModalScreen[Any]):
    @property
    def capp(self) -> CashierApp:
        return cast("CashierApp", self.app)

    @property
    def tr(self) -> Translator:
        return self.capp.tr

    def on_mount(self) -> None:
        translate_bindings(self, self.tr)
        self.refresh_bindings()


class DeclineScreen(Dialog):
    """Why an operation was declined and what the cashier can do now."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "close", "OK"), Binding("escape", "close", "OK", show=False),
    ]

    def __init__(self, text: str, code: str) -> None:
        super().__init__()
        self.text = text
        self.code = code

    def compose(self) -> ComposeResult:
        tr = self.tr
        advice_key = f"decline.advice.{self.code}"
        advice = tr(advice_key) if tr.has(advice_key) else tr("decline.advice.default")
        title = tr("decline.failed_title") if self.code == "failed" else tr("decline.title")
        with Vertical(id="decline-box", classes="dialog bad"):
            yield Plain(title, id="decline-title", classes="dialog-title")
            yield Plain(tr("decline.why", text=self.text), id="decline-why", classes="prose")
            yield Plain(tr("decline.what", advice=advice), id="decline-what", classes="prose")
            yield Plain(tr("decline.close"), classes="hint")
        yield CashierFooter()

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmScreen(Dialog):
    """A yes/no question; dismisses with True (Enter) or False (Esc)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "yes", "Yes"), Binding("escape", "no", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Plain(self.question, id="confirm-question", classes="prose")
            yield Plain(self.tr("confirm.keys"), classes="hint")
        yield CashierFooter()

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class SupervisorScreen(Dialog):
    """A supervisor authorises one refund/void/override with their own id and PIN, at the moment of use.

    Dismisses with the approving ``Cashier`` (role checked), or None when cancelled.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, purpose: str, *, roles: tuple[str, ...] = ("supervisor",)) -> None:
        super().__init__()
        self.purpose = purpose
        self.roles = roles

    @property
    def _words(self) -> str:
        """Whose sign-in this asks for: a supervisor's, or (technician screen) a technician's or supervisor's."""
        return "supervisor.staff_" if "technician" in self.roles else "supervisor."

    def compose(self) -> ComposeResult:
        tr = self.tr
        with Vertical(classes="dialog"):
            yield Plain(tr(self._words + "title"), classes="dialog-title")
            yield Plain(self.purpose, classes="prose")
            yield Input(placeholder=tr(self._words + "id"), id="sup-id")
            yield Input(placeholder=tr(self._words + "pin"), password=True, id="sup-pin")
            yield Plain("", id="sup-error", classes="error prose")
            yield Plain(tr("supervisor.keys"), classes="hint")
        yield CashierFooter()

    @on(Input.Submitted, "#sup-id")
    def _to_pin(self) -> None:
        self.query_one("#sup-pin", Input).focus()

    @on(Input.Changed)
    def _typing(self, event: Input.Changed) -> None:
        if event.value:  # the refusal was about the id and PIN typed before
            self.query_one("#sup-error", Static).update("")

    @on(Input.Submitted, "#sup-pin")
    def _submit(self) -> None:
        sup_id = self.query_one("#sup-id", Input).value.strip()
        pin = self.query_one("#sup-pin", Input).value
        if not sup_id or not pin:
            self.query_one("#sup-error", Static).update(self.tr(self._words + "missing"))
            return
        self._check(sup_id, pin)

    @work(thread=True, exclusive=True, group="auth")
    def _check(self, sup_id: str, pin: str) -> None:
        try:
            cashier = self.capp.authorize(sup_id, pin, self.roles)
        except CardposError as exc:
            self.post_message(SignInRefused(str(exc)))
            return
        self.post_message(SignedIn(cashier))

    def on_signed_in(self, message: SignedIn) -> None:
        message.stop()
        self.dismiss(message.cashier)

    def on_sign_in_refused(self, message: SignInRefused) -> None:
        message.stop()
        self.query_one("#sup-error", Static).update(message.text)
        pin = self.query_one("#sup-pin", Input)
        pin.value = ""
        pin.focus()

    def action_cancel(self) -> None:
        self.dismiss(None)


class DemoTapScreen(Dialog):
    """Demo mode: pick a simulated wallet card to tap on the simulated reader."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Close")]

    def compose(self) -> ComposeResult:
        tr = self.tr
        demo = self.capp.demo
        options = [
            Option(f"{index}  {label}  ({tr('demo.kind.' + kind) if tr.has('demo.kind.' + kind) else kind})",
                   id=str(index))
            for index, label, kind in (demo.cards() if demo else [])
        ]
        with Vertical(classes="dialog"):
            yield Plain(tr("demo.title"), classes="dialog-title")
            yield OptionList(*options, id="demo-cards")
            yield Plain(tr("demo.keys"), classes="hint")
        yield CashierFooter()

    @on(OptionList.OptionSelected)
    def _tap(self, event: OptionList.OptionSelected) -> None:
        index = int(event.option.id or "0")
        self.capp.demo_tap(index)
        self.dismiss(index)

    def action_cancel(self) -> None:
        self.dismiss(None)
