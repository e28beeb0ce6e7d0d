"""The card reader driver: opens any pyserial URL, reads in its own thread, turns frames into ReaderEvents.

``on_event`` runs ON THE READER THREAD, every event of it, the first status after ``start()`` and the final
CLOSED included. It must return quickly (well under the time of one frame): hand the event to your own thread
or post it to the UI (Textual's ``post_message``, a queue) and do verification, challenges and database work
there. A callback that raises is logged and the reader carries on; one that blocks delays every later byte.
``challenge()`` waits for the reader thread, so calling it from ``on_event`` would deadlock and raises
``ReaderError`` instead.

Unplug handling: a ``SerialException``/``OSError`` from the port, or no valid frame for ``heartbeat_timeout_s``
(the driver pokes a quiet reader with STATUS_REQUEST at half that time), closes the port and reopens it with
capped exponential backoff (50 ms doubling to ``reconnect_max_s``, 0.5 s by default, so a replugged reader is
back well within 2 s), reporting ``ReaderStatus(RECONNECTING/CONNECTED/ERROR)`` on each change.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import serial

from cardkit.errors import ReaderError
from cardkit.frames import (
    MAX_PAYLOAD,
    CardWrite,
    ErrorCode,
    Frame,
    FrameDecoder,
    MessageType,
    ProtocolError,
    StatusInfo,
    encode_frame,
    feedback_payload,
    is_blank_card,
    parse_card_present,
    parse_challenge_response,
    parse_error,
    parse_write_result,
    write_digest,
)
from terminal.reader.events import CardPresented, CardRemoved, ReaderEvent, ReaderState, ReaderStatus

log = logging.getLogger("cardpos.reader")

_MISSING_ERRNOS = {errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.ECONNREFUSED, errno.EIO}
_SLOW_CALLBACK_S = 0.05


class CardWriteError(ReaderError):
    """A WRITE_CARD that did not put the token on a card. ``code`` is the reader's ``ErrorCode`` (or None when no
    answer came). The card is left blank whatever the code, so the same token can be written again."""

    def __init__(self, message: str, *, code: int | None) -> None:
        super().__init__(message)
        self.code = code


_WRITE_SENTENCES: dict[int, str] = {
    ErrorCode.NO_CARD: "There is no card on the reader; put the new blank card on it.",
    ErrorCode.NOT_BLANK: "The card on the reader already holds a card; put a blank card on the reader.",
    ErrorCode.WRITE_FAILED: "The card could not be written; it is still blank, try again or use another blank card.",
    ErrorCode.WRITE_INTERRUPTED: "The card left the reader while it was being written; it is still blank, "
                                 "hold it on the reader and try again.",
}


@dataclass(frozen=True, slots=True)
class ReaderStats:
    """Counters for diagnostics (``cardpos reader probe``, the technician screen). Cumulative across reconnects."""

    port: str
    baud: int
    state: ReaderState
    frames: int
    crc_errors: int
    resyncs: int
    reconnects: int
    last_raw_hex: str
    last_error: str
    framing_errors: int = 0
    bytes_dropped: int = 0
    cards: int = 0  # CardPresented events delivered
    debounced: int = 0  # CARD_PRESENT frames swallowed by the debounce window
    heartbeats: int = 0  # STATUS frames received
    firmware: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {name: (str(getattr(self, name)) if name == "state" else getattr(self, name))
                for name in self.__slots__}


def open_error(url: str, exc: BaseException) -> ReaderError:
    """One clear sentence for a port that cannot be opened, the original kept."""
    code = getattr(exc, "errno", None)
    if isinstance(exc, ValueError):
        message = f"The card reader port {url!r} is not a valid port or URL ({exc})."
    elif code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        message = f"The card reader port {url} does not exist; is the reader plugged in?"
    elif code in (errno.EACCES, errno.EPERM):
        message = (f"Permission denied opening the card reader port {url}; "
                   f"add this user to the port's group (often 'dialout').")
    elif code == errno.EBUSY or "lock" in str(exc).lower():
        message = f"The card reader port {url} is in use by another program."
    elif code == errno.ECONNREFUSED or "refused" in str(exc).lower():
        message = f"Nothing is listening at the card reader address {url}."
    else:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        message = f"Cannot open the card reader port {url}: {reason}."
    return ReaderError(message, orig=exc)


class ReaderDevice:
    """A serial card reader on a pyserial URL. ``start()`` it, receive events, ``stop()`` it."""

    def __init__(
        self,
        url: str,
        *,
        baud: int = 115200,
        on_event: Callable[[ReaderEvent], None],
        debounce_ms: int = 1500,
        heartbeat_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        reconnect_max_s: float = 0.5,
        read_timeout_s: float = 0.02,
        idle_gap_s: float = 0.02,
    ) -> None:
        self.url = url
        self.baud = baud
        self._on_event = on_event
        self._debounce_s = debounce_ms / 1000.0
        self._heartbeat_timeout_s = heartbeat_timeout_s
        self._clock = clock
        self._reconnect_initial_s = min(0.05, reconnect_max_s)
        self._reconnect_max_s = reconnect_max_s
        self._read_timeout_s = read_timeout_s
        self._idle_gap_s = idle_gap_s

        self._decoder = FrameDecoder()
        self._serial: serial.SerialBase | None = None
        self._io_lock = threading.Lock()  # guards _serial against concurrent write/close
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = ReaderState.CLOSED
        self._detail = ""
        self._ever_connected = False
        self._reconnects = 0
        self._last_error = ""
        self._cards = 0
        self._debounced = 0
        self._heartbeats = 0
        self._status: StatusInfo | None = None
        self._last_rx = 0.0
        self._last_data = 0.0
        self._poked_at = 0.0
        self._last_token: bytes | None = None
        self._last_token_at = 0.0
        self._card_outstanding = False
        self._challenge_lock = threading.Lock()
        self._challenge_cond = threading.Condition()
        self._challenge_waiting = False
        self._challenge_reply: tuple[int, bytes] | None = None
        self._defer = False
        self._pending: list[ReaderEvent] = []
        self._write_lock = threading.Lock()
        self._write_cond = threading.Condition()
        self._write_waiting = False
        self._write_reply: tuple[int, bytes] | None = None

    # ---- public API ----------------------------------------------------------------------------------------

    def start(self, *, retry_if_missing: bool = False) -> None:
        """Open the port and start the reader thread.

        A port that cannot be opened raises ``ReaderError`` (one clear sentence) unless ``retry_if_missing``,
        in which case the failure is reported as ``ReaderStatus(ERROR/RECONNECTING)`` and the thread keeps
        trying, as after an unplug. Every event, including the first status, is delivered on the reader thread.
        """
        if self._thread is not None:
            raise ReaderError("The card reader driver is already running.")
        self._stop.clear()
        self._defer = True  # statuses raised here go out from the reader thread, like every other event
        try:
            self._open()
        except ReaderError as exc:
            if not retry_if_missing:
                self._defer = False
                self._pending.clear()
                self._last_error = str(exc)
                self._state, self._detail = ReaderState.CLOSED, ""
                raise
            self._failed_open(exc)
        self._thread = threading.Thread(target=self._run, name=f"reader {self.url}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the reader thread and close the port; the final ``ReaderStatus(CLOSED)`` comes from the reader
        thread as it ends. Safe to call twice, and from ``on_event``."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
            if not thread.is_alive():
                return
        self._shutdown()

    def _shutdown(self) -> None:
        self._close()
        with self._challenge_cond:
            self._challenge_cond.notify_all()
        with self._write_cond:
            self._write_cond.notify_all()
        self._set_state(ReaderState.CLOSED, "")

    def challenge(self, nonce: bytes, timeout_s: float = 1.0) -> bytes:
        """Send CHALLENGE(nonce) to the card on the reader and return its signature bytes.

        Raises ``ReaderError`` if the reader is not connected, the card answers with an error code, or nothing
        comes back within ``timeout_s``. Must not be called from ``on_event`` (the reader thread).
        """
        if threading.current_thread() is self._thread:
            raise ReaderError("challenge() cannot run inside on_event; hand the card event to another thread first.")
        if not 1 <= len(nonce) <= MAX_PAYLOAD:
            raise ReaderError(f"A challenge nonce must be 1 to {MAX_PAYLOAD} bytes long.")
        with self._challenge_lock:
            with self._challenge_cond:
                self._challenge_reply = None
                self._challenge_waiting = True
            try:
                self._send(MessageType.CHALLENGE, nonce)
                with self._challenge_cond:
                    self._challenge_cond.wait_for(
                        lambda: self._challenge_reply is not None or self._stop.is_set() or self._serial is None,
                        timeout=timeout_s)
                    reply = self._challenge_reply
                    gone = reply is None and (self._serial is None or self._stop.is_set())
            finally:
                with self._challenge_cond:
                    self._challenge_waiting = False
                    self._challenge_reply = None
        if gone:
            raise ReaderError("The card reader was disconnected during the card's anti-copy check.")
        if reply is None:
            raise ReaderError(f"The card did not answer the challenge within {timeout_s:g} s.")
        code, signature = reply
        if code != ErrorCode.OK:
            raise ReaderError(f"The card could not answer the challenge ({_code_name(code)}).")
        return signature

    def write_card(self, token: bytes, card_key: bytes | None = None, timeout_s: float = 3.0) -> None:
        """Write ``token`` (and a challenge card's 32-byte ``card_key``) to the blank card on the reader.

        Returns once the reader confirmed the write of exactly this token (its answer echoes the token's digest).
        Raises ``CardWriteError`` with the reader's code (no card, not blank, write failed, interrupted) or
        ``code=None`` when no answer came within ``timeout_s``; the card is left blank, so writing the same token
        again is always safe. Must not be called from ``on_event``.
        """
        if threading.current_thread() is self._thread:
            raise ReaderError("write_card() cannot run inside on_event; hand the card event to another thread first.")
        try:
            payload = CardWrite(token=token, card_key=card_key).encode()
        except ValueError as exc:
            raise ReaderError(f"This card cannot be written: {exc}.", orig=exc) from exc
        with self._write_lock:
            with self._write_cond:
                self._write_reply = None
                self._write_waiting = True
            try:
                self._send(MessageType.WRITE_CARD, payload)
                with self._write_cond:
                    self._write_cond.wait_for(
                        lambda: self._write_reply is not None or self._stop.is_set() or self._serial is None,
                        timeout=timeout_s)
                    reply = self._write_reply
                    gone = reply is None and (self._serial is None or self._stop.is_set())
            finally:
                with self._write_cond:
                    self._write_waiting = False
                    self._write_reply = None
        if gone:
            raise CardWriteError("The card reader was disconnected while the card was being written.", code=None)
        if reply is None:
            raise CardWriteError(f"The reader did not confirm the card write within {timeout_s:g} s; "
                                 "try again (writing the same card again is safe).", code=None)
        code, digest = reply
        if code != ErrorCode.OK:
            sentence = _WRITE_SENTENCES.get(code)
            raise CardWriteError(sentence or f"The card could not be written ({_code_name(code)}).", code=code)
        if digest != write_digest(token):
            raise CardWriteError("The reader confirmed a different card than the one sent; write it again.",
                                 code=None)

    def feedback(self, accepted: bool) -> None:
        """Beep/LED on the reader: accepted (green) or declined (red). Raises ReaderError if not connected."""
        self._send(MessageType.FEEDBACK, feedback_payload(accepted))

    def request_status(self) -> None:
        """Ask the reader for a STATUS frame (its answer updates ``stats``)."""
        self._send(MessageType.STATUS_REQUEST, b"")

    @property
    def state(self) -> ReaderState:
        return self._state

    @property
    def reader_status(self) -> StatusInfo | None:
        """The last STATUS (heartbeat) the reader sent, if any."""
        return self._status

    @property
    def stats(self) -> ReaderStats:
        d = self._decoder
        return ReaderStats(
            port=self.url, baud=self.baud, state=self._state, frames=d.frames, crc_errors=d.crc_errors,
            resyncs=d.resyncs, reconnects=self._reconnects, last_raw_hex=d.last_raw.hex(),
            last_error=self._last_error, framing_errors=d.framing_errors, bytes_dropped=d.bytes_dropped,
            cards=self._cards, debounced=self._debounced, heartbeats=self._heartbeats,
            firmware=self._status.firmware if self._status else "",
        )

    # ---- port handling -------------------------------------------------------------------------------------

    def _open(self) -> None:
        # A bounded write keeps feedback()/challenge() from hanging on a wedged line; pyserial's rfc2217
        # client refuses write_timeout, so it goes without.
        write_timeout = None if self.url.lower().startswith("rfc2217://") else 1.0
        try:
            port = serial.serial_for_url(self.url, baudrate=self.baud, timeout=self._read_timeout_s,
                                         write_timeout=write_timeout, exclusive=True)
        except (serial.SerialException, OSError, ValueError, NotImplementedError) as exc:
            raise open_error(self.url, exc) from exc
        self._decoder.reset()
        now = self._clock()
        self._last_rx = self._last_data = self._poked_at = now
        self._last_token = None
        self._card_outstanding = False
        with self._io_lock:
            self._serial = port
        if self._ever_connected:
            self._reconnects += 1
        self._ever_connected = True
        self._set_state(ReaderState.CONNECTED, self.url)
        try:
            self.request_status()  # a live reader answers at once; confirms the line both ways
        except ReaderError as exc:
            log.debug("status request after open failed: %s", exc)

    def _close(self) -> None:
        with self._io_lock:
            port, self._serial = self._serial, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:
                log.debug("closing the reader port failed: %s", exc)

    def _failed_open(self, exc: ReaderError) -> None:
        self._last_error = str(exc)
        code = getattr(exc.orig, "errno", None)
        missing = code in _MISSING_ERRNOS or "refused" in str(exc).lower() or "does not exist" in str(exc)
        self._set_state(ReaderState.RECONNECTING if missing else ReaderState.ERROR, str(exc))

    def _lost(self, reason: str, exc: BaseException | None = None) -> None:
        self._last_error = reason
        log.info("card reader lost: %s", reason)
        self._close()
        with self._challenge_cond:
            self._challenge_cond.notify_all()
        with self._write_cond:
            self._write_cond.notify_all()
        self._set_state(ReaderState.RECONNECTING, reason)

    def _send(self, type: MessageType, payload: bytes) -> None:
        frame = encode_frame(type, payload)
        with self._io_lock:
            port = self._serial
            if port is None:
                raise ReaderError("The card reader is not connected.")
            try:
                port.write(frame)
            except (serial.SerialException, OSError) as exc:
                raise ReaderError(f"Cannot write to the card reader: {exc}", orig=exc) from exc

    # ---- the reader thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        self._defer = False
        pending, self._pending = self._pending, []
        for event in pending:
            self._emit(event)
        try:
            self._loop()
        finally:
            self._shutdown()

    def _loop(self) -> None:
        delay = self._reconnect_initial_s
        while not self._stop.is_set():
            port = self._serial
            if port is None:
                if self._stop.wait(delay):
                    break
                try:
                    self._open()
                except ReaderError as exc:
                    self._failed_open(exc)
                    delay = min(delay * 2, self._reconnect_max_s)
                    continue
                delay = self._reconnect_initial_s
                continue
            try:
                data = port.read(port.in_waiting or 1)
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                # TypeError/AttributeError: pyserial's posix read after close() from another thread.
                if not self._stop.is_set():
                    self._lost(f"The card reader was disconnected ({exc}).", exc)
                continue
            self._after_read(data)

    def _after_read(self, data: bytes) -> None:
        now = self._clock()
        if data:
            self._last_data = now
            frames = self._decoder.data_received(data)
        elif self._decoder.pending and now - self._last_data >= self._idle_gap_s:
            frames = self._decoder.idle()
        else:
            frames = []
        if frames:
            # Liveness counts valid frames, not bytes: a reader spewing noise (a wrong baud, a broken cable)
            # is as good as gone and shows up as such.
            self._last_rx = now
        for frame in frames:
            self._handle(frame)
        silence = now - self._last_rx
        if silence > self._heartbeat_timeout_s:
            self._lost(f"The card reader has been silent (no valid frame) for {silence:.1f} s.")
        elif silence > self._heartbeat_timeout_s / 2 and now - self._poked_at > self._heartbeat_timeout_s / 2:
            self._poked_at = now
            try:
                self.request_status()
            except ReaderError as exc:
                log.debug("keepalive status request failed: %s", exc)

    def _handle(self, frame: Frame) -> None:
        try:
            if frame.type == MessageType.CARD_PRESENT:
                token, capable = parse_card_present(frame.payload)
                self._card_present(token, capable, blank=is_blank_card(frame.payload))
            elif frame.type == MessageType.CARD_REMOVED:
                if self._card_outstanding:
                    self._card_outstanding = False
                    self._emit(CardRemoved())
            elif frame.type == MessageType.STATUS:
                self._status = StatusInfo.decode(frame.payload)
                self._heartbeats += 1
            elif frame.type == MessageType.ERROR:
                code, text = parse_error(frame.payload)
                self._last_error = f"The reader reported {_code_name(code)}: {text}"
            elif frame.type == MessageType.CHALLENGE_RESPONSE:
                reply = parse_challenge_response(frame.payload)
                with self._challenge_cond:
                    if self._challenge_waiting:
                        self._challenge_reply = reply
                        self._challenge_cond.notify_all()
            elif frame.type == MessageType.WRITE_RESULT:
                written = parse_write_result(frame.payload)
                with self._write_cond:
                    if self._write_waiting:
                        self._write_reply = written
                        self._write_cond.notify_all()
            else:
                log.debug("ignoring reader frame of type %s", frame.name)
        except ProtocolError as exc:
            self._last_error = str(exc)
            log.info("bad %s frame from the reader: %s", frame.name, exc)

    def _card_present(self, token: bytes, capable: bool, *, blank: bool = False) -> None:
        now = self._clock()
        if not blank and token == self._last_token and now - self._last_token_at < self._debounce_s:
            self._debounced += 1
            return
        self._last_token = token
        self._last_token_at = now
        self._card_outstanding = True
        self._cards += 1
        log.debug("card presented (%d token bytes, challenge=%s)", len(token), capable)
        self._emit(CardPresented(token=token, challenge_capable=capable, blank=blank))

    def _set_state(self, state: ReaderState, detail: str) -> None:
        if (state, detail) == (self._state, self._detail):
            return
        self._state, self._detail = state, detail
        self._emit(ReaderStatus(state=state, detail=detail))

    def _emit(self, event: ReaderEvent) -> None:
        if self._defer:
            self._pending.append(event)
            return
        started = time.monotonic()
        try:
            self._on_event(event)
        except Exception:  # a broken callback must not kill the reader thread
            log.exception("the reader's on_event callback raised")
        took = time.monotonic() - started
        if took > _SLOW_CALLBACK_S:
            log.warning("on_event blocked the reader thread for %.0f ms; hand events off to another thread",
                        took * 1000)


def _code_name(code: int) -> str:
    try:
        return ErrorCode(code).name.lower().replace("_", " ")
    except ValueError:
        return f"error 0x{code:02x}"
