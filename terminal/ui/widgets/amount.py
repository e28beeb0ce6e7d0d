"""Number entry built for a numeric keypad: digits, one decimal point, backspace. Never a float.

The text typed is kept as a string and parsed with ``Money.parse`` only when read, so 12.5 and 12.50 are the
same amount, and a decimal beyond what the currency allows is refused by the keypad itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from cardkit.core.money import Money, exponent_of
from cardkit.errors import MoneyError

MAX_DIGITS = 9  # 9,999,999.99 is far beyond any single counter operation


class NumberEntry(Widget, can_focus=True):
    DEFAULT_CSS = """
    NumberEntry { height: 3; width: 26; border: tall $panel-lighten-2; padding: 0 1; content-align: right middle; }
    NumberEntry:focus { border: tall $success; }
    """

    text: reactive[str] = reactive("")

    @dataclass
    class Changed(Message):
        entry: NumberEntry

    def __init__(self, *, decimals: int = 0, suffix: str = "", id: str | None = None) -> None:
        super().__init__(id=id)
        self.decimals = decimals
        self.suffix = suffix

    def render(self) -> Text:
        shown = self.text or "0"
        return Text(f"{shown} {self.suffix}".rstrip(), style="bold")

    def set_text(self, text: str) -> None:
        self.text = text
        self.post_message(self.Changed(self))

    @property
    def integer(self) -> int:
        """The whole-number value (points); 0 when empty."""
        whole = self.text.partition(".")[0]
        return int(whole) if whole else 0

    def on_key(self, event: events.Key) -> None:
        char = event.character or ""
        new: str | None = None
        if len(char) == 1 and char.isdigit():
            whole, _, frac = self.text.partition(".")
            if "." in self.text:
                if len(frac) < self.decimals:
                    new = self.text + char
            elif len(whole) < MAX_DIGITS:
                new = (self.text + char).lstrip("0") or "0"
        elif char in {".", ","} and self.decimals and "." not in self.text:
            new = (self.text or "0") + "."
        elif event.key == "backspace":
            new = self.text[:-1]
        elif event.key == "delete":
            new = ""
        if new is not None:
            event.stop()
            event.prevent_default()
            self.set_text(new)


class AmountEntry(NumberEntry):
    """A money amount in ``currency``; ``amount`` is None until a positive amount has been typed."""

    def __init__(self, currency: str, *, id: str | None = None) -> None:
        super().__init__(decimals=exponent_of(currency), suffix=currency, id=id)
        self.currency = currency

    @property
    def amount(self) -> Money | None:
        if not self.text or self.text == ".":
            return None
        try:
            value = Money.parse(self.text, self.currency)
        except MoneyError:
            return None
        return value if value.minor > 0 else None
