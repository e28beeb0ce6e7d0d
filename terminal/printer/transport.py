"""Printer URLs and the byte pipes behind them: open, write, read with a timeout, close.

URL forms (docs/printer.md):

* ``serial:///dev/ttyUSB0?baud=19200&flow=rtscts`` — a serial port (``flow``: none, rtscts, dsrdtr, xonxoff);
  a bare path (``/dev/ttyUSB0``, the simulator's ``--link`` path) means the same at 19200 baud.
* any other pyserial URL as it is: ``socket://host:port``, ``rfc2217://host:port``, ``loop://`` ...
* ``tcp://host[:port]`` — a network printer's raw port (9100 by default).
* ``usb://VID:PID[?in_ep=0x82&out_ep=0x01]`` — a USB printer class device (hex ids, e.g. ``usb://04b8:0202``).

Why these classes:

* Serial and pyserial URLs go through ``serial.serial_for_url`` (house rule 2) rather than python-escpos's
  ``Serial``, which opens only device paths with ``serial.Serial`` — no pty link by URL, no ``socket://``,
  ``rfc2217://`` or ``loop://`` — and reports a failed open as a two-line message.
* ``tcp://`` uses python-escpos's ``Network``: the raw port-9100 socket it is made for (connect with a timeout,
  ``sendall``). Status answers are read from its socket with a per-call timeout, which its ``_read`` lacks.
* ``usb://`` uses python-escpos's ``Usb`` (pyusb + libusb: finds the device, detaches the kernel's usblp driver,
  writes to the OUT endpoint). It needs the pyusb package, which cardpos does not install; without it the URL
  fails with one sentence. No test here can reach a USB printer.

Every transport raises ``PrinterError`` (one sentence, original kept) when it cannot open, and ``LinkLost`` (a
``PrinterError``) when the pipe breaks later; the caller decides what that means for the receipt.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, urlsplit

import serial

from terminal.printer.errors import PrinterError

DEFAULT_BAUD = 19200
DEFAULT_TCP_PORT = 9100
PYSERIAL_SCHEMES = frozenset({"socket", "rfc2217", "loop", "spy", "alt", "hwgrep", "cp2110"})
FLOW_CONTROLS = ("none", "rtscts", "dsrdtr", "xonxoff")
URL_FORMS = "serial:///dev/ttyUSB0?baud=19200, a pyserial URL such as socket://HOST:PORT, tcp://HOST:9100 or " \
            "usb://VID:PID"


class LinkLost(PrinterError):
    """The connection to the printer broke after it was opened."""


@dataclass(frozen=True, slots=True)
class PrinterAddress:
    url: str
    kind: Literal["serial", "tcp", "usb"]
    target: str = ""  # serial: the port or pyserial URL
    baud: int = DEFAULT_BAUD
    flow: str = "none"
    host: str = ""
    port: int = DEFAULT_TCP_PORT
    vendor_id: int = 0
    product_id: int = 0
    in_ep: int = 0x82
    out_ep: int = 0x01


def _bad(url: str, why: str) -> PrinterError:
    return PrinterError(f"The printer URL {url!r} {why}; use {URL_FORMS}.")


def _options(url: str, query: dict[str, list[str]], allowed: set[str]) -> dict[str, str]:
    """The URL's ``?name=value`` options (the last of repeated ones); an option not in ``allowed`` is an error."""
    unknown = set(query) - allowed
    if unknown:
        raise _bad(url, f"has an unknown option {sorted(unknown)[0]!r}")
    return {name: values[-1] for name, values in query.items()}


