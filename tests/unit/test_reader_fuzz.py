"""Fuzz: 100,000+ valid frames hidden in random noise and corrupted frames, fed in random chunks.

Every valid frame must come out, in order; nothing else may come out (the corrupted copies carry a marker byte
that no valid frame has); no exception escapes. Seeded, so a failure reproduces; CARDPOS_SOAK=1 runs 10x more.
"""

from __future__ import annotations

import os
import random
import time

from cardkit.frames import STX, Frame, FrameDecoder, MessageType, encode_frame

FRAMES = 100_000 * (10 if os.environ.get("CARDPOS_SOAK") else 1)
BAD_MARK = 0xEE  # first payload byte of every corrupted frame; valid frames never start with it
TYPES = [int(t) for t in MessageType]


def _valid(rng: random.Random, seq: int) -> Frame:
    body = seq.to_bytes(4, "big") + rng.randbytes(rng.randrange(0, 48))
    return Frame(rng.choice(TYPES), bytes((rng.randrange(0, BAD_MARK),)) + body)


def _noise(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.55:
        return b""
    if kind < 0.80:
        return rng.randbytes(rng.randrange(1, 24))
    if kind < 0.90:  # STX-heavy noise: many bogus candidates, some with plausible lengths
        return bytes(rng.choice((STX, STX, 0x00, 0x01, 0x03, rng.randrange(256))) for _ in range(rng.randrange(1, 16)))
    # a corrupted frame: one or more flipped bits, or cut short
    raw = bytearray(encode_frame(rng.choice(TYPES), bytes((BAD_MARK,)) + rng.randbytes(rng.randrange(0, 40))))
    if rng.random() < 0.3:
        return bytes(raw[: rng.randrange(1, len(raw))])
    for bit in rng.sample(range(len(raw) * 8), rng.randrange(1, 3)):  # distinct bits: two flips never cancel
        raw[bit // 8] ^= 1 << (bit % 8)
    return bytes(raw)


def test_fuzz_every_valid_frame_recovered_nothing_invalid_delivered() -> None:
    rng = random.Random(20261123)
    sent: list[Frame] = []
    parts: list[bytes] = []
    for seq in range(FRAMES):
        parts.append(_noise(rng))
        frame = _valid(rng, seq)
        sent.append(frame)
        parts.append(frame.raw)
    parts.append(rng.randbytes(30))
    stream = b"".join(parts)

    started = time.perf_counter()
    decoder = FrameDecoder()
    got: list[Frame] = []
    pos = 0
    while pos < len(stream):
        step = rng.choice((1, 2, 7, 64, 300, 1500))
        got += decoder.data_received(stream[pos : pos + step])
        pos += step
        if rng.random() < 0.05:  # the line goes quiet between chunks now and then
            got += decoder.idle()
    got += decoder.idle()
    elapsed = time.perf_counter() - started

    assert not [f for f in got if f.payload[:1] == bytes((BAD_MARK,))], "a corrupted frame was delivered"
    assert len(got) == len(sent)
    assert got == sent
    assert decoder.frames == FRAMES
    assert decoder.crc_errors > 0 and decoder.resyncs > 0 and decoder.bytes_dropped > 0
    print(f"\nfuzz: {FRAMES} frames in {len(stream)} bytes decoded in {elapsed:.2f} s; "
          f"crc_errors={decoder.crc_errors} framing_errors={decoder.framing_errors} resyncs={decoder.resyncs}")
    assert elapsed < 120  # bounded: a quadratic rescan would blow far past this
