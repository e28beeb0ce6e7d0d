"""Sign-up at the till: a new member's name, phone, optional birthday, consents (the wording is shown) and language,
keyboard only. Confirm journals the sign-up under a provisional member id; then the member's card is asked for
and written to the blank card on the reader when the terminal can (else it waits, and the screen says so)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from textual import events, on
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Input

from terminal.service.signup_form import CONSENT_WORDING, SIGNUP_LANGUAGES, SignupForm
from terminal.ui.messages import OperationDone, SignupCardDone
from terminal.ui.screens.card_code import CardCodeScreen
from terminal.ui.widgets import Plain
from terminal.ui.widgets.qrcode import QrCodeBox

if TYPE_CHECKING:
    from terminal.service.newcard import NewCardState
    from terminal.service.receipt import Receipt

FIELDS = ("signup-name", "signup-phone", "signup-birthday")


class SignupScreen(CardCodeScreen):
    qr_hint_id = "signup-qr-hint"

    TITLE_KEY = "signup.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "confirm", "Confirm"),
        Binding("f5", "toggle_sms", "SMS"),
        Binding("f6", "toggle_mail", "Mail"),
        Binding("f7", "toggle_language", "Language"),
        Binding("f7", "toggle_qr_blocks", "Code size"),  # once the form is done and the card's code is shown
        Binding("f8", "write_again", "Write card"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sms = False
        self.mail = False
        self.language = "zh"
        self.receipt: Receipt | None = None
        self.card_state: NewCardState | None = None
        self.asking = False

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        with Horizontal(id="signup-body"):
            with Vertical(id="signup-form"):
                for field, label in zip(FIELDS, ("signup.name", "signup.phone", "signup.birthday"), strict=True):
                    with Horizontal(classes="signup-row signup-entry"):
                        yield Plain(tr(label), classes="signup-label")
                        yield Input(id=field, placeholder=tr(f"{label}_placeholder"))
                yield Plain("", id="signup-choices", classes="signup-entry")
                yield Plain("", id="signup-wording", classes="hint signup-entry")
                yield Plain("", id="signup-result", classes="prose")
                yield Plain(tr("signup.keys"), id="signup-keys", classes="hint")
                yield Plain("", id="signup-qr-hint", classes="hint prose")
            yield QrCodeBox(id="signup-qr-box", code_id="signup-qr")  # the issued card's text form, no reader wrote it

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#signup-name", Input).focus()
        self._hide_qr()
        self._show_choices()

    # -- the form ---------------------------------------------------------------------------------------------
    def _show_choices(self) -> None:
        tr = self.tr
        mark = {True: tr("signup.yes"), False: tr("signup.no")}
        self.query_one("#signup-choices", Plain).update(tr(
            "signup.choices", sms=mark[self.sms], mail=mark[self.mail],
            language=tr(f"receipt.value.language_{self.language}")))
        wording = tr(f"consent.{CONSENT_WORDING}")
        self.query_one("#signup-wording", Plain).update(tr("signup.wording", text=wording))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        done = self.receipt is not None
        if action == "write_again":
            return done and self.capp.ops.has_reader
        if action in ("confirm", "toggle_sms", "toggle_mail", "toggle_language"):
            return not done
        if action == "toggle_qr_blocks":
            return self._qr_action_enabled()
        return True

    def action_toggle_sms(self) -> None:
        self.sms = not self.sms
        self._show_choices()

    def action_toggle_mail(self) -> None:
        self.mail = not self.mail
        self._show_choices()

    def action_toggle_language(self) -> None:
        self.language = SIGNUP_LANGUAGES[(SIGNUP_LANGUAGES.index(self.language) + 1) % len(SIGNUP_LANGUAGES)]
        self._show_choices()

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        event.stop()
        field = event.input.id or ""
        if field in FIELDS[:-1]:
            self.query_one(f"#{FIELDS[FIELDS.index(field) + 1]}", Input).focus()
        else:
            self.action_confirm()

    @on(Input.Changed)
    def _typed(self) -> None:
        if self.receipt is None:
            self.query_one("#signup-result", Plain).update("")  # a stale message goes once the cashier types

    def on_key(self, event: events.Key) -> None:
        if self.receipt is not None and event.key == "enter":  # done: Enter goes back like Esc
            event.stop()
            self.action_cancel()

    def action_confirm(self) -> None:
        if self.receipt is not None:
            return
        value = {field: self.query_one(f"#{field}", Input).value for field in FIELDS}
        empty = [field for field in FIELDS[:2] if not value[field].strip()]
        if empty:
            self.query_one(f"#{empty[0]}", Input).focus()
            self.query_one("#signup-result", Plain).update(self.tr("signup.missing"))
            return
        form = SignupForm(name=value["signup-name"], phone=value["signup-phone"],
                          birthday=value["signup-birthday"].strip() or None, language=self.language,
                          sms=self.sms, mail=self.mail)
        self.start_operation(self.ops.signup(form, cashier=self.capp.cashier))

    # -- after the journal ------------------------------------------------------------------------------------
    def on_operation_done(self, message: OperationDone) -> None:
        self.busy = False
        self.receipt = message.receipt
        for field in FIELDS:
            self.query_one(f"#{field}", Input).disabled = True
        member = str(message.receipt.payload["member"])
        self.query_one("#signup-result", Plain).update(self.tr("signup.done", member=member)
                                                        + "\n" + self.tr("signup.card_asking"))
        self.query_one("#signup-keys", Plain).update(self.tr("signup.keys_done"))
        self.refresh_bindings()
        self.asking = True
        self.load(self.ops.signup_card(message.receipt))

    def on_signup_card_done(self, message: SignupCardDone) -> None:
        from cardkit.cards.textform import token_to_text

        state = message.state
        self.card_state = state
        self.asking = False
        self._hide_qr()
        shows_qr = state.stage.value == "issued" and state.card is not None
        for entry in self.query(".signup-entry"):  # the form is done: the card's code takes its room
            entry.display = not shows_qr
        if shows_qr and state.card is not None:
            text = token_to_text(state.card.token)
            self._show_qr(text, self.capp.qr_blocks)
            if not self.ops.has_reader:  # no reader will ever write it here: the printer gives it on paper
                self.capp.print_card_qr(state.card.card_id, text)
        tr = self.tr
        member = state.card.member_id if state.card is not None else state.member_id
        head = tr("signup.done", member=state.member_id)
        if state.stage.value == "written":
            line = tr("signup.card_written", card=state.card.card_id if state.card else "", member=member)
        elif state.stage.value == "issued" and not self.ops.has_reader:
            line = tr("signup.card_no_reader", card=state.card.card_id if state.card else "")
            self.query_one("#signup-keys", Plain).update(tr("signup.keys_done_no_reader"))  # no F8 without one
        elif state.stage.value == "issued":
            line = tr("signup.card_not_written", card=state.card.card_id if state.card else "",
                      reason=state.last_error or tr("signup.no_reader"))
        else:
            line = tr("signup.card_queued")
        self.query_one("#signup-result", Plain).update(f"{head}\n{line}")
        self.refresh_bindings()

    def blank_card_presented(self) -> None:
        """The app saw a blank card put on the reader: write the waiting card to it."""
        state = self.card_state
        if not self.asking and self.ops.has_reader and state is not None and state.stage.value == "issued":
            self.action_write_again()

    def action_write_again(self) -> None:
        if self.receipt is not None and not self.asking:
            self.asking = True
            self.query_one("#signup-result", Plain).update(self.tr("signup.card_asking"))
            self.load(self.ops.signup_card(self.receipt))

    def action_cancel(self) -> None:
        self.capp.return_to_idle()
