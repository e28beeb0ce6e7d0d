"""Widgets shared by the cashier screens."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static


class Plain(Static):
    """A Static that shows text as given: names, notes and error sentences may contain ``[`` and must never be
    read as Rich markup."""

    def __init__(self, content: Any = "", **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        super().__init__(content, **kwargs)

    def update(self, content: Any = "", *, layout: bool = True) -> None:
        # Screens refresh every figure when they reload (after each sale); the same text again would only cost a
        # layout pass and a repaint of the whole screen.
        if isinstance(content, str) and isinstance(self.content, str) and content == self.content:
            return
        super().update(content, layout=layout)
