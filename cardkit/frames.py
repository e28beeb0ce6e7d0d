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
import hashlib
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
    WRITE_RESULT = 0x15  # the answer to WRITE_CARD
    # host -> reader
    STATUS_REQUEST = 0x20
    FEEDBACK = 0x21
    CHALLENGE = 0x22
    WRITE_CARD = 0x23  # write a new card token to the blank card on the reader


class ErrorCode(enum.IntEnum):
    """Codes of ERROR frames and of failed CHALLENGE_RESPONSE frames."""

    OK = 0x00
    BAD_FRAME = 0x01  # the reader received a frame with a bad CRC
    UNKNOWN_TYPE = 0x02
    BAD_PAYLOAD = 0x03
    NO_CARD = 0x04  # challenge with no card on the reader
    NOT_CAPABLE = 0x05  # challenge to a card without a challenge key
    CARD_IO = 0x06  # the card did not answer
    NOT_BLANK = 0x07  # write to a card that already holds a token
    WRITE_FAILED = 0x08  # the card refused the write; it is still blank
    WRITE_INTERRUPTED = 0x09  # the card left the field during the write; it is still blank


FLAG_CHALLENGE_CAPABLE = 0x01
FLAG_BLANK = 0x02  # CARD_PRESENT of a blank card (no token yet): it can take a WRITE_CARD
CARD_KEY_BYTES = 32  # the raw Ed25519 seed a challenge card keeps
WRITE_DIGEST_BYTES = 8  # the head of SHA-256 over the written token, echoed by a successful WRITE_RESULT
MAX_WRITE_TOKEN = MAX_PAYLOAD - 1 - CARD_KEY_BYTES


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

def card_present_payload(token: bytes, challenge_capable: bool = False, *, blank: bool = False) -> bytes:
    flags = (FLAG_CHALLENGE_CAPABLE if challenge_capable else 0) | (FLAG_BLANK if blank else 0)
    return bytes((flags,)) + token


def parse_card_present(payload: bytes) -> tuple[bytes, bool]:
    """(token bytes, challenge capable) of a CARD_PRESENT payload."""
    if not payload:
        raise ProtocolError("card present frame has no flags byte")
    return payload[1:], bool(payload[0] & FLAG_CHALLENGE_CAPABLE)


def is_blank_card(payload: bytes) -> bool:
    """Does a CARD_PRESENT payload announce a blank card (flag bit 1, no token)?"""
    return bool(payload) and bool(payload[0] & FLAG_BLANK) and len(payload) == 1


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


# ---- writing a card ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CardWrite:
    """What WRITE_CARD puts on a blank card: the token and, for a challenge card, its 32-byte private key."""

    token: bytes
    card_key: bytes | None = None

    def encode(self) -> bytes:
        """Payload: key length (1 byte, 0 or 32), the key, then the token bytes (1 to ``MAX_WRITE_TOKEN``)."""
        key = self.card_key or b""
        if len(key) not in (0, CARD_KEY_BYTES):
            raise ValueError(f"a card key is {CARD_KEY_BYTES} bytes, not {len(key)}")
        if not 1 <= len(self.token) <= MAX_WRITE_TOKEN:
            raise ValueError(f"a written token is 1 to {MAX_WRITE_TOKEN} bytes, not {len(self.token)}")
        return bytes((len(key),)) + key + self.token

    @classmethod
    def decode(cls, payload: bytes) -> CardWrite:
        if not payload:
            raise ProtocolError("write card frame has no key length byte")
        key_len = payload[0]
        if key_len not in (0, CARD_KEY_BYTES):
            raise ProtocolError(f"write card frame has a key of {key_len} bytes (0 or {CARD_KEY_BYTES})")
        token = payload[1 + key_len :]
        if len(payload) < 1 + key_len or not token:
            raise ProtocolError("write card frame has no token")
        return cls(token=token, card_key=payload[1 : 1 + key_len] if key_len else None)


def write_digest(token: bytes) -> bytes:
    """The head of SHA-256 over a token: a successful WRITE_RESULT echoes it, so the host knows which token the
    card now holds (a stale answer to an earlier write cannot pass for this one)."""
    return hashlib.sha256(token).digest()[:WRITE_DIGEST_BYTES]


def write_result_payload(code: int, token: bytes | None = None) -> bytes:
    """``code`` 0 and the written token's digest, or a non-zero ``ErrorCode`` alone."""
    if code == ErrorCode.OK:
        if token is None:
            raise ValueError("a successful write result names the token written")
        return b"\x00" + write_digest(token)
    return bytes((code & 0xFF,))


def parse_write_result(payload: bytes) -> tuple[int, bytes]:
    """(error code, digest of the written token); the digest is empty unless the code is OK."""
    if not payload:
        raise ProtocolError("write result frame has no status byte")
    code, rest = payload[0], payload[1:]
    if code == ErrorCode.OK and len(rest) != WRITE_DIGEST_BYTES:
        raise ProtocolError(f"a successful write result carries a {WRITE_DIGEST_BYTES}-byte digest")
    if code != ErrorCode.OK and rest:
        raise ProtocolError("a failed write result carries nothing after its code")
    return code, rest
