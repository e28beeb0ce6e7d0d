"""Whatever ends the demo ends every child it started.

Ctrl+Q and a crash inside the app return from the app, and the demo's ``finally`` stops the children. SIGINT,
SIGTERM and SIGHUP (the terminal window closed) come here: the children are stopped at once on a thread of their
own, the app is asked to quit through its event loop (so the terminal is given back in a usable state), and a
signal during set-up, before the app runs, unwinds the set-up with ``DemoEnded``. Should the app not quit within
a grace period (a dead terminal can wedge it), the process exits anyway, its children already gone. SIGKILL and
hard crashes never reach Python: the children's parent-death signal covers those (``cardpos.parentdeath``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

ENDING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
APP_QUIT_GRACE_S = 10.0


class DemoEnded(BaseException):  # like KeyboardInterrupt: passes any ``except Exception`` on its way out
    """A signal ended the demo before its app was running."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Ending:
    """Signal handlers for the demo's lifetime (a context manager; main thread only).

    ``stop_children`` must be safe to call twice and from another thread; ``running_app`` returns the app
    (anything with ``exit()``) once it exists.
    """

    def __init__(self, stop_children: Callable[[], None], running_app: Callable[[], Any]) -> None:
        self._stop_children = stop_children
        self._running_app = running_app
        self._previous: dict[int, Any] = {}
        self._finished = threading.Event()
        self._quiet = False
        self.signum: int | None = None
        """The first ending signal received, if any."""

    def __enter__(self) -> Ending:
        for sig in ENDING_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._finished.set()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def quiet(self) -> None:
        """From now on (the demo is cleaning up) a signal only hurries the clean-up; it never interrupts it."""
        self._quiet = True

    @property
    def exit_code(self) -> int:
        """0, or 128 + the signal, as a shell reports a process ended by that signal."""
        return 0 if self.signum is None else 128 + self.signum

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            return  # already ending
        self.signum = signum
        threading.Thread(target=self._stop_then_watch, args=(signum,), name="demo-ending", daemon=True).start()
        if self._quiet:
            return
        app = self._running_app()
        try:
            loop = asyncio.get_running_loop()  # the app's loop, when the signal interrupted it
        except RuntimeError:
            loop = None
        if app is not None and loop is not None:
            loop.call_soon_threadsafe(app.exit)
            return
        raise DemoEnded(signum)

    def _stop_then_watch(self, signum: int) -> None:
        self._stop_children()
        if not self._finished.wait(APP_QUIT_GRACE_S):
            os._exit(128 + signum)  # the app did not quit: its children are stopped, so leave without it