def parse_printer_url(url: str) -> PrinterAddress:
    """Check ``url`` and say what it names. Raises ``PrinterError`` (one sentence) for anything else."""
    text = url.strip()
    if not text:
        raise _bad(url, "is empty")
    if "://" not in text and not text.startswith("serial:"):
        return PrinterAddress(url=url, kind="serial", target=text)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    query = parse_qs(parts.query, keep_blank_values=True)
    if scheme == "serial":
        port = parts.netloc + parts.path
        if not port:
            raise _bad(url, "names no serial port")
        options = _options(url, query, {"baud", "flow"})
        baud_text = options.get("baud")
        flow = options.get("flow") or "none"
        if flow not in FLOW_CONTROLS:
            raise _bad(url, f"has flow={flow!r} (one of {', '.join(FLOW_CONTROLS)})")
        try:
            baud = int(baud_text) if baud_text is not None else DEFAULT_BAUD
        except ValueError:
            raise _bad(url, f"has baud={baud_text!r}, not a number") from None
        if not 50 <= baud <= 4_000_000:
            raise _bad(url, f"has baud={baud}, outside 50 to 4000000")
        return PrinterAddress(url=url, kind="serial", target=port, baud=baud, flow=flow)
    if scheme in PYSERIAL_SCHEMES:
        return PrinterAddress(url=url, kind="serial", target=text)
    if scheme == "tcp":
        _options(url, query, set())
        try:
            host, tcp_port = parts.hostname, parts.port
        except ValueError:
            raise _bad(url, "has a bad port number") from None
        if not host:
            raise _bad(url, "names no host")
        return PrinterAddress(url=url, kind="tcp", host=host, port=tcp_port or DEFAULT_TCP_PORT)
    if scheme == "usb":
        ids = (parts.netloc + parts.path).strip("/")
        vendor, _, product = ids.partition(":")
        options = _options(url, query, {"in_ep", "out_ep"})
        try:
            vendor_id, product_id = int(vendor, 16), int(product, 16)
            in_ep = int(options.get("in_ep") or "0x82", 16)
            out_ep = int(options.get("out_ep") or "0x01", 16)
        except ValueError:
            raise _bad(url, "needs hex ids as usb://VID:PID (e.g. usb://04b8:0202)") from None
        if not (0 < vendor_id <= 0xFFFF and 0 < product_id <= 0xFFFF and 0 < in_ep <= 0xFF and 0 < out_ep <= 0xFF):
            raise _bad(url, "has ids or endpoints out of range")
        return PrinterAddress(url=url, kind="usb", vendor_id=vendor_id, product_id=product_id, in_ep=in_ep,
                              out_ep=out_ep)
    raise _bad(url, f"has an unknown scheme {parts.scheme!r}")


