"""The cashier and technician app.

Threads: the reader device delivers events on its own thread and the sync service reports status on its own;
both reach the UI only through ``call_from_thread(post_message, ...)``. Card checks, journal writes and queries
run in thread workers that post small messages back (``terminal/ui/messages.py``), so typing never waits for
SQLite, a serial port or the network.
"""

from __future__ import annotations

import contextlib
import re
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType

from cardkit.cards.verdict import RejectReason
from cardkit.errors import CardposError
from terminal.reader.events import CardPresented, ReaderEvent, ReaderStatus
from terminal.ui.demo import DemoTapper
from terminal.ui.i18n import Translator
from terminal.ui.messages import (
    QueueDepthRead,
    ReaderEventArrived,
    SyncStatusChanged,
    TapFailed,
    TapVerified,
)
from terminal.ui.ops import TerminalOps
from terminal.ui.services import AppServices, not_allowed
from terminal.ui.widgets.status import StatusBar, TopBar

if TYPE_CHECKING:
    from cardkit.cards.verdict import Verdict
    from terminal.service.receipt import Receipt
    from terminal.service.zreport import ZReport
    from terminal.ui.services import Cashier, SyncStatus

SYNC_LOG_LINES = 50
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


class CashierApp(App[None]):
    CSS_PATH = "cashier.tcss"
    TITLE = "cardpos"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(self, services: AppServices, *, lang: str = "en", demo: DemoTapper | None = None) -> None:
        super().__init__()
        self.services = services
        self.ops = TerminalOps(services)
        """Every call the app and its screens make on the counter, store, reader and sync service."""
        self.tr = Translator(lang)
        self.demo = demo
        self.cashier: Cashier | None = None
        self.shift_opened_ms: int | None = None
        self.shift_id: str | None = None
        self.reader_state = "reconnecting" if self.ops.has_reader else "none"
        self.reader_detail = ""
        self.sync_status: SyncStatus | None = services.sync_status.last
        self.sync_log: deque[str] = deque(maxlen=SYNC_LOG_LINES)
        self.queue_depth = 0
        self.stored_last_sync_ms: int | None = None
        self.tap_in_progress = False
        self.last_verdict: Verdict | None = None
        self._closed = False

    # -- start and stop -------------------------------------------------------------------------------------
    def on_mount(self) -> None:
        from terminal.ui.screens.signin import SignInScreen

        self.services.reader_events.attach(self._from_reader_thread)
        self.services.sync_status.attach(self._from_sync_thread)
        if isinstance(self.services.reader_events.last, ReaderStatus):
            self.reader_state = self.services.reader_events.last.state.value
        self.push_screen(SignInScreen())
        self.set_interval(1.0, self.refresh_status)
        self.set_interval(5.0, self._read_queue_depth)
        self._read_queue_depth()
        self._start_services()

    @work(thread=True, group="services")
    def _start_services(self) -> None:
        # Opening a serial port or the first sync can take seconds: never on the UI thread.
        try:
            self.ops.start_reader()
        except CardposError as exc:
            self.post_message(ReaderEventArrived(_status_error(str(exc))))
        try:
            self.ops.start_sync()
        except CardposError as exc:
            self.post_message(TapFailed(str(exc)))

    def on_unmount(self) -> None:
        self.close_services()

    def close_services(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.services.reader_events.attach(None)
        self.services.sync_status.attach(None)
        self.ops.close()

    # -- events from other threads ----------------------------------------------------------------------------
    def _from_reader_thread(self, event: ReaderEvent) -> None:
        # post_message is thread-safe and only queues: call_from_thread would also wait for the UI loop to run
        # it, holding the reader thread (and its heartbeat timing) hostage to a busy screen.
        self.post_message(ReaderEventArrived(event))

    def _from_sync_thread(self, status: SyncStatus) -> None:
        self.post_message(SyncStatusChanged(status))

    def on_reader_event_arrived(self, message: ReaderEventArrived) -> None:
        event = message.event
        if isinstance(event, ReaderStatus):
            self.reader_state = event.state.value
            self.reader_detail = event.detail
            self.refresh_status()
        elif isinstance(event, CardPresented):
            self.check_card(event.token, manual=False, challenge_capable=event.challenge_capable)

    def on_sync_status_changed(self, message: SyncStatusChanged) -> None:
        status = message.status
        previous = self.sync_status
        self.sync_status = status
        self.queue_depth = int(status.queue_depth)
        error = status.last_error
        synced = bool(status.last_sync_ms) and (previous is None or previous.last_sync_ms != status.last_sync_ms)
        if error and (previous is None or previous.last_error != error):
            self.sync_log.append(f"{self.clock_text('%H:%M:%S')} {error}")
        elif synced:
            self.sync_log.append(f"{self.clock_text('%H:%M:%S')} {self.tr('tech.sync_ok', depth=self.queue_depth)}")
        if synced:  # also when the sync reported a refused document: the others it applied are in use now
            self._reload_documents()
        self.refresh_status()

    @work(thread=True, exclusive=True, group="documents")
    def _reload_documents(self) -> None:
        try:
            self.ops.reload_documents()
        except CardposError as exc:
            self.sync_log.append(str(exc))

    @work(thread=True, exclusive=True, group="queue")
    def _read_queue_depth(self) -> None:
        try:
            depth, last_sync = self.ops.queue_status()
        except CardposError:
            return
        self.post_message(QueueDepthRead(depth, last_sync))

    def on_queue_depth_read(self, message: QueueDepthRead) -> None:
        self.queue_depth = message.depth
        self.stored_last_sync_ms = message.last_sync_ms
        self.refresh_status()

    def refresh_status(self) -> None:
        for screen in self.screen_stack:
            for bar in screen.query(TopBar):
                bar.update_status()
            for status in screen.query(StatusBar):
                status.update_status()

    def clock_text(self, fmt: str = "%H:%M") -> str:
        from terminal.ui.widgets.status import clock_text

        return clock_text(self, self.services.clock(), fmt)

    # -- cashiers ----------------------------------------------------------------------------------------------
    def authenticate(self, cashier_id: str, pin: str) -> Cashier:
        """Sign a cashier in (called from a worker thread): the counter checks the PIN and journals the sign-in
        or the lockout. Raises a CardposError saying why (unknown id, wrong PIN with attempts left, locked)."""
        return self.ops.sign_in(cashier_id, pin)

    def authorize(self, cashier_id: str, pin: str, roles: tuple[str, ...]) -> Cashier:
        """A second person's approval at the moment of use (supervisor for refunds/voids; technician or
        supervisor for the technician screen). Raises a CardposError saying why it is refused."""
        if roles == ("supervisor",):
            return self.ops.authorize_supervisor(cashier_id, pin)
        person = self.ops.authenticate(cashier_id, pin)
        if person.role not in roles:
            raise not_allowed(self.tr("supervisor.not_allowed", who=cashier_id, role=person.role.value))
        return person

    def signed_in(self, cashier: Cashier) -> None:
        from terminal.ui.screens.idle import IdleScreen

        self.cashier = cashier
        if self.shift_id is None:
            now = self.services.clock()
            self.shift_opened_ms = now
            self.shift_id = f"{cashier.cashier_id}-{now}"
            self._open_shift(self.shift_id, cashier.cashier_id)
        self.switch_screen(IdleScreen())
        self.refresh_status()

    @work(thread=True, group="shift")
    def _open_shift(self, shift_id: str, cashier_id: str) -> None:
        try:
            self.ops.open_shift(shift_id, cashier_id=cashier_id)
        except CardposError as exc:
            self.post_message(TapFailed(str(exc)))

    def sign_out(self) -> None:
        from terminal.ui.screens.signin import SignInScreen

        self.cashier = None
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.switch_screen(SignInScreen())

    def close_shift(self) -> None:
        """Journal the shift's Z-report as ``shift_close``, keep it as a file next to the receipts, sign out."""
        if self.shift_id is not None and self.shift_opened_ms is not None:
            self._close_shift(self.shift_id, self.shift_opened_ms,
                              self.cashier.cashier_id if self.cashier is not None else None)
        self.shift_id = None
        self.shift_opened_ms = None
        self.sign_out()

    @work(thread=True, group="shift")
    def _close_shift(self, shift_id: str, since_ms: int, cashier_id: str | None) -> None:
        try:
            report = self.ops.close_shift(shift_id, since_ms, cashier_id=cashier_id)
        except CardposError as exc:
            self.post_message(TapFailed(str(exc)))
            return
        self.save_z_report(report)

    def open_technician(self) -> None:
        from terminal.ui.screens.dialogs import SupervisorScreen
        from terminal.ui.screens.technician import TechnicianScreen

        if self.cashier is not None and self.cashier.role in {"technician", "supervisor"}:
            self.push_screen(TechnicianScreen())
            return

        def approved(person: Cashier | None) -> None:
            if person is not None:
                self.push_screen(TechnicianScreen())

        self.push_screen(SupervisorScreen(self.tr("tech.needs_role"), roles=("technician", "supervisor")),
                         approved)

    # -- navigation --------------------------------------------------------------------------------------------
    def return_to_idle(self) -> None:
        from terminal.ui.screens.idle import IdleScreen

        while len(self.screen_stack) > 2 and not isinstance(self.screen, IdleScreen):
            self.pop_screen()

    # -- card taps ---------------------------------------------------------------------------------------------
    def accepts_tap(self) -> bool:
        from terminal.ui.screens.idle import IdleScreen
        from terminal.ui.screens.manual import ManualEntryScreen
        from terminal.ui.screens.member import MemberScreen
        from terminal.ui.screens.refusal import RefusalScreen

        return self.cashier is not None and isinstance(
            self.screen, IdleScreen | RefusalScreen | ManualEntryScreen | MemberScreen)

    def check_card(self, token: bytes, *, manual: bool, challenge_capable: bool = False) -> None:
        if not self.accepts_tap():
            self.notify(self.tr("tap.not_now"), severity="warning")
            return
        if self.tap_in_progress:
            return  # one card at a time; the reader already debounces repeats of the same card
        self.tap_in_progress = True
        self._set_checking(True)
        challenge = self.ops.reader_challenge() if challenge_capable else None
        self._verify(token, manual, challenge)

    def _set_checking(self, checking: bool) -> None:
        from terminal.ui.screens.idle import IdleScreen

        for screen in self.screen_stack:
            if isinstance(screen, IdleScreen) and screen.is_mounted:
                screen.set_checking(checking)

    @work(thread=True, exclusive=True, group="tap")
    def _verify(self, token: bytes, manual: bool, challenge: Callable[[bytes], bytes] | None) -> None:
        try:
            result = self.ops.verify(token, manual=manual, challenge=challenge)
        except CardposError as exc:
            self.post_message(TapFailed(str(exc)))
            return
        self.post_message(TapVerified(result, manual))

    def on_tap_verified(self, message: TapVerified) -> None:
        from terminal.ui.screens.member import MemberScreen
        from terminal.ui.screens.refusal import RefusalScreen
        from terminal.ui.view import Tapped

        self.tap_in_progress = False
        self._set_checking(False)
        result = message.result
        verdict = result.verdict
        self.last_verdict = verdict
        self.return_to_idle()
        if self.ops.has_reader:
            self._feedback(bool(verdict.accepted))
        if verdict.accepted and result.member is not None:
            self.push_screen(MemberScreen(Tapped(result.claims, result.member)))
        else:
            # An unaccepted verdict always names its reason; the counter journals a missing one as malformed.
            self.push_screen(RefusalScreen(verdict.reason or RejectReason.MALFORMED, manual=message.manual))
        self._read_queue_depth()

    def on_tap_failed(self, message: TapFailed) -> None:
        from terminal.ui.screens.dialogs import DeclineScreen

        self.tap_in_progress = False
        self._set_checking(False)
        self.push_screen(DeclineScreen(message.text, "failed"))

    @work(thread=True, group="reader-feedback")
    def _feedback(self, accepted: bool) -> None:
        # A missed beep is not worth interrupting the cashier; diagnostics show the reader state.
        with contextlib.suppress(CardposError):
            self.ops.reader_feedback(accepted)

    # -- demo ---------------------------------------------------------------------------------------------------
    def demo_tap(self, index: int) -> None:
        self._demo_tap(index)

    @work(thread=True, group="demo")
    def _demo_tap(self, index: int) -> None:
        if self.demo is None:
            return
        try:
            self.demo.tap(index)
        except CardposError as exc:
            self.post_message(TapFailed(str(exc)))

    # -- receipts -----------------------------------------------------------------------------------------------
    def save_receipt(self, receipt: Receipt) -> Path | None:
        """Write the plain-text receipt into receipts/, named after its journal entry (called from a worker)."""
        try:
            return receipt.write(self.services.receipts_dir)
        except OSError:
            return None  # the receipt is on screen and the operation is journaled; a full disk must not undo that

    def save_z_report(self, report: ZReport) -> Path | None:
        """Write a shift's Z-report into receipts/ next to the receipts (called from a worker)."""
        folder = self.services.receipts_dir
        stamp = self.clock_text("%Y%m%d-%H%M%S")
        path = folder / (_SAFE_NAME.sub("_", f"{stamp}-z_report") + ".txt")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(report.to_text(), encoding="utf-8")
        except OSError:
            return None  # the shift is closed and journaled; a full disk must not undo that
        return path


def _status_error(detail: str) -> ReaderStatus:
    from terminal.reader.events import ReaderState

    return ReaderStatus(ReaderState.ERROR, detail)
