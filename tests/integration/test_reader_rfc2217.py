"""rfc2217:// works like any other port: a small RFC 2217 server (pyserial's PortManager) bridges TCP to the
simulator's pty, the way a network serial server in a shop would."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
import serial
import serial.rfc2217

from terminal.reader.device import ReaderDevice
from terminal.reader.events import CardPresented, ReaderState, ReaderStatus
from tests.fixtures.sim import EventSink, SimFactory


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)


class _PtyLine:
    """A pty has no modem lines: report them steady and ignore modem-control changes (PortManager asks)."""

    cts = dsr = cd = True
    ri = False

    def __init__(self, port: serial.SerialBase) -> None:
        object.__setattr__(self, "_port", port)

    def __getattr__(self, name: str) -> object:
        return getattr(self._port, name)

    def __setattr__(self, name: str, value: object) -> None:
        if name not in ("rts", "dtr", "break_condition"):
            setattr(self._port, name, value)


def _serve_one(listener: socket.socket, port_url: str, stop: threading.Event) -> None:
    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            sock, _ = listener.accept()
            break
        except TimeoutError:
            continue
    else:
        return
    sock.settimeout(0.05)
    line = serial.serial_for_url(port_url, timeout=0.05)
    manager = serial.rfc2217.PortManager(_PtyLine(line), _Connection(sock))

    def to_client() -> None:
        while not stop.is_set():
            data = line.read(line.in_waiting or 1)
            if data:
                with contextlib.suppress(OSError):
                    sock.sendall(b"".join(manager.escape(data)))

    pump = threading.Thread(target=to_client, daemon=True)
    pump.start()
    try:
        while not stop.is_set():
            try:
                data = sock.recv(1024)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            for byte in manager.filter(data):
                line.write(byte)
    finally:
        stop.set()
        pump.join(timeout=2)
        line.close()
        sock.close()


@pytest.mark.filterwarnings("ignore:set(Daemon|Name):DeprecationWarning")  # inside pyserial's rfc2217 client
def test_reader_over_rfc2217(sim_process: SimFactory, wallet_file, event_sink: EventSink) -> None:
    sim = sim_process(wallet_file)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()
    server = threading.Thread(target=_serve_one, args=(listener, sim.port, stop), daemon=True)
    server.start()
    device = ReaderDevice(f"rfc2217://127.0.0.1:{listener.getsockname()[1]}", on_event=event_sink)
    try:
        device.start()
        event_sink.wait_for(lambda e: isinstance(e, ReaderStatus) and e.state == ReaderState.CONNECTED, 5)
        assert sim.command("tap 2").startswith("ok")
        _, event = event_sink.wait_for(lambda e: isinstance(e, CardPresented), 5)
        assert isinstance(event, CardPresented) and len(event.token) > 100
        device.feedback(True)  # and the other way: the reader hears the host through the bridge
        deadline = time.monotonic() + 3
        while "feedback_ok=1 " not in (status := sim.command("status")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "feedback_ok=1 " in status
    finally:
        device.stop()
        stop.set()
        server.join(timeout=5)
        listener.close()
