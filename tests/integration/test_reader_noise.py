"""A line that carries only noise (wrong baud, broken cable) is reported like a silent reader, never as cards."""

from __future__ import annotations

import contextlib
import os
import random
import time
import tty

from terminal.reader.device import ReaderDevice
from terminal.reader.events import CardPresented, ReaderState, ReaderStatus
from tests.fixtures.sim import EventSink


def test_noise_only_line_counts_as_silent(event_sink: EventSink) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    rng = random.Random(5)
    device = ReaderDevice(os.ttyname(slave), on_event=event_sink, heartbeat_timeout_s=0.8)
    device.start()
    try:
        started = time.monotonic()
        lost_at = None
        while time.monotonic() - started < 3.0:
            with contextlib.suppress(BlockingIOError):  # a steady stream of garbage, about 3 kB/s
                os.write(master, rng.randbytes(64))
            time.sleep(0.02)
            if lost_at is None and any(isinstance(e, ReaderStatus) and e.state == ReaderState.RECONNECTING
                                       for e in event_sink.snapshot()):
                lost_at = time.monotonic() - started
        stats = device.stats
    finally:
        device.stop()
        os.close(master)
        os.close(slave)
    assert lost_at is not None and lost_at < 1.5
    statuses = [e for e in event_sink.snapshot() if isinstance(e, ReaderStatus)]
    assert any("no valid frame" in e.detail for e in statuses)
    assert not [e for e in event_sink.snapshot() if isinstance(e, CardPresented)]
    assert stats.bytes_dropped > 1000 and stats.reconnects >= 1
