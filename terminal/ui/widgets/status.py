"""The two always-visible bars: the top bar (screen title, cashier, clock) and the status bar (reader,
network, sync queue, last sync, and the receipt printer when there is one). Every state is spelled out in words;
colour only repeats what the words say.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, cast

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

if TYPE_CHECKING:
    from terminal.ui.app import CashierApp


def clock_text(app: CashierApp, epoch_ms: int, fmt: str = "%H:%M") -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=app.services.tz).strftime(fmt)


def when_text(app: CashierApp, epoch_ms: int) -> str:
    """``14:05`` for today, ``09-20 14:05`` for another day: an old sync must not look recent."""
    same_day = clock_text(app, epoch_ms, "%Y-%m-%d") == clock_text(app, app.services.clock(), "%Y-%m-%d")
    return clock_text(app, epoch_ms, "%H:%M" if same_day else "%m-%d %H:%M")


class TopBar(Horizontal):
    """``cardpos · <title>`` on the left, ``<cashier> · <time>`` on the right."""

    DEFAULT_CSS = """
    TopBar { height: 1; dock: top; }
    TopBar #top-title { width: 1fr; }
    TopBar #top-right { width: auto; }
    """

    def __init__(self, title: str) -> None:
        super().__init__()
        self._title = title

    def compose(self) -> ComposeResult:
        yield Static(self._title, id="top-title")
        yield Static("", id="top-right")

    def on_mount(self) -> None:
        self.update_status()

    def update_status(self) -> None:
        app = cast("CashierApp", self.app)
        tr = app.tr
        now = clock_text(app, app.services.clock(), "%Y-%m-%d %H:%M:%S")
        who = tr("status.no_cashier")
        if app.cashier is not None:
            who = tr("status.cashier", name=app.cashier.name, role=tr(f"role.{app.cashier.role}"))
        # The 1 s status timer can fire while a new screen is still composing this bar: nothing to update yet.
        text = f"{who} · {now}"
        for right in self.query("#top-right").results(Static):
            if right.content != text:  # refreshed on every screen change too; unchanged text needs no layout
                right.update(text)


SEPARATOR = " │ "


class StatusBar(Static):
    """Reader, network, queue depth and last sync, each with a text label."""

    DEFAULT_CSS = """
    StatusBar { height: auto; max-height: 2; }
    """

    def on_mount(self) -> None:
        self.update_status()

    def update_status(self) -> None:
        text = self.render_status()
        if text != self.content:  # refreshed on every screen change and each second, mostly unchanged
            self.update(text)

    def render_status(self) -> Text:
        app = cast("CashierApp", self.app)
        tr = app.tr
        parts: list[tuple[str, str]] = []
        reader_state = app.reader_state
        reader_style = {"connected": "status-ok", "reconnecting": "status-warn"}.get(reader_state, "status-bad")
        parts.append((tr("status.reader", state=tr(f"reader_state.{reader_state}")), reader_style))
        sync = app.sync_status
        if sync is None:
            parts.append((tr("status.net_none"), "status-warn"))
        elif sync.online:
            parts.append((tr("status.net_online"), "status-ok"))
        elif sync.offline_since_ms:
            parts.append((tr("status.net_offline_since", since=when_text(app, sync.offline_since_ms)), "status-bad"))
        else:
            parts.append((tr("status.net_offline"), "status-bad"))
        parts.append((tr("status.queue", depth=app.queue_depth), "status-warn" if app.queue_depth else "status-ok"))
        last_sync = sync.last_sync_ms if sync is not None and sync.last_sync_ms else app.stored_last_sync_ms
        if last_sync:
            parts.append((tr("status.last_sync", at=when_text(app, last_sync)), ""))
        else:
            parts.append((tr("status.never_synced"), ""))
        if app.ops.has_printer:
            parts.append(self.printer_part(app))
        # Parts go on a second line whole when the first is full, never wrapped in the middle of one.
        width = self.content_size.width or app.size.width - 2
        text = Text()
        used = 0
        for i, (words, css_class) in enumerate(parts):
            if i and used + cell_len(SEPARATOR) + cell_len(words) > width:
                text.append("\n")
                used = 0
            elif i:
                text.append(SEPARATOR, style="dim")
                used += cell_len(SEPARATOR)
            style = self.get_component_rich_style(css_class, partial=True) if css_class else ""
            text.append(words, style=style)
            used += cell_len(words)
        return text

    @staticmethod
    def printer_part(app: CashierApp) -> tuple[str, str]:
        """``Printer: OUT OF PAPER, #12 not printed``: the printer's state, and the last receipt it did not print."""
        tr = app.tr
        state = app.printer_state
        words = tr("status.printer", state=tr(f"printer.state.{state}"))
        if app.unprinted:
            words = tr("status.printer_unprinted", printer=words, label=list(app.unprinted.values())[-1])
        style = {"ready": "status-ok", "printing": "status-warn", "paper_low": "status-warn"}.get(state, "status-bad")
        return words, "status-bad" if app.unprinted else style

    COMPONENT_CLASSES: ClassVar[set[str]] = {"status-ok", "status-warn", "status-bad"}
