"""WRITE_CARD and WRITE_RESULT frames: the byte vectors of docs/reader-protocol.md and round trips."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardkit.crc import crc16_reference
from cardkit.frames import (
    CARD_KEY_BYTES,
    MAX_WRITE_TOKEN,
    CardWrite,
    ErrorCode,
    FrameDecoder,
    MessageType,
    ProtocolError,
    card_present_payload,
    encode_frame,
    is_blank_card,
    parse_card_present,
    parse_write_result,
    write_digest,
    write_result_payload,
)

TOKEN = bytes.fromhex("d28443a10126a0f6")

# (frame, payload, wire bytes) as printed in docs/reader-protocol.md
VECTORS = [
    (MessageType.WRITE_CARD, CardWrite(TOKEN).encode(), "02 00 09 23 00 d2 84 43 a1 01 26 a0 f6 51 30 03"),
    (MessageType.WRITE_CARD, CardWrite(TOKEN, bytes(range(32))).encode(),
     "02 00 29 23 20 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e "
     "1f d2 84 43 a1 01 26 a0 f6 43 09 03"),
    (MessageType.WRITE_RESULT, write_result_payload(ErrorCode.OK, TOKEN),
     "02 00 09 15 00 ad 34 18 07 da c9 0d f6 11 47 03"),
    (MessageType.WRITE_RESULT, write_result_payload(ErrorCode.NO_CARD), "02 00 01 15 04 0f f2 03"),
    (MessageType.WRITE_RESULT, write_result_payload(ErrorCode.NOT_BLANK), "02 00 01 15 07 3f 91 03"),
    (MessageType.WRITE_RESULT, write_result_payload(ErrorCode.WRITE_FAILED), "02 00 01 15 08 ce 7e 03"),
    (MessageType.WRITE_RESULT, write_result_payload(ErrorCode.WRITE_INTERRUPTED), "02 00 01 15 09 de 5f 03"),
    (MessageType.CARD_PRESENT, card_present_payload(b"", blank=True), "02 00 01 10 02 90 c1 03"),
]


@pytest.mark.parametrize(("type_", "payload", "wire"), VECTORS)
def test_documented_vectors(type_: MessageType, payload: bytes, wire: str) -> None:
    raw = bytes.fromhex(wire.replace(" ", ""))
    assert encode_frame(type_, payload) == raw
    # The CRC checked with the bit-by-bit reference, not the table the encoder uses.
    assert crc16_reference(raw[1:-3]) == int.from_bytes(raw[-3:-1], "big")
    [frame] = FrameDecoder().data_received(raw)
    assert (frame.type, frame.payload) == (type_, payload)


def test_ok_result_echoes_the_head_of_the_tokens_sha256() -> None:
    assert write_digest(TOKEN) == hashlib.sha256(TOKEN).digest()[:8] == bytes.fromhex("ad341807dac90df6")
    assert parse_write_result(write_result_payload(ErrorCode.OK, TOKEN)) == (0, write_digest(TOKEN))
    assert parse_write_result(write_result_payload(ErrorCode.WRITE_FAILED)) == (ErrorCode.WRITE_FAILED, b"")


def test_blank_card_present() -> None:
    payload = card_present_payload(b"", blank=True)
    assert is_blank_card(payload)
    assert parse_card_present(payload) == (b"", False)
    assert not is_blank_card(card_present_payload(TOKEN))
    assert not is_blank_card(b"\x02" + TOKEN)  # a blank card has no token


@given(token=st.binary(min_size=1, max_size=MAX_WRITE_TOKEN),
       key=st.none() | st.binary(min_size=CARD_KEY_BYTES, max_size=CARD_KEY_BYTES))
def test_write_card_round_trip(token: bytes, key: bytes | None) -> None:
    payload = CardWrite(token, key).encode()
    assert len(encode_frame(MessageType.WRITE_CARD, payload)) <= 7 + 1024
    assert CardWrite.decode(payload) == CardWrite(token, key)


@pytest.mark.parametrize("payload", [b"", b"\x00", b"\x05abc", b"\x20" + bytes(32), b"\x20" + bytes(10)])
def test_bad_write_card_payloads_are_protocol_errors(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        CardWrite.decode(payload)


@pytest.mark.parametrize("payload", [b"", b"\x00", b"\x00" + bytes(7), b"\x00" + bytes(9), b"\x08\x00"])
def test_bad_write_results_are_protocol_errors(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_write_result(payload)


def test_writes_that_cannot_fit_are_refused_before_the_wire() -> None:
    with pytest.raises(ValueError):
        CardWrite(b"").encode()
    with pytest.raises(ValueError):
        CardWrite(bytes(MAX_WRITE_TOKEN + 1)).encode()
    with pytest.raises(ValueError):
        CardWrite(TOKEN, bytes(31)).encode()
    with pytest.raises(ValueError):
        write_result_payload(ErrorCode.OK)
