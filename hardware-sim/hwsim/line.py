"""The simulator's side of the serial line: a pty (default) or a TCP listener, with unplug and replug.

Unplugging a pty closes its master, so the terminal's open slave fails its next read exactly like a USB
adapter pulled out. A replug needs a new pty, whose /dev/pts number usually differs; with ``link`` set the
line keeps a symlink at that fixed path pointing at the current slave (removed while unplugged), the way udev
keeps /dev/serial/by-id/... for a real adapter, so a driver configured with the link path reconnects by itself.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import tty
from pathlib import Path
from typing import Protocol

from hwsim.errors import SimulatorError


class Line(Protocol):
    plugged: bool

    def open(self) -> None: ...
    def describe(self) -> str: ...
    def write(self, data: bytes) -> int: ...
    def read(self, timeout: float) -> bytes: ...
    def unplug(self) -> None: ...
    def close(self) -> None: ...


class PtyLine:
    """A pseudo-terminal; the terminal opens the slave path (or ``link``)."""

    def __init__(self, link: Path | None = None) -> None:
        self.link = link
        self.plugged = False
        self.slave_path = ""
        self._master = -1
        self._slave = -1

    def open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing: bytes pass through untouched
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.slave_path = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            try:
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(self.slave_path)
                os.replace(tmp, self.link)  # atomic: the driver never sees a half-made link
            except OSError as exc:
                raise SimulatorError(f"cannot create the link {self.link}: {exc.strerror}", orig=exc) from exc
        self.plugged = True

    def describe(self) -> str:
        return f"pty {self.slave_path}"

    def write(self, data: bytes) -> int:
        """Write what the pty takes now; bytes nobody reads are lost, like on a real line."""
        if not self.plugged:
            return 0
        try:
            return os.write(self._master, data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EBADF):
                return 0
            raise

    def read(self, timeout: float) -> bytes:
        if not self.plugged:
            return b""
        try:
            ready, _, _ = select.select([self._master], [], [], timeout)
            return os.read(self._master, 4096) if ready else b""
        except (BlockingIOError, ValueError):
            return b""
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EBADF):
                return b""
            raise

    def unplug(self) -> None:
        self.plugged = False
        if self.link is not None:
            with contextlib.suppress(OSError):
                self.link.unlink(missing_ok=True)
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1

    def close(self) -> None:
        self.unplug()


class TcpLine:
    """A TCP listener on 127.0.0.1 for ``socket://127.0.0.1:PORT``; one terminal at a time (a newer one wins)."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.plugged = False
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None

    def open(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
        except OSError as exc:
            listener.close()
            raise SimulatorError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}", orig=exc) from exc
        listener.listen(1)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self.plugged = True

    def describe(self) -> str:
        return f"listening socket://{self.host}:{self.port}"

    def write(self, data: bytes) -> int:
        client = self._client
        if not self.plugged or client is None:
            return 0
        try:
            return client.send(data, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return 0
        except OSError:
            self._drop_client()
            return 0

    def read(self, timeout: float) -> bytes:
        listener, client = self._listener, self._client
        if not self.plugged or listener is None:
            return b""
        watch = [listener] + ([client] if client is not None else [])
        try:
            ready, _, _ = select.select(watch, [], [], timeout)
        except (OSError, ValueError):
            return b""
        if listener in ready:
            try:
                new, _ = listener.accept()
            except OSError:
                return b""
            new.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._drop_client()
            self._client = new
            return b""
        if client is not None and client in ready:
            try:
                data = client.recv(4096)
            except OSError:
                data = b""
            if not data:
                self._drop_client()
            return data
        return b""

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(OSError):
                client.close()

    def unplug(self) -> None:
        self.plugged = False
        self._drop_client()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def close(self) -> None:
        self.unplug()
