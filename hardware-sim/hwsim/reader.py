"""The simulated card reader: speaks the reader protocol over a Line, paced at the baud, with fault injection.

Three threads: ``tx`` paces queued bytes onto the line (10 bits per byte: a byte is handed over when its stop
bit would have ended), ``rx`` decodes the terminal's frames and answers them, ``timer`` sends heartbeats and
lifts tapped cards off the reader after their dwell. Console and script commands call the public methods.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable
from typing import TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.frames import (
    CardWrite,
    ErrorCode,
    Frame,
    FrameDecoder,
    MessageType,
    ProtocolError,
    StatusInfo,
    card_present_payload,
    challenge_response_payload,
    encode_frame,
    error_payload,
    parse_feedback,
    write_result_payload,
)
from cardkit.wallet import WalletCard
from hwsim.line import Line

FIRMWARE = "hwsim 1.0"
CHALLENGE_DWELL_S = 2.0  # a person holds a challenge card until the beep, at most this long
AFTER_ANSWER_DWELL_S = 0.2


class SimReader:
    def __init__(self, line: Line, *, baud: int = 115200, heartbeat_s: float = 1.0, dwell_s: float = 0.5,
                 hex_log: TextIO | None = None, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.line = line
        self.baud = baud
        self.heartbeat_s = heartbeat_s
        self.dwell_s = dwell_s
        self._hex_log = hex_log
        self._rng = rng or random.Random()
        self._clock = clock
        self._started_at = clock()
        self._lock = threading.RLock()
        self._tx_cond = threading.Condition(self._lock)
        self._queue: collections.deque[bytes] = collections.deque()
        self._sending = False
        self._stop = threading.Event()
        self._stalled_until = 0.0
        self._faults: list[str] = []  # armed faults for the next frame: flip, truncate, dup
        self._card: WalletCard | None = None
        self._card_number: int | None = None  # the wallet number of the card on the reader, when it has one
        self._write_faults: list[str] = []  # armed for the next WRITE_CARD: "fail" or "interrupt"
        self.on_written: Callable[[int | None, WalletCard], None] | None = None
        """Called (under the reader's lock) with the wallet number and the card a write produced."""
        self._remove_at: float | None = None
        self._decoder = FrameDecoder()
        self._log_lock = threading.Lock()
        self.taps = 0
        self.tx_frames = 0
        self.rx_frames = 0
        self.feedback: list[bool] = []
        self.challenges = 0
        self.writes = 0
        self.writes_ok = 0
        self._threads = [threading.Thread(target=fn, name=f"hwsim {name}", daemon=True)
                         for name, fn in (("tx", self._tx_loop), ("rx", self._rx_loop), ("timer", self._timer_loop))]

    # ---- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._tx_cond:
            self._tx_cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=2.0)
        self.line.close()

    def drain(self, timeout: float) -> bool:
        """Wait until every queued byte is on the line (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._tx_cond:
            while (self._queue or self._sending) and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._tx_cond.wait(left)
        return True

    # ---- commands --------------------------------------------------------------------------------------------

    def tap(self, card: WalletCard, hold: bool = False, *, number: int | None = None) -> None:
        with self._lock:
            if self._card is not None:
                self._send(MessageType.CARD_REMOVED, b"")
            self._card = card
            self._card_number = number
            self.taps += 1
            self._send(MessageType.CARD_PRESENT, card_present_payload(card.token_bytes(), card.challenge_capable,
                                                                      blank=card.blank))
            if hold:
                self._remove_at = None
            else:
                dwell = max(self.dwell_s, CHALLENGE_DWELL_S) if card.challenge_capable else self.dwell_s
                self._remove_at = self._clock() + dwell

    def remove(self) -> bool:
        with self._lock:
            if self._card is None:
                return False
            self._card = None
            self._card_number = None
            self._remove_at = None
            self._send(MessageType.CARD_REMOVED, b"")
            return True

    def noise(self, count: int) -> None:
        with self._tx_cond:
            self._queue.append(self._rng.randbytes(count))
            self._tx_cond.notify_all()

    def arm(self, fault: str) -> None:
        with self._lock:
            self._faults.append(fault)

    def arm_write(self, fault: str) -> None:
        """The next WRITE_CARD fails (``fail``: the card refuses it) or is cut off (``interrupt``: the card leaves
        the field mid-write and is lifted off the reader); either way the card stays blank."""
        if fault not in ("fail", "interrupt"):
            raise ValueError(f"unknown write fault {fault!r}")
        with self._lock:
            self._write_faults.append(fault)

    def stall(self, seconds: float) -> None:
        with self._tx_cond:
            self._stalled_until = max(self._stalled_until, self._clock() + seconds)
            self._tx_cond.notify_all()

    def unplug(self) -> None:
        with self._tx_cond:
            self._queue.clear()
            self._card = None
            self._remove_at = None
            self.line.unplug()
            self._decoder.reset()

    def replug(self) -> None:
        with self._tx_cond:
            if not self.line.plugged:
                self.line.open()
            self._tx_cond.notify_all()

    def set_dwell(self, seconds: float) -> None:
        with self._lock:
            self.dwell_s = seconds

    def set_baud(self, baud: int) -> None:
        with self._lock:
            self.baud = baud

    def status_info(self) -> StatusInfo:
        d = self._decoder
        return StatusInfo(FIRMWARE, int(self._clock() - self._started_at), self.taps, self.tx_frames,
                          self.rx_frames, d.crc_errors + d.framing_errors, int(self.heartbeat_s * 1000))

    def summary(self) -> str:
        with self._lock:
            card = f"{self._card.label!r}" if self._card else "none"
            stalled = max(0.0, self._stalled_until - self._clock())
            d = self._decoder
            return (f"plugged={'yes' if self.line.plugged else 'no'} line={self.line.describe()!r} baud={self.baud} "
                    f"taps={self.taps} tx_frames={self.tx_frames} rx_frames={self.rx_frames} "
                    f"rx_crc_errors={d.crc_errors} challenges={self.challenges} "
                    f"writes={self.writes} writes_ok={self.writes_ok} "
                    f"feedback_ok={sum(self.feedback)} feedback_declined={len(self.feedback) - sum(self.feedback)} "
                    f"queued={sum(len(c) for c in self._queue)} stalled={stalled:.1f}s card={card}")

    # ---- sending ---------------------------------------------------------------------------------------------

    def _send(self, type: MessageType, payload: bytes, *, heartbeat: bool = False) -> None:
        """Queue one frame with the armed faults applied. STATUS frames (heartbeats, status answers) leave armed
        faults for the next frame, so ``flip`` then ``tap`` corrupts the tap however the heartbeat timer falls."""
        raw = bytearray(encode_frame(type, payload))
        with self._tx_cond:
            if not self.line.plugged:
                return
            faults: list[str] = []
            if not heartbeat:
                faults, self._faults = self._faults, []
            chunks = [raw]
            for fault in faults:
                if fault == "flip":
                    # Between TYPE and the CRC: the frame stays framed and must fail exactly its CRC check.
                    bit = self._rng.randrange(3 * 8, (len(raw) - 1) * 8)
                    raw[bit // 8] ^= 1 << (bit % 8)
                elif fault == "truncate":
                    chunks = [raw[: max(1, len(raw) // 2)]]
                elif fault == "dup":
                    chunks = [chunks[0], chunks[0]]
            for chunk in chunks:
                self._queue.append(bytes(chunk))
            self.tx_frames += 1
            self._tx_cond.notify_all()

    def _tx_loop(self) -> None:
        line_free_at = 0.0
        while not self._stop.is_set():
            with self._tx_cond:
                now = self._clock()
                if not self._queue or now < self._stalled_until:
                    wait = self._stalled_until - now if self._queue else 0.5
                    self._tx_cond.wait(max(0.001, min(wait, 0.5)))
                    continue
                chunk = self._queue.popleft()
                self._sending = True
                baud = self.baud
            try:
                line_free_at = self._pace(chunk, baud, line_free_at)
                self._log("tx", chunk)
            finally:
                with self._tx_cond:
                    self._sending = False
                    self._tx_cond.notify_all()

    def _pace(self, chunk: bytes, baud: int, line_free_at: float) -> float:
        byte_s = 10.0 / baud
        step = max(1, int(0.001 / byte_s))  # hand bytes over about once a millisecond
        t = max(self._clock(), line_free_at)
        for i in range(0, len(chunk), step):
            piece = chunk[i : i + step]
            t += len(piece) * byte_s
            delay = t - self._clock()
            if delay > 0:
                time.sleep(delay)
            if self._stop.is_set():
                break
            self.line.write(piece)
        return t

    def _log(self, direction: str, data: bytes) -> None:
        if self._hex_log is None or not data:
            return
        with self._log_lock:
            self._hex_log.write(f"{self._clock() - self._started_at:.6f} {direction} {data.hex()}\n")
            self._hex_log.flush()

    # ---- receiving -------------------------------------------------------------------------------------------

    def _rx_loop(self) -> None:
        while not self._stop.is_set():
            if not self.line.plugged:
                self._stop.wait(0.05)
                continue
            data = self.line.read(0.05)
            if not data:
                continue
            self._log("rx", data)
            with self._lock:
                errors_before = self._decoder.crc_errors
                frames = self._decoder.data_received(data)
                if self._decoder.crc_errors > errors_before:
                    self._send(MessageType.ERROR, error_payload(ErrorCode.BAD_FRAME, "bad CRC from host"))
                for frame in frames:
                    self.rx_frames += 1
                    self._answer(frame)

    def _answer(self, frame: Frame) -> None:
        if frame.type == MessageType.STATUS_REQUEST:
            self._send(MessageType.STATUS, self.status_info().encode(), heartbeat=True)
        elif frame.type == MessageType.FEEDBACK:
            try:
                self.feedback.append(parse_feedback(frame.payload))
            except ProtocolError:
                self._send(MessageType.ERROR, error_payload(ErrorCode.BAD_PAYLOAD, "feedback is one byte"))
        elif frame.type == MessageType.CHALLENGE:
            self.challenges += 1
            self._send(MessageType.CHALLENGE_RESPONSE, self._challenge(frame.payload))
        elif frame.type == MessageType.WRITE_CARD:
            self.writes += 1
            self._send(MessageType.WRITE_RESULT, self._write(frame.payload))
        else:
            self._send(MessageType.ERROR, error_payload(ErrorCode.UNKNOWN_TYPE, f"unknown type {frame.type:#04x}"))

    def _challenge(self, nonce: bytes) -> bytes:
        card = self._card
        if card is None:
            return challenge_response_payload(None, ErrorCode.NO_CARD)
        if not card.challenge_capable:
            return challenge_response_payload(None, ErrorCode.NOT_CAPABLE)
        from cardkit.cards.challenge import sign_challenge
        from cardkit.errors import CardError

        if card.kind == "cloned" or card.card_private_key_hex is None:
            key = Ed25519PrivateKey.generate()  # a copy has the token but not the card's key
        else:
            key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(card.card_private_key_hex))
        try:
            signature = sign_challenge(key, nonce)
        except CardError:
            return challenge_response_payload(None, ErrorCode.BAD_PAYLOAD)
        if self._remove_at is not None:
            self._remove_at = min(self._remove_at, self._clock() + AFTER_ANSWER_DWELL_S)
        return challenge_response_payload(signature)

    def _write(self, payload: bytes) -> bytes:
        """Put a token on the blank card on the reader. A failed or interrupted write leaves it blank, so the
        terminal can write the same token again."""
        try:
            written = CardWrite.decode(payload)
        except ProtocolError:
            return write_result_payload(ErrorCode.BAD_PAYLOAD)
        card = self._card
        if card is None:
            return write_result_payload(ErrorCode.NO_CARD)
        if not card.blank:
            return write_result_payload(ErrorCode.NOT_BLANK)
        fault = self._write_faults.pop(0) if self._write_faults else None
        if fault == "fail":
            return write_result_payload(ErrorCode.WRITE_FAILED)
        if fault == "interrupt":
            self.remove()  # the customer pulled the card away: CARD_REMOVED goes out before the answer
            return write_result_payload(ErrorCode.WRITE_INTERRUPTED)
        from cardkit.cards.textform import token_to_text
        from cardkit.wallet import WalletCard

        key = written.card_key
        new_card = WalletCard(label=card.label, kind="challenge" if key is not None else "valid",
                              token_text=token_to_text(written.token), card_private_key_hex=key.hex() if key else None)
        self._card = new_card  # the card stays on the reader, now holding its token
        self.writes_ok += 1
        if self.on_written is not None:
            self.on_written(self._card_number, new_card)
        return write_result_payload(ErrorCode.OK, written.token)

    # ---- timers ----------------------------------------------------------------------------------------------

    def _timer_loop(self) -> None:
        next_beat = self._clock() + self.heartbeat_s
        while not self._stop.wait(0.01):
            now = self._clock()
            with self._lock:
                if self._remove_at is not None and now >= self._remove_at:
                    self.remove()
                if self.heartbeat_s > 0 and now >= next_beat:
                    next_beat = now + self.heartbeat_s
                    if now >= self._stalled_until and self.line.plugged:
                        self._send(MessageType.STATUS, self.status_info().encode(), heartbeat=True)
