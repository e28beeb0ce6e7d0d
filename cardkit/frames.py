"""The reader's framed binary protocol: bytes in, frames out. No ports, no threads, no clocks.

Frame layout (see docs/reader-protocol.md)::

    STX 0x02 | LEN (2 bytes, big-endian payload length, <= MAX_PAYLOAD) | TYPE (1 byte) | PAYLOAD (LEN bytes)
             | CRC-16/CCITT-FALSE over LEN+TYPE+PAYLOAD (2 bytes, big-endian) | ETX 0x03

``FrameDecoder`` is fed whatever chunks the line delivers and returns the complete, checked frames. Resync rule:
bytes before an STX are dropped; a candidate frame that fails (length over the bound, no ETX where it should be,
CRC mismatch) is given up by dropping only its STX and scanning again from the very next byte, so a valid frame
hidden behind noise (even inside a bogus candidate's span) is never lost. A bogus candidate whose announced length
runs past the bytes received so far can only be judged when more bytes come; ``idle()`` (called by the driver when
the line goes quiet) settles that case early when a complete valid frame is already waiting behind it.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from cardkit.crc import crc16_ccitt_false
from cardkit.errors import ReaderError

STX = 0x02
ETX = 0x03
MAX_PAYLOAD = 1024
OVERHEAD = 7  # STX + LEN(2) + TYPE + CRC(2) + ETX
_HEAD = 4  # STX + LEN(2) + TYPE


class ProtocolError(ReaderError):
    """A frame arrived intact but its payload does not fit its message type."""


class MessageType(enum.IntEnum):
    # reader -> host
    CARD_PRESENT = 0x10
    CARD_REMOVED = 0x11
    STATUS = 0x12  # also the periodic heartbeat
    ERROR = 0x13
    CHALLENGE_RESPONSE = 0x14
    # host -> reader
    STATUS_REQUEST = 0x20
    FEEDBACK = 0x21
    CHALLENGE = 0x22


class ErrorCode(enum.IntEnum):
    """Codes of ERROR frames and of failed CHALLENGE_RESPONSE frames."""

    OK = 0x00
    BAD_FRAME = 0x01  # the reader received a frame with a bad CRC
    UNKNOWN_TYPE = 0x02
    BAD_PAYLOAD = 0x03
    NO_CARD = 0x04  # challenge with no card on the reader
    NOT_CAPABLE = 0x05  # challenge to a card without a challenge key
    CARD_IO = 0x06  # the card did not answer


FLAG_CHALLENGE_CAPABLE = 0x01


@dataclass(frozen=True, slots=True)
class Frame:
    type: int
    payload: bytes

    @property
    def raw(self) -> bytes:
        return encode_frame(self.type, self.payload)

    @property
    def name(self) -> str:
        try:
            return MessageType(self.type).name
        except ValueError:
            return f"0x{self.type:02X}"


def encode_frame(type: int, payload: bytes = b"") -> bytes:
    """The wire bytes of one frame."""
    if not 0 <= type <= 0xFF:
        raise ValueError(f"frame type {type} does not fit in one byte")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD}-byte frame limit")
    body = struct.pack(">HB", len(payload), type) + payload
    return bytes((STX,)) + body + struct.pack(">H", crc16_ccitt_false(body)) + bytes((ETX,))


class FrameDecoder:
    """Reassembles frames from arbitrary chunks; counts what it had to throw away.

    Counters (cumulative over the decoder's life, ``reset()`` keeps them):
    ``frames`` valid frames delivered; ``crc_errors`` complete candidates whose CRC did not match;
    ``framing_errors`` candidates with a length over the bound or no ETX at their end; ``resyncs`` times the
    decoder lost sync and had to skip bytes to find the next frame; ``bytes_dropped`` bytes skipped;
    ``last_raw`` the wire bytes of the last valid frame; ``last_bad`` those of the last rejected candidate.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._buf = bytearray()
        self._in_sync = True
        self.frames = 0
        self.crc_errors = 0
        self.framing_errors = 0
        self.resyncs = 0
        self.bytes_dropped = 0
        self.last_raw = b""
        self.last_bad = b""

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget buffered bytes (a new connection starts clean); counters are kept."""
        self._buf.clear()
        self._in_sync = True

    def data_received(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Feed received bytes; return every frame they complete, in order."""
        if data:
            self._buf += data
        return self._parse()

    def idle(self) -> list[Frame]:
        """The line went quiet with a partial candidate pending: give it up if a valid frame waits behind it.

        A genuine frame that is merely slow to arrive has no complete valid frame after its STX, so it is kept.
        """
        frames: list[Frame] = []
        while len(self._buf) > 1 and self._valid_frame_after_head():
            self.last_bad = bytes(self._buf[: min(len(self._buf), OVERHEAD + self.max_payload)])
            self.framing_errors += 1
            self._drop(1)
            del self._buf[:1]
            frames += self._parse()
        return frames

    def _valid_frame_after_head(self) -> bool:
        """Is there a complete, checked frame starting at any STX after the first byte of the buffer?"""
        buf = self._buf
        start = buf.find(STX, 1)
        while start >= 0:
            if self._frame_end(start) is not None:
                return True
            start = buf.find(STX, start + 1)
        return False

    def _frame_end(self, pos: int) -> int | None:
        """End offset of a complete valid frame at ``pos``, else None (no counters touched)."""
        buf = self._buf
        if len(buf) - pos < OVERHEAD:
            return None
        length = (buf[pos + 1] << 8) | buf[pos + 2]
        end = pos + OVERHEAD + length
        if length > self.max_payload or end > len(buf) or buf[end - 1] != ETX:
            return None
        crc = (buf[end - 3] << 8) | buf[end - 2]
        return end if crc16_ccitt_false(memoryview(buf)[pos + 1 : end - 3]) == crc else None

    def _drop(self, count: int) -> None:
        if count <= 0:
            return
        self.bytes_dropped += count
        if self._in_sync:
            self.resyncs += 1
            self._in_sync = False

    def _parse(self) -> list[Frame]:
        buf = self._buf
        frames: list[Frame] = []
        pos = 0
        size = len(buf)
        while True:
            start = buf.find(STX, pos)
            if start < 0:
                self._drop(size - pos)
                pos = size
                break
            self._drop(start - pos)
            pos = start
            if size - pos < 3:
                break
            length = (buf[pos + 1] << 8) | buf[pos + 2]
            if length > self.max_payload:
                self.framing_errors += 1
                self.last_bad = bytes(buf[pos : pos + 3])
                self._drop(1)
                pos += 1
                continue
            end = pos + OVERHEAD + length
            if end > size:
                break
            if buf[end - 1] != ETX:
                self.framing_errors += 1
                self.last_bad = bytes(buf[pos:end])
                self._drop(1)
                pos += 1
                continue
            crc = (buf[end - 3] << 8) | buf[end - 2]
            if crc16_ccitt_false(memoryview(buf)[pos + 1 : end - 3]) != crc:
                self.crc_errors += 1
                self.last_bad = bytes(buf[pos:end])
                self._drop(1)
                pos += 1
                continue
            frames.append(Frame(buf[pos + 3], bytes(buf[pos + _HEAD : end - 3])))
            self.last_raw = bytes(buf[pos:end])
            self.frames += 1
            self._in_sync = True
            pos = end
        if pos:
            del buf[:pos]
        return frames


# ---- payloads of each message type -------------------------------------------------------------------------

def card_present_payload(token: bytes, challenge_capable: bool = False) -> bytes:
    return bytes((FLAG_CHALLENGE_CAPABLE if challenge_capable else 0,)) + token


def parse_card_present(payload: bytes) -> tuple[bytes, bool]:
    """(token bytes, challenge capable) of a CARD_PRESENT payload."""
    if not payload:
        raise ProtocolError("card present frame has no flags byte")
    return payload[1:], bool(payload[0] & FLAG_CHALLENGE_CAPABLE)


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """Payload of STATUS (heartbeat): firmware string then six big-endian uint32 counters."""

    firmware: str
    uptime_s: int = 0
    taps: int = 0
    tx_frames: int = 0
    rx_frames: int = 0
    rx_errors: int = 0
    heartbeat_ms: int = 0  # the reader's heartbeat period; 0 = no heartbeat

    _COUNTERS = struct.Struct(">6I")

    def encode(self) -> bytes:
        fw = self.firmware.encode("utf-8")[:255]
        clamp = [min(max(v, 0), 0xFFFFFFFF) for v in (self.uptime_s, self.taps, self.tx_frames,
                                                      self.rx_frames, self.rx_errors, self.heartbeat_ms)]
        return bytes((len(fw),)) + fw + self._COUNTERS.pack(*clamp)

    @classmethod
    def decode(cls, payload: bytes) -> StatusInfo:
        if not payload or len(payload) != 1 + payload[0] + cls._COUNTERS.size:
            raise ProtocolError("status frame has the wrong length")
        fw_len = payload[0]
        firmware = payload[1 : 1 + fw_len].decode("utf-8", errors="replace")
        return cls(firmware, *cls._COUNTERS.unpack(payload[1 + fw_len :]))


def error_payload(code: int, text: str) -> bytes:
    return bytes((code & 0xFF,)) + text.encode("utf-8")[: MAX_PAYLOAD - 1]


def parse_error(payload: bytes) -> tuple[int, str]:
    if not payload:
        raise ProtocolError("error frame has no code")
    return payload[0], payload[1:].decode("utf-8", errors="replace")


def challenge_response_payload(signature: bytes | None, code: int = ErrorCode.OK) -> bytes:
    """``code`` 0 and the signature, or a non-zero ``ErrorCode`` and no signature."""
    return bytes((code & 0xFF,)) + (signature or b"" if code == ErrorCode.OK else b"")


def parse_challenge_response(payload: bytes) -> tuple[int, bytes]:
    """(error code, signature); the signature is empty unless the code is OK."""
    if not payload:
        raise ProtocolError("challenge response frame has no status byte")
    return payload[0], payload[1:]


def feedback_payload(accepted: bool) -> bytes:
    return b"\x01" if accepted else b"\x00"


def parse_feedback(payload: bytes) -> bool:
    if len(payload) != 1:
        raise ProtocolError("feedback frame must carry exactly one byte")
    return payload[0] == 1
