"""The cashier and technician app.

Threads: the reader device delivers events on its own thread and the sync service reports status on its own;
both reach the UI only through ``call_from_thread(post_message, ...)``. Card checks, journal writes, queries and
print jobs run in thread workers that post small messages back (``terminal/ui/messages.py``), so typing never
waits for SQLite, a serial port, the printer or the network.

Receipts: an operation is journaled first; its receipt is then printed in a worker when a printer is configured
(a printer problem shows on the status bar and in a notice, and the receipt can be printed again from the receipt
screen or the member's history), else saved as a text file in receipts/. Language: every word comes from
``self.tr``; a cashier switches it on the idle or member screen, and it is remembered for that cashier in the
terminal's store; signed out, the terminal's own language is back.
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
from terminal.i18n import DEFAULT_LANGUAGE, SaidError, Words, printer_state
from terminal.printer.errors import PrinterError
from terminal.reader.events import CardPresented, ReaderEvent, ReaderStatus
from terminal.ui.demo import DemoTapper
from terminal.ui.i18n import LANGUAGES, Translator, next_language
from terminal.ui.messages import (
    PrintDone,
    PrinterPolled,
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
    from cardkit.qr import QrBlocks
    from terminal.service.receipt import Receipt
    from terminal.service.zreport import ZReport
    from terminal.ui.services import Cashier, PrinterStatus, SyncStatus

SYNC_LOG_LINES = 50
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
PRINTER_POLL_S = 5.0
"""How often the printer is asked for its state while it has a problem, so the bar shows when it is fixed."""
PRINTER_PROBLEMS = frozenset({"paper_out", "cover_open", "offline"})
Z_REPORT_REF = "z-report"
PrintJob = Callable[[Words], "PrinterStatus | None"]
"""Prints something in the given words (blocking; in a worker)."""


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
        self.default_lang = lang if lang in LANGUAGES else LANGUAGES[0]
        """The terminal's own language: the sign-in screen's, and a cashier's until they choose another."""
        self.tr = Translator(self.default_lang)
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
        self.printer_state = "ready"
        """A ``printer.state`` key: ready, printing, paper_low, paper_out, cover_open or offline."""
        self.unprinted: dict[str, str] = {}
        """What did not print (ref -> label, oldest first), until it prints."""
        self._print_jobs = 0
        self._signin_language: str | None = None
        self._closed = False
        self.qr_blocks: QrBlocks = services.qr_blocks
        """How the QR screens draw a card's code; F7 there switches it for the rest of the run."""

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
        if self.ops.has_printer:
            self.set_interval(PRINTER_POLL_S, self._poll_printer)
            self._read_printer()

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
            self.post_message(TapFailed(self.tr.error(exc)))

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
        elif isinstance(event, CardPresented) and not event.blank:  # a blank card waits for a write, not a check
            self.check_card(event.token, manual=False, challenge_capable=event.challenge_capable)
        elif isinstance(event, CardPresented):
            blank_card_presented = getattr(self.screen, "blank_card_presented", None)
            if callable(blank_card_presented):  # a screen with a card waiting to be written writes it now
                blank_card_presented()

    def on_sync_status_changed(self, message: SyncStatusChanged) -> None:
        status = message.status
        previous = self.sync_status
        self.sync_status = status
        self.queue_depth = int(status.queue_depth)
        error = status.last_error
        synced = bool(status.last_sync_ms) and (previous is None or previous.last_sync_ms != status.last_sync_ms)
        if error and (previous is None or previous.last_error != error):
            self.sync_log.append(f"{self.clock_text('%H:%M:%S')} {self.sync_problem(error)}")
        elif synced:
            self.sync_log.append(f"{self.clock_text('%H:%M:%S')} {self.tr('tech.sync_ok', depth=self.queue_depth)}")
        if synced:  # also when the sync reported a refused document: the others it applied are in use now
            self._reload_documents()
        self.refresh_status()

    def sync_problem(self, error: str) -> str:
        """The sync service's last problem in the cashier's language: its own sentence in English, the kind of
        problem otherwise (the detail stays in ``cardpos terminal sync --json`` and the log)."""
        return error if self.tr.lang == DEFAULT_LANGUAGE else self.tr("errors.kind.SyncError")

    @work(thread=True, exclusive=True, group="documents")
    def _reload_documents(self) -> None:
        try:
            self.ops.reload_documents()
        except CardposError as exc:
            self.sync_log.append(self.tr.error(exc))

    def read_queue_depth(self) -> None:
        """Read the sync queue's depth again (in a worker), for the status bar."""
        self._read_queue_depth()

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
        or the lockout, and the cashier's language is read. Raises a CardposError saying why, in the screen's
        language (unknown id, wrong PIN with attempts left, locked)."""
        try:
            cashier = self.ops.sign_in(cashier_id, pin)
        except CardposError as exc:
            raise SaidError(self.tr.error(exc), orig=exc) from exc
        try:
            self._signin_language = self.ops.language_of(cashier_id)
        except CardposError:
            self._signin_language = None  # the terminal's language will do
        return cashier

    def authorize(self, cashier_id: str, pin: str, roles: tuple[str, ...]) -> Cashier:
        """A second person's approval at the moment of use (supervisor for refunds/voids; technician or
        supervisor for the technician screen). Raises a CardposError saying why it is refused."""
        try:
            if roles == ("supervisor",):
                return self.ops.authorize_supervisor(cashier_id, pin)
            person = self.ops.authenticate(cashier_id, pin)
        except CardposError as exc:
            raise SaidError(self.tr.error(exc), orig=exc) from exc
        if person.role not in roles:
            raise not_allowed(self.tr("supervisor.not_allowed", who=cashier_id, role=self.tr(f"role.{person.role}")))
        return person

    def signed_in(self, cashier: Cashier) -> None:
        from terminal.ui.screens.idle import IdleScreen

        self.cashier = cashier
        chosen = self._signin_language
        if chosen in LANGUAGES and chosen != self.tr.lang:
            self.tr = Translator(chosen)
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
            self.post_message(TapFailed(self.tr.error(exc)))

    def sign_out(self) -> None:
        from terminal.ui.screens.signin import SignInScreen

        self.cashier = None
        if self.tr.lang != self.default_lang:
            self.tr = Translator(self.default_lang)
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.switch_screen(SignInScreen())

    # -- language ----------------------------------------------------------------------------------------------
    def switch_language(self) -> None:
        """The next language for the signed-in cashier, remembered for them (the idle and member screens' key)."""
        lang = next_language(self.tr.lang)
        self.set_language(lang)
        if self.cashier is not None:
            self._remember_language(self.cashier.cashier_id, lang)

    def set_language(self, lang: str) -> None:
        """Say everything in ``lang`` from now on: the idle screen (and the member screen on it) are built again."""
        from terminal.ui.screens.idle import IdleScreen
        from terminal.ui.screens.member import MemberScreen

        if lang not in LANGUAGES or lang == self.tr.lang:
            return
        self.tr = Translator(lang)
        member = self.screen.card if isinstance(self.screen, MemberScreen) else None
        self.return_to_idle()
        if isinstance(self.screen, IdleScreen):
            self.switch_screen(IdleScreen())
        if member is not None:
            self.push_screen(MemberScreen(member))
        self.refresh_status()

    @work(thread=True, group="language")
    def _remember_language(self, cashier_id: str, lang: str) -> None:
        # Remembering is a convenience: a full disk must not stop the cashier from working in the new language.
        with contextlib.suppress(CardposError):
            self.ops.remember_language(cashier_id, lang)

    def close_shift(self) -> None:
        """Journal the shift's Z-report as ``shift_close``, print it (or keep it as a file next to the receipts
        when there is no printer) in the cashier's language, sign out."""
        if self.shift_id is not None and self.shift_opened_ms is not None:
            self._close_shift(self.shift_id, self.shift_opened_ms,
                              self.cashier.cashier_id if self.cashier is not None else None, self.tr)
        self.shift_id = None
        self.shift_opened_ms = None
        self.sign_out()

    @work(thread=True, group="shift")
    def _close_shift(self, shift_id: str, since_ms: int, cashier_id: str | None, words: Words) -> None:
        try:
            report = self.ops.close_shift(shift_id, since_ms, cashier_id=cashier_id)
        except CardposError as exc:
            self.post_message(TapFailed(words.error(exc)))
            return
        if self.ops.has_printer:
            self._run_print_job(Z_REPORT_REF, words("kind.z_report"),
                                lambda said: self.ops.print_z_report(report, said), words)
        else:
            self.save_z_report(report, words)

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
            self.post_message(TapFailed(self.tr.error(exc)))
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
            self.post_message(TapFailed(self.tr.error(exc)))

    # -- receipts -----------------------------------------------------------------------------------------------
    def save_receipt(self, receipt: Receipt) -> Path | None:
        """Write the plain-text receipt into receipts/, named after its journal entry (called from a worker)."""
        try:
            return receipt.write(self.services.receipts_dir, self.tr)
        except OSError:
            return None  # the receipt is on screen and the operation is journaled; a full disk must not undo that

    def save_z_report(self, report: ZReport, words: Words | None = None) -> Path | None:
        """Write a shift's Z-report into receipts/ next to the receipts (called from a worker)."""
        folder = self.services.receipts_dir
        stamp = self.clock_text("%Y%m%d-%H%M%S")
        path = folder / (_SAFE_NAME.sub("_", f"{stamp}-z_report") + ".txt")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(report.to_text(words or self.tr), encoding="utf-8")
        except OSError:
            return None  # the shift is closed and journaled; a full disk must not undo that
        return path

    # -- the receipt printer -----------------------------------------------------------------------------------
    def print_receipt(self, receipt: Receipt) -> None:
        """Print a journaled operation's receipt in a worker (nothing without a printer)."""
        self._start_print(receipt.uuid, f"#{receipt.seq}", lambda words: self.ops.print_receipt(receipt, words))

    def reprint(self, uuid: str, label: str) -> None:
        """Print a past operation's receipt again, rebuilt from the journal (the member's history)."""
        self._start_print(uuid, label, lambda words: self.ops.print_receipt(self.ops.receipt_copy(uuid), words))

    def toggle_qr_blocks(self) -> QrBlocks:
        """Sextants to half blocks or back (a cashier who sees boxes instead of a code): the new form."""
        self.qr_blocks = "half" if self.qr_blocks == "sextant" else "sextant"
        return self.qr_blocks

    def print_card_qr(self, card_id: str, card_text: str) -> None:
        """Print a new card that no reader wrote: its number and text form (nothing without a printer)."""
        self._start_print(f"card:{card_id}", card_id,
                          lambda words: self.ops.print_card(card_id, card_text, words))

    def print_z_report(self, report: ZReport) -> None:
        self._start_print(Z_REPORT_REF, self.tr("kind.z_report"), lambda words: self.ops.print_z_report(report, words))

    def _start_print(self, ref: str, label: str, job: PrintJob) -> None:
        if not self.ops.has_printer:
            return
        self._print_jobs += 1
        self.printer_state = "printing"
        self.refresh_status()
        self._print_worker(ref, label, job, self.tr)

    @work(thread=True, group="printer")
    def _print_worker(self, ref: str, label: str, job: PrintJob, words: Words) -> None:
        self._run_print_job(ref, label, job, words)

    def _run_print_job(self, ref: str, label: str, job: PrintJob, words: Words) -> None:
        """Run a print job here (a worker thread) and post how it ended."""
        try:
            status = job(words)
        except PrinterError as exc:
            self.post_message(PrintDone(ref, label, printer_state(exc.status), words.error(exc)))
        except CardposError as exc:  # the copy could not be built: the printer was not reached
            self.post_message(PrintDone(ref, label, None, words.error(exc)))
        else:
            self.post_message(PrintDone(ref, label, printer_state(status)))

    def on_print_done(self, message: PrintDone) -> None:
        self._print_jobs = max(0, self._print_jobs - 1)
        if message.state is not None:
            self.printer_state = message.state
        elif self.printer_state == "printing":
            self.printer_state = "ready"
        if message.problem is None:
            self.unprinted.pop(message.ref, None)
        else:
            if message.state is not None:  # the printer refused it: kept for a reprint
                self.unprinted[message.ref] = message.label
            self.notify(message.problem, title=self.tr("printing.not_printed", label=message.label), severity="error",
                        timeout=10)
        for screen in self.screen_stack:
            print_done = getattr(screen, "print_done", None)
            if callable(print_done):
                print_done(message)
        self.refresh_status()

    def _poll_printer(self) -> None:
        if self.printer_state in PRINTER_PROBLEMS and not self._print_jobs:
            self._read_printer()

    @work(thread=True, exclusive=True, group="printer-status")
    def _read_printer(self) -> None:
        try:
            status = self.ops.printer_status()
        except CardposError:
            status = None  # an answer that is no ESC/POS status: as good as offline
        self.post_message(PrinterPolled(printer_state(status)))

    def on_printer_polled(self, message: PrinterPolled) -> None:
        if not self._print_jobs:
            self.printer_state = message.state
            self.refresh_status()


def _status_error(detail: str) -> ReaderStatus:
    from terminal.reader.events import ReaderState

    return ReaderStatus(ReaderState.ERROR, detail)
