"""Cashier sign-in: id + PIN, checked against the salted hashes in the terminal store (with lockout)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import Input, Static

from cardkit.errors import CardposError
from terminal.ui.messages import SignedIn, SignInRefused
from terminal.ui.screens.base import CashierScreen
from terminal.ui.widgets import Plain


class SignInScreen(CashierScreen):
    TITLE_KEY = "signin.title"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+q", "app.quit", "Quit")]

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        yield Plain(tr("signin.prompt"), classes="prompt")
        yield Input(placeholder=tr("signin.cashier_id"), id="cashier-id")
        yield Input(placeholder=tr("signin.pin"), password=True, id="pin")
        yield Plain("", id="signin-error", classes="error prose")
        yield Plain(tr("signin.keys"), classes="hint")
        accounts = self.capp.demo.accounts() if self.capp.demo is not None else []
        if accounts:  # demo mode: a newcomer reads the PINs here rather than hunting for a start-up line
            yield Plain(tr("signin.demo") + "\n" + "    ".join(
                tr("signin.demo_account", role=tr(f"role.{role}"), id=cashier_id, pin=pin)
                for role, cashier_id, pin in accounts), id="signin-demo", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#cashier-id", Input).focus()

    @on(Input.Submitted, "#cashier-id")
    def _to_pin(self) -> None:
        self.query_one("#pin", Input).focus()

    @on(Input.Changed)
    def _typing(self, event: Input.Changed) -> None:
        # A refusal is about what was typed before: gone once the cashier types again (the refusal itself
        # empties the PIN field, which is no typing).
        if event.value:
            self.query_one("#signin-error", Static).update("")

    @on(Input.Submitted, "#pin")
    def _submit(self) -> None:
        cashier_id = self.query_one("#cashier-id", Input).value.strip()
        pin = self.query_one("#pin", Input).value
        if not cashier_id or not pin:
            self.query_one("#signin-error", Static).update(self.tr("signin.missing"))
            return
        self._check(cashier_id, pin)

    @work(thread=True, exclusive=True, group="auth")
    def _check(self, cashier_id: str, pin: str) -> None:
        try:
            cashier = self.capp.authenticate(cashier_id, pin)
        except CardposError as exc:
            self.post_message(SignInRefused(str(exc)))
            return
        self.post_message(SignedIn(cashier))

    def on_sign_in_refused(self, message: SignInRefused) -> None:
        self.query_one("#signin-error", Static).update(self.tr("signin.refused", reason=message.text))
        pin = self.query_one("#pin", Input)
        pin.value = ""
        pin.focus()

    def on_signed_in(self, message: SignedIn) -> None:
        self.capp.signed_in(message.cashier)