class Transport(Protocol):
    """A byte pipe to one printer, open until ``close``."""

    def write(self, data: bytes) -> None: ...
    def read(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes; fewer (maybe none) when ``timeout`` seconds pass first."""
        ...
    def discard_input(self) -> None:
        """Drop bytes that arrived unasked (a late answer to an earlier, timed-out request)."""
        ...
    def seconds_for(self, size: int) -> float:
        """How long ``size`` bytes take on the wire (0 when the link is fast enough not to matter)."""
        ...
    def close(self) -> None: ...


def open_transport(address: PrinterAddress, *, connect_timeout_s: float, write_timeout_s: float) -> Transport:
    if address.kind == "tcp":
        return NetworkTransport(address, connect_timeout_s, write_timeout_s)
    if address.kind == "usb":
        return UsbTransport(address, write_timeout_s)
    return SerialTransport(address, write_timeout_s)


def open_error(url: str, exc: BaseException) -> PrinterError:
    """One clear sentence for a printer that cannot be opened, the original kept."""
    code = getattr(exc, "errno", None)
    text = str(exc).lower()
    if isinstance(exc, ValueError):
        message = f"The printer port {url!r} is not a valid port or URL ({exc})."
    elif code in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "no such file" in text:
        message = f"The printer port {url} does not exist; is the printer plugged in and switched on?"
    elif code in (errno.EACCES, errno.EPERM):
        message = (f"Permission denied opening the printer port {url}; "
                   f"add this user to the port's group (often 'dialout' or 'lp').")
    elif code == errno.EBUSY or "lock" in text:
        message = f"The printer port {url} is in use by another program."
    elif code == errno.ECONNREFUSED or "refused" in text:
        message = f"Nothing is listening at the printer address {url}; is the printer switched on?"
    elif isinstance(exc, TimeoutError) or "timed out" in text:
        message = f"The printer at {url} does not answer; is it switched on and on this network?"
    else:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        message = f"Cannot open the printer at {url}: {reason}."
    return PrinterError(message, orig=exc)


class SerialTransport:
    """A serial port or any pyserial URL."""

    def __init__(self, address: PrinterAddress, write_timeout_s: float) -> None:
        self.address = address
        # pyserial's rfc2217 client refuses write_timeout (as in the card reader driver).
        write_timeout = None if address.target.lower().startswith("rfc2217://") else write_timeout_s
        try:
            self._port = serial.serial_for_url(
                address.target, baudrate=address.baud, timeout=0, write_timeout=write_timeout, exclusive=True,
                rtscts=address.flow == "rtscts", dsrdtr=address.flow == "dsrdtr", xonxoff=address.flow == "xonxoff")
        except (serial.SerialException, OSError, ValueError) as exc:
            raise open_error(address.url, exc) from exc

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkLost(f"The connection to the printer at {self.address.url} was lost ({exc}).",
                           orig=exc) from exc

    def read(self, size: int, timeout: float) -> bytes:
        try:
            self._port.timeout = timeout
            return bytes(self._port.read(size))
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
            # TypeError/AttributeError: pyserial reading a port that vanished under it.
            raise LinkLost(f"The connection to the printer at {self.address.url} was lost ({exc}).",
                           orig=exc) from exc

    def discard_input(self) -> None:
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.reset_input_buffer()

    def seconds_for(self, size: int) -> float:
        is_device = "://" not in self.address.target
        return size * 10 / self.address.baud if is_device else 0.0  # 8N1: ten bits a byte

    def close(self) -> None:
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.close()


class NetworkTransport:
    """A network printer's raw TCP port, through python-escpos's ``Network``."""

    def __init__(self, address: PrinterAddress, connect_timeout_s: float, write_timeout_s: float) -> None:
        from escpos.exceptions import DeviceNotFoundError
        from escpos.printer import Network

        self.address = address
        self._write_timeout_s = write_timeout_s
        self._printer = Network(address.host, address.port, timeout=connect_timeout_s)
        try:
            self._printer.open()
        except DeviceNotFoundError as exc:
            cause = exc.__context__ or exc  # Network.open raises it while handling the OSError
            raise open_error(address.url, cause) from exc
        self._socket: socket.socket = self._printer.device
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        try:
            self._socket.settimeout(self._write_timeout_s)
            self._printer._raw(data)  # python-escpos's driver hook: sendall on its socket
        except OSError as exc:
            raise LinkLost(f"The connection to the printer at {self.address.url} was lost ({exc}).",
                           orig=exc) from exc

    def read(self, size: int, timeout: float) -> bytes:
        data = bytearray()
        deadline = time.monotonic() + timeout
        while len(data) < size:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                self._socket.settimeout(left)
                chunk = self._socket.recv(size - len(data))
            except TimeoutError:
                break
            except OSError as exc:
                raise LinkLost(f"The connection to the printer at {self.address.url} was lost ({exc}).",
                               orig=exc) from exc
            if not chunk:
                raise LinkLost(f"The printer at {self.address.url} closed the connection.")
            data += chunk
        return bytes(data)

    def discard_input(self) -> None:
        self._socket.setblocking(False)
        try:
            while self._socket.recv(4096):
                pass
        except OSError:
            pass  # BlockingIOError: nothing left; anything else shows up on the next read
        finally:
            self._socket.setblocking(True)

    def seconds_for(self, size: int) -> float:
        return 0.0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._printer.close()


class UsbTransport:
    """A USB printer class device, through python-escpos's ``Usb`` (needs pyusb and libusb; untested here)."""

    def __init__(self, address: PrinterAddress, write_timeout_s: float) -> None:
        from escpos.exceptions import DeviceNotFoundError
        from escpos.printer import Usb

        self.address = address
        ids = f"{address.vendor_id:04x}:{address.product_id:04x}"
        if not Usb.is_usable():
            # Checked before building one: Usb's close() (also run by its __del__) fails the same way.
            raise PrinterError(f"USB printers need the pyusb package and libusb, which are not installed; "
                               f"install them or connect the printer {ids} by serial or network.")
        self._printer: Any = Usb(address.vendor_id, address.product_id, timeout=int(write_timeout_s * 1000),
                                 in_ep=address.in_ep, out_ep=address.out_ep)
        try:
            self._printer.open()
        except DeviceNotFoundError as exc:
            raise PrinterError(f"No USB printer {ids} is connected (or this user may not open it).",
                               orig=exc) from exc

    def write(self, data: bytes) -> None:
        try:
            self._printer._raw(data)
        except Exception as exc:  # pyusb's USBError and friends, not importable without pyusb
            raise LinkLost(f"The USB printer {self.address.url} was lost ({exc}).", orig=exc) from exc

    def read(self, size: int, timeout: float) -> bytes:
        try:
            data = self._printer.device.read(self._printer.in_ep, size, max(1, int(timeout * 1000)))
        except Exception as exc:
            if "timeout" in type(exc).__name__.lower() or "timed out" in str(exc).lower():
                return b""
            raise LinkLost(f"The USB printer {self.address.url} was lost ({exc}).", orig=exc) from exc
        return bytes(data)

    def discard_input(self) -> None:
        with contextlib.suppress(Exception):
            while self.read(64, 0.001):
                pass

    def seconds_for(self, size: int) -> float:
        return 0.0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._printer.close()
