"""The technician screen: reader diagnostics, sync status and log, document versions, and a self-test that
taps a test card through the real verify path.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from textual import work
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from cardkit.cards.verdict import RejectReason
from cardkit.errors import CardposError
from terminal.ui.messages import DocumentsLoaded, QueryFailed, QueryName, SelfTestDone, SyncDone
from terminal.ui.screens.base import CashierScreen
from terminal.ui.view import fit_lines, pack
from terminal.ui.widgets import Plain
from terminal.ui.widgets.status import clock_text

PROBE_WAIT_S = 2.0
"""How long a probe waits for the reader's STATUS answer before saying there was none."""


@dataclass
class ProbeDone(Message):
    """A probe's outcome: whether a STATUS frame came back, and the reader's firmware and state then."""

    answered: bool
    firmware: str
    state: str


QUARANTINED_SHOWN = 8


class TechnicianScreen(CashierScreen):
    TITLE_KEY = "tech.title"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sync_now", "Sync now"),
        Binding("t", "self_test", "Self-test"),
        Binding("p", "probe", "Probe reader"),
        Binding("escape", "back", "Back"),
    ]

    def compose_body(self) -> Iterable[Widget]:
        tr = self.tr
        # One column, each fact whole: side-by-side boxes of 37 cells cut the port and the counters at 80x24.
        yield Plain(tr("tech.reader"), classes="section")
        yield Plain(id="tech-reader")
        yield Plain(tr("shift.loading"), id="tech-docs")
        yield Plain(tr("tech.sync"), classes="section")
        yield Plain(id="tech-sync", classes="prose")  # the ledger's error sentences flow over lines
        yield Plain(tr("tech.selftest"), classes="section")
        yield Plain(tr("tech.selftest_idle"), id="tech-selftest")

    def on_mount(self) -> None:
        self.show_reader()
        self.show_sync()
        self.load(self.ops.documents())
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        self.show_reader()
        self.show_sync()

    def show_reader(self) -> None:
        tr = self.tr
        s = self.ops.reader_stats()
        if s is None:
            self.query_one("#tech-reader", Static).update(tr("tech.no_reader"))
            return
        width = self.body_width()
        port = tr("tech.port", port=s.port, baud=s.baud)
        if cell_len(port) > width:  # a long device path: its end names the device
            keep = width - cell_len(tr("tech.port", port="…", baud=s.baud))
            port = tr("tech.port", port="…" + s.port[-keep:], baud=s.baud)
        parts = [
            tr("tech.state", state=tr(f"reader_state.{s.state.value}")),
            tr("tech.frames", frames=s.frames, crc=s.crc_errors, resyncs=s.resyncs),
            tr("tech.reconnects", n=s.reconnects, cards=s.cards),
            tr("tech.last_raw", hex=(s.last_raw_hex[:22] + "…") if len(s.last_raw_hex) > 22 else s.last_raw_hex),
        ]
        error = "\n".join(fit_lines(tr("tech.last_error", error=s.last_error or tr("member.none")), width))
        self.query_one("#tech-reader", Static).update("\n".join([port, pack(parts, width, indent=""), error]))

    def show_sync(self) -> None:
        tr = self.tr
        status = self.capp.sync_status
        if status is None:
            text = tr("tech.no_sync")
        else:
            last = clock_text(self.capp, status.last_sync_ms, "%H:%M:%S") if status.last_sync_ms else "—"
            text = tr("tech.sync_line", online=tr("tech.online") if status.online else tr("tech.offline"),
                      depth=status.queue_depth, last=last,
                      error=self.capp.sync_problem(status.last_error) if status.last_error else tr("member.none"))
            if status.quarantined:
                text += "\n" + self.quarantined_line(status.quarantined)
        log = list(self.capp.sync_log)[-3:]
        self.query_one("#tech-sync", Static).update("\n".join([text, *log]))

    def quarantined_line(self, seqs: tuple[int, ...]) -> str:
        """Entries the ledger journaled but would not apply: the newest few seqs (the ledger's admins have them
        all in ``cardpos ledger quarantine list``)."""
        shown = ", ".join(str(s) for s in seqs[-QUARANTINED_SHOWN:])
        more = "…, " if len(seqs) > QUARANTINED_SHOWN else ""
        return self.tr("tech.quarantined", n=len(seqs), seqs=more + shown)

    def on_documents_loaded(self, message: DocumentsLoaded) -> None:
        tr = self.tr
        versions = message.versions
        names = ("trust", "revocations", "rules", "members")
        held = [tr("tech.doc_version", name=tr(f"doc.{name}"), version=versions.get(name, 0)) for name in names]
        held[0] = tr("tech.documents_line", first=held[0])
        self.query_one("#tech-docs", Static).update(pack(held, self.body_width()))

    def on_self_test_done(self, message: SelfTestDone) -> None:
        tr = self.tr
        verdict = message.result.verdict
        if verdict.accepted:
            self.query_one("#tech-selftest", Static).update(tr("tech.selftest_ok"))
        else:
            reason = verdict.reason or RejectReason.MALFORMED  # as the counter journals a reasonless refusal
            self.query_one("#tech-selftest", Static).update(
                tr("tech.selftest_bad", reason=tr(f"reason.{reason.value}")))

    def on_sync_done(self, _: SyncDone) -> None:
        self.notify(self.tr("tech.sync_done"))
        self.load(self.ops.documents())

    def on_query_failed(self, message: QueryFailed) -> None:
        if message.what == QueryName.SELF_TEST:
            self.query_one("#tech-selftest", Static).update(self.tr("tech.selftest_failed", text=message.text))
            message.prevent_default()
        elif message.what == QueryName.PROBE:
            self.notify(self.tr("tech.probe_failed", text=message.text), severity="error")
            message.prevent_default()

    def on_probe_done(self, message: ProbeDone) -> None:
        tr = self.tr
        self.show_reader()
        if message.answered:
            self.notify(tr("tech.probe_answered", firmware=message.firmware or "?",
                           state=tr(f"reader_state.{message.state}")))
        else:
            self.notify(tr("tech.probe_silent", seconds=f"{PROBE_WAIT_S:g}"), severity="warning")

    def action_sync_now(self) -> None:
        sync_now = self.ops.sync_now()
        if sync_now is None:
            self.notify(self.tr("tech.no_sync"), severity="warning")
            return
        self.load(sync_now)

    def action_self_test(self) -> None:
        self_test = self.ops.self_test()
        if self_test is None:
            self.query_one("#tech-selftest", Static).update(self.tr("tech.selftest_no_card"))
            return
        self.query_one("#tech-selftest", Static).update(self.tr("tech.selftest_running"))
        self.load(self_test)

    def action_probe(self) -> None:
        if not self.ops.has_reader:
            self.notify(self.tr("tech.no_reader"), severity="warning")
            return
        self.notify(self.tr("tech.probe_sent"))
        self._probe()

    @work(thread=True, exclusive=True, group="probe")
    def _probe(self) -> None:
        # The answer is a STATUS frame, counted by the driver: wait a moment for the count to move.
        before = self.ops.reader_stats()
        try:
            self.ops.probe_reader()
        except CardposError as exc:
            self.post_message(QueryFailed(QueryName.PROBE, str(exc)))
            return
        deadline = time.monotonic() + PROBE_WAIT_S
        now = before
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.ops.reader_stats()
            if now is not None and before is not None and now.heartbeats > before.heartbeats:
                self.post_message(ProbeDone(True, now.firmware, now.state.value))
                return
        self.post_message(ProbeDone(False, now.firmware if now else "", now.state.value if now else "none"))

    def action_back(self) -> None:
        self.dismiss(None)
