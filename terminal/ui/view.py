"""How the screens read the counter's values (member view, history lines) as plain strings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text

from cardkit.cards.verdict import CardClaims
from cardkit.core.members import Coupon

if TYPE_CHECKING:
    from textual.widgets import DataTable

    from terminal.i18n import Words
    from terminal.service.views import MemberView, OperationView


@dataclass(frozen=True)
class Tapped:
    """An accepted card: the verified claims (what operations act on) and the member as the counter sees them."""

    claims: CardClaims
    view: MemberView

    @property
    def card_id(self) -> str:
        return self.claims.card_id

    @property
    def name(self) -> str:
        return self.view.name or self.view.member_id

    @property
    def tier(self) -> str:
        return self.view.tier.value


def coupon_text(coupon: Coupon) -> str:
    if coupon.amount_off is not None:
        off = f"-{coupon.amount_off.to_decimal_string()}"
    elif coupon.percent_off_bp is not None:
        whole, frac = divmod(coupon.percent_off_bp, 100)
        off = f"-{whole}%" if not frac else f"-{whole}.{frac:02d}%"
    else:
        off = ""
    spend = f" ≥{coupon.min_spend.to_decimal_string()}" if coupon.min_spend else ""
    return f"{coupon.coupon_id} {off}{spend}".strip()


@dataclass(frozen=True)
class HistoryLine:
    uuid: str
    seq: int
    when: str
    kind: str
    summary: str
    """In the screen's language."""
    synced: bool


def history_line(op: OperationView, tz: tzinfo | None, words: Words) -> HistoryLine:
    when = datetime.fromtimestamp(op.wall_ms / 1000, tz=tz).strftime("%m-%d %H:%M") if op.wall_ms else ""
    summary = words.say(op.phrase) if op.phrase is not None else op.summary
    return HistoryLine(uuid=op.uuid, seq=op.seq, when=when, kind=op.kind, summary=summary, synced=op.synced)


def fit_lines(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` cells, broken between words (and anywhere in a run without spaces,
    such as Chinese), so a table cell or a label can show all of it at 80 columns instead of cutting it."""
    width = max(width, 2)
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if cell_len(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for char in word:  # a word (or a Chinese phrase) wider than the line is broken where it must be
            if cell_len(line + char) > width:
                lines.append(line)
                line = ""
            line += char
    lines.append(line)
    return lines


def pack(parts: list[str], width: int, sep: str = " · ", indent: str = "  ") -> str:
    """Parts joined by ``sep`` on lines of at most ``width`` cells, never breaking inside a part (each part is
    then broken with ``fit_lines`` only if it alone is wider than a line); later lines start with ``indent``."""
    lines: list[str] = []
    line = ""
    for part in parts:
        candidate = f"{line}{sep}{part}" if line else part
        if cell_len(candidate) <= width or not line:
            line = candidate
        else:
            lines.append(line)
            line = indent + part
        if cell_len(line) > width:
            *whole, line = fit_lines(line, width)
            lines.extend(whole)
    lines.append(line)
    return "\n".join(lines)


HISTORY_WHEN_CELLS = 11
"""``09-21 14:13``"""
SCROLLBAR_CELLS = 2
"""Kept free in a table for its scroll bar, which appears once its rows outgrow it."""


def history_table(table: DataTable[Any], lines: Sequence[HistoryLine], words: Words, width: int, *,
                  kind: Callable[[HistoryLine], str] | None = None) -> None:
    """Fill a table of operations (when, kind or ref, what) that fits ``width`` cells: the second column is as
    wide as its longest value, the summary takes the rest and runs onto more lines rather than being cut."""
    second: Callable[[HistoryLine], str] = kind or (lambda line: f"#{line.seq}")
    heading = words("history.kind") if kind is not None else words("history.ref")
    values = [second(line) for line in lines]
    second_width = max([cell_len(heading), *(cell_len(v) for v in values)])
    padding = 2 * table.cell_padding
    summary_width = width - SCROLLBAR_CELLS - 3 * padding - HISTORY_WHEN_CELLS - second_width
    table.clear(columns=True)
    table.add_column(words("history.when"), width=HISTORY_WHEN_CELLS)
    table.add_column(heading, width=second_width)
    table.add_column(words("history.summary"), width=summary_width)
    for line, value in zip(lines, values, strict=True):
        summary = fit_lines(line.summary, summary_width)
        table.add_row(line.when, value, Text("\n".join(summary)), height=len(summary), key=line.uuid)
