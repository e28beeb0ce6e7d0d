"""Commands for the printer simulator, from its console (stdin) or its control file: one line in, one reply out.

Every reply starts with ``ok`` or ``error``. Commands::

    paper out|low|in     the paper roll: gone, near its end, loaded (``in`` = ``ok``)
    paper N              near its end with N lines left: the line after those runs out of paper
    cover open|close     the cover
    offline / online     the printer takes itself offline (an error) / comes back
    status               state and counters
    help                 this list
    quit                 stop the simulator
"""

from __future__ import annotations

from hwsim.console import Quit
from hwsim.printer import SimPrinter

HELP = "commands: paper out|low|in|N, cover open|close, offline, online, status, help, quit"


class PrinterConsole:
    def __init__(self, printer: SimPrinter, out_dir: str) -> None:
        self.printer = printer
        self.out_dir = out_dir

    def execute(self, line: str) -> str:
        """Run one command line and return its reply line (raises ``Quit`` after ``quit``)."""
        words = line.lower().split()
        if not words:
            return "error empty command (try 'help')"
        name, args = words[0], words[1:]
        handler = getattr(self, f"_cmd_{name}", None)
        if handler is None:
            return f"error unknown command {name!r} (try 'help')"
        try:
            with self.printer.lock:
                reply: str = handler(args)
        except (ValueError, IndexError):
            return f"error bad arguments for {name!r} ({HELP})"
        return reply

    @staticmethod
    def _discarded(lines: int) -> str:
        return f" (discarded an unfinished ticket of {lines} lines)" if lines else ""

    def _cmd_help(self, args: list[str]) -> str:
        return f"ok {HELP}"

    def _cmd_paper(self, args: list[str]) -> str:
        (state,) = args
        if state.isdigit():
            self.printer.mechanism.set_roll(int(state))
            return f"ok paper low ({int(state)} lines left)"
        state = "ok" if state in ("in", "ok") else state
        lines = self.printer.mechanism.set_paper(state)
        return f"ok paper {state}{self._discarded(lines)}"

    def _cmd_cover(self, args: list[str]) -> str:
        (state,) = args
        if state not in ("open", "close", "closed"):
            raise ValueError("cover open or close")
        lines = self.printer.mechanism.set_cover(state == "open")
        return f"ok cover {'open' if state == 'open' else 'closed'}{self._discarded(lines)}"

    def _cmd_offline(self, args: list[str]) -> str:
        if args:
            raise ValueError("offline takes no arguments")
        return f"ok offline{self._discarded(self.printer.mechanism.set_offline(True))}"

    def _cmd_online(self, args: list[str]) -> str:
        if args:
            raise ValueError("online takes no arguments")
        self.printer.mechanism.set_offline(False)
        return "ok online"

    def _cmd_status(self, args: list[str]) -> str:
        return (f"ok status {self.printer.mechanism.summary()} bytes_in={self.printer.stream.bytes_in} "
                f"line={self.printer.line.describe()!r} out={self.out_dir!r}")

    def _cmd_quit(self, args: list[str]) -> str:
        raise Quit
