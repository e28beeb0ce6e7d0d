"""The reader framing: encoding, CRC, reassembly from any chunking, resync after noise."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit.crc import crc16_ccitt_false, crc16_reference
from cardkit.frames import (
    ETX,
    MAX_PAYLOAD,
    STX,
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
    feedback_payload,
    parse_card_present,
    parse_challenge_response,
    parse_error,
    parse_feedback,
)

frames_st = st.lists(
    st.builds(Frame, st.integers(0, 255), st.binary(max_size=80)), min_size=1, max_size=12)


def _feed_all(decoder: FrameDecoder, chunks: list[bytes]) -> list[Frame]:
    out: list[Frame] = []
    for chunk in chunks:
        out += decoder.data_received(chunk)
    return out


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces


def test_crc_check_value_and_docs_example() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1 == crc16_reference(b"123456789")
    # The worked example in docs/reader-protocol.md: CARD_REMOVED, empty payload.
    assert crc16_ccitt_false(bytes.fromhex("000011")) == 0xCE8C
    assert encode_frame(MessageType.CARD_REMOVED).hex() == "02000011ce8c03"


@given(st.binary(max_size=300))
def test_fast_crc_matches_the_definition(data: bytes) -> None:
    assert crc16_ccitt_false(data) == crc16_reference(data)


def test_frame_layout() -> None:
    raw = encode_frame(MessageType.FEEDBACK, b"\x01")
    assert raw[0] == STX and raw[-1] == ETX
    assert raw[1:3] == b"\x00\x01" and raw[3] == MessageType.FEEDBACK and raw[4] == 1
    assert int.from_bytes(raw[5:7], "big") == crc16_ccitt_false(raw[1:5])


def test_encode_refuses_oversize_payload_and_type() -> None:
    with pytest.raises(ValueError):
        encode_frame(MessageType.CARD_PRESENT, bytes(MAX_PAYLOAD + 1))
    with pytest.raises(ValueError):
        encode_frame(256, b"")


@settings(max_examples=300)
@given(frames_st, st.lists(st.integers(0, 10_000), max_size=20))
def test_any_chunking_yields_the_same_frames(frames: list[Frame], cuts: list[int]) -> None:
    stream = b"".join(f.raw for f in frames)
    decoder = FrameDecoder()
    assert _feed_all(decoder, _split(stream, cuts)) == frames
    assert decoder.frames == len(frames) and decoder.pending == 0
    assert decoder.crc_errors == decoder.resyncs == decoder.bytes_dropped == 0
    assert decoder.last_raw == frames[-1].raw


@settings(max_examples=300)
@given(st.lists(st.tuples(st.binary(max_size=40), st.builds(Frame, st.integers(0, 255), st.binary(max_size=60))),
                min_size=1, max_size=10),
       st.binary(max_size=40), st.lists(st.integers(0, 10_000), max_size=20))
def test_garbage_around_frames_never_hides_a_frame(pairs: list[tuple[bytes, Frame]], tail: bytes,
                                                    cuts: list[int]) -> None:
    stream = b"".join(garbage + frame.raw for garbage, frame in pairs) + tail
    frames = [frame for _, frame in pairs]
    whole = FrameDecoder()
    got = whole.data_received(stream) + whole.idle()
    chunked = FrameDecoder()
    got_chunked = _feed_all(chunked, _split(stream, cuts)) + chunked.idle()
    assert got == got_chunked
    # Random garbage could in principle spell a valid frame of its own; every frame we sent must be there, in order.
    it = iter(got)
    assert all(any(f == g for g in it) for f in frames)


def test_bad_crc_is_counted_and_the_next_frame_survives() -> None:
    good = encode_frame(MessageType.CARD_REMOVED)
    bad = bytearray(encode_frame(MessageType.CARD_PRESENT, b"\x00abc"))
    bad[5] ^= 0x10
    decoder = FrameDecoder()
    assert decoder.data_received(bytes(bad) + good) == [Frame(MessageType.CARD_REMOVED, b"")]
    assert decoder.crc_errors == 1 and decoder.resyncs == 1
    assert decoder.bytes_dropped == len(bad)
    assert decoder.last_bad == bytes(bad)


def test_oversize_length_is_rejected_at_once() -> None:
    decoder = FrameDecoder()
    good = encode_frame(MessageType.CARD_REMOVED)
    assert decoder.data_received(b"\x02\xff\xff" + good) == [Frame(MessageType.CARD_REMOVED, b"")]
    assert decoder.framing_errors == 1


def test_a_frame_inside_a_bogus_candidate_is_found_when_the_candidate_completes() -> None:
    good = encode_frame(MessageType.CARD_REMOVED)
    # STX + LEN 0x0010 announces a 23-byte candidate that swallows the good frame; it fails its checks
    # once complete and the decoder rescans from the byte after its STX.
    stream = b"\x02\x00\x10" + good + bytes(20)
    decoder = FrameDecoder()
    assert decoder.data_received(stream) == [Frame(MessageType.CARD_REMOVED, b"")]


def test_idle_releases_a_frame_stuck_behind_a_bogus_long_candidate() -> None:
    good = encode_frame(MessageType.CARD_REMOVED)
    decoder = FrameDecoder()
    assert decoder.data_received(b"\x02\x03\x00" + good) == []  # candidate wants 775 bytes
    assert decoder.idle() == [Frame(MessageType.CARD_REMOVED, b"")]
    assert decoder.pending == 0


def test_idle_keeps_a_genuine_slow_frame() -> None:
    raw = encode_frame(MessageType.CARD_PRESENT, b"\x00" + bytes(range(40)))
    decoder = FrameDecoder()
    assert decoder.data_received(raw[:20]) == []
    assert decoder.idle() == []
    assert decoder.data_received(raw[20:]) == [Frame(MessageType.CARD_PRESENT, raw[4:-3])]


def test_reset_drops_partial_bytes_but_keeps_counters() -> None:
    decoder = FrameDecoder()
    decoder.data_received(b"zz" + encode_frame(MessageType.CARD_REMOVED)[:4])
    decoder.reset()
    assert decoder.pending == 0 and decoder.bytes_dropped == 2
    assert decoder.data_received(encode_frame(MessageType.CARD_REMOVED)) == [Frame(MessageType.CARD_REMOVED, b"")]


def test_payload_codecs_round_trip() -> None:
    assert parse_card_present(card_present_payload(b"tok", True)) == (b"tok", True)
    assert parse_card_present(card_present_payload(b"tok")) == (b"tok", False)
    status = StatusInfo("hwsim 1.0", 5, 6, 7, 8, 9, 1000)
    assert StatusInfo.decode(status.encode()) == status
    assert parse_error(error_payload(ErrorCode.BAD_FRAME, "crc")) == (ErrorCode.BAD_FRAME, "crc")
    assert parse_challenge_response(challenge_response_payload(b"s" * 64)) == (0, b"s" * 64)
    assert parse_challenge_response(challenge_response_payload(None, ErrorCode.NO_CARD)) == (ErrorCode.NO_CARD, b"")
    assert parse_feedback(feedback_payload(True)) is True and parse_feedback(feedback_payload(False)) is False


@pytest.mark.parametrize("call", [
    lambda: parse_card_present(b""),
    lambda: StatusInfo.decode(b"\x05ab"),
    lambda: parse_error(b""),
    lambda: parse_challenge_response(b""),
    lambda: parse_feedback(b"\x01\x01"),
])
def test_bad_payloads_raise_protocol_error(call) -> None:
    with pytest.raises(ProtocolError):
        call()


def test_idle_sees_past_a_chain_of_bogus_long_candidates() -> None:
    good = encode_frame(MessageType.CARD_REMOVED)
    decoder = FrameDecoder()
    # Each STX here announces a long frame, and so does the one after it: a decoder that only re-parsed
    # sequentially would stay stuck behind the second bogus candidate.
    assert decoder.data_received(bytes.fromhex("0202000202000200") + good) == []
    assert decoder.idle() == [Frame(MessageType.CARD_REMOVED, b"")]


@given(st.binary(max_size=80))
def test_payload_parsers_accept_or_raise_protocol_error_only(payload: bytes) -> None:
    for parse in (parse_card_present, StatusInfo.decode, parse_error, parse_challenge_response, parse_feedback):
        with contextlib.suppress(ProtocolError):
            parse(payload)


@given(st.text(max_size=40), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_status_round_trips_any_firmware_string(firmware: str, uptime: int, taps: int) -> None:
    info = StatusInfo(firmware, uptime, taps)
    decoded = StatusInfo.decode(info.encode())
    assert decoded.uptime_s == uptime and decoded.taps == taps
    assert firmware.encode("utf-8")[:255].decode("utf-8", errors="replace") == decoded.firmware
