"""cardpos reader probe: open the reader port, ask for status, listen, print what came over the line."""

from __future__ import annotations

import argparse
import time

from cardkit.cliutil import Subparsers, add_common, emit, settings_from_args
from cardkit.errors import ReaderError
from terminal.reader.device import ReaderDevice
from terminal.reader.events import CardPresented, ReaderEvent


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "probe", help="check the card reader: status, frames seen, CRC errors, last raw frame",
        description="Open the reader port, send STATUS_REQUEST, listen for a few seconds and print the reader's "
                    "status and line counters. The port is any pyserial URL: /dev/ttyUSB0, /dev/pts/N, "
                    "socket://host:port, rfc2217://host:port, loop://.")
    add_common(parser)
    parser.add_argument("--port", default=None, metavar="URL", help="reader port (default: [reader] port setting)")
    parser.add_argument("--baud", type=int, default=None, help="line speed (default: [reader] baud setting)")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to listen (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=probe)


def probe(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    port = args.port or settings.reader.port
    if not port:
        raise ReaderError("No reader port given; use --port URL or set [reader] port in the config.")
    if not 0 < args.seconds <= 600:
        raise ReaderError("--seconds must be more than 0 and at most 600.")
    if args.baud is not None and args.baud <= 0:  # 0 would otherwise quietly mean "the configured speed"
        raise ReaderError(f"--baud must be a line speed above 0, such as 115200 (not {args.baud}).")
    cards = 0

    def on_event(event: ReaderEvent) -> None:
        nonlocal cards
        if isinstance(event, CardPresented):
            cards += 1

    device = ReaderDevice(port, baud=args.baud or settings.reader.baud, on_event=on_event,
                          heartbeat_timeout_s=max(settings.reader.heartbeat_timeout_s, args.seconds + 1))
    device.start()  # a missing port raises ReaderError: one line from cardpos.cli
    try:
        time.sleep(args.seconds)
    finally:
        device.stop()
    stats = device.stats
    status = device.reader_status
    result = stats.as_dict()
    result.update(answering=status is not None, cards_seen=cards,
                  reader=None if status is None else {
                      "firmware": status.firmware, "uptime_s": status.uptime_s, "taps": status.taps,
                      "tx_frames": status.tx_frames, "rx_frames": status.rx_frames, "rx_errors": status.rx_errors,
                      "heartbeat_ms": status.heartbeat_ms})
    if status is None:
        head = f"reader at {port}: no answer in {args.seconds:g} s (wrong port or baud, or the reader is off)"
    else:
        head = (f"reader at {port}: {status.firmware}, up {status.uptime_s} s, {status.taps} taps, "
                f"heartbeat every {status.heartbeat_ms} ms" if status.heartbeat_ms else
                f"reader at {port}: {status.firmware}, up {status.uptime_s} s, {status.taps} taps, no heartbeat")
    text = "\n".join([
        head,
        f"frames seen: {stats.frames} ({stats.heartbeats} status, {cards} cards)",
        f"CRC errors: {stats.crc_errors}  framing errors: {stats.framing_errors}  resyncs: {stats.resyncs}  "
        f"bytes dropped: {stats.bytes_dropped}",
        f"last raw frame: {stats.last_raw_hex or '(none)'}",
        *([f"last error: {stats.last_error}"] if stats.last_error else []),
    ])
    emit(result, args.json, text)
    return 0 if status is not None else 1
