"""Technician commands, shared by the interactive console (stdin) and scripts: one line in, one reply line out.

Every reply starts with ``ok`` or ``error``. Commands::

    list                 the wallet, numbered
    tap N [hold]         card N on the reader; lifted off after a short dwell unless ``hold``
    remove               lift the card off the reader now
    noise [BYTES]        a burst of random bytes on the line (default 32)
    flip                 flip one bit inside the next frame (between TYPE and CRC: it fails its CRC)
    truncate             send only the first half of the next frame
    dup                  send the next frame twice
    stall SECONDS        the reader goes quiet; queued frames go out afterwards
    unplug / replug      pull the reader off the line / put it back
    slow BAUD            pace the line at BAUD from now on
    dwell SECONDS        how long later taps stay on the reader
    blank [LABEL]        add a blank card to the wallet and put it on the reader (held) for a WRITE_CARD
    card N               card N's kind and token text (a written blank card shows its new token)
    writefail            the next WRITE_CARD fails (the card stays blank)
    writecut             the next WRITE_CARD is interrupted: the card leaves the reader, still blank
    status               counters and state
    help                 this list
    quit                 stop the simulator
"""

from __future__ import annotations

from pathlib import Path

from cardkit.errors import CardposError
from cardkit.wallet import Wallet, WalletCard
from hwsim.reader import SimReader

HELP = ("commands: list, tap N [hold], remove, noise [BYTES], flip, truncate, dup, stall SECONDS, unplug, replug, "
        "slow BAUD, dwell SECONDS, blank [LABEL], card N, writefail, writecut, status, help, quit")
MAX_NOISE = 4096


class Quit(Exception):
    """The ``quit`` command."""


class Console:
    def __init__(self, reader: SimReader, wallet: Wallet, wallet_path: Path | None = None) -> None:
        self.reader = reader
        self.wallet = wallet
        self.wallet_path = wallet_path
        reader.on_written = self._written

    def _written(self, number: int | None, card: WalletCard) -> None:
        """A blank card received its token: the wallet (and its file) now holds the written card."""
        if number is None or not 1 <= number <= len(self.wallet.cards):
            return
        self.wallet.cards[number - 1] = card
        if self.wallet_path is not None:
            self.wallet.save(self.wallet_path)

    def execute(self, line: str) -> str:
        """Run one command line and return its reply line (raises ``Quit`` after ``quit``)."""
        words = line.split()
        if not words:
            return "error empty command (try 'help')"
        name, args = words[0].lower(), words[1:]
        handler = getattr(self, f"_cmd_{name}", None)
        if handler is None:
            return f"error unknown command {name!r} (try 'help')"
        try:
            reply: str = handler(args)
        except (ValueError, IndexError):
            return f"error bad arguments for {name!r} ({HELP})"
        except CardposError as exc:
            return f"error {exc}"
        return reply

    def _cmd_help(self, args: list[str]) -> str:
        return f"ok {HELP}"

    def _cmd_list(self, args: list[str]) -> str:
        cards = "; ".join(f"{i} {c.kind} {c.label}" for i, c in enumerate(self.wallet.cards, start=1))
        return f"ok {len(self.wallet.cards)} cards" + (f": {cards}" if cards else "")

    def _cmd_tap(self, args: list[str]) -> str:
        number = int(args[0])
        hold = args[1:] == ["hold"]
        if args[1:] and not hold:
            raise ValueError("tap takes N and optionally 'hold'")
        card = self.wallet.card(number)
        if not self.reader.line.plugged:
            return "error the reader is unplugged"
        self.reader.tap(card, hold=hold or card.blank, number=number)
        return f"ok tapped {number} {card.kind}{' (held)' if hold or card.blank else ''}"

    def _cmd_blank(self, args: list[str]) -> str:
        if not self.reader.line.plugged:
            return "error the reader is unplugged"
        label = " ".join(args) or f"blank card {len(self.wallet.cards) + 1}"
        number = self.wallet.add(WalletCard(label=label, kind="blank", token_text=""))
        self.reader.tap(self.wallet.card(number), hold=True, number=number)
        return f"ok blank card {number} on the reader"

    def _cmd_card(self, args: list[str]) -> str:
        card = self.wallet.card(int(args[0]))
        return f"ok card {args[0]} {card.kind} {card.token_text or '-'}"

    def _cmd_writefail(self, args: list[str]) -> str:
        self.reader.arm_write("fail")
        return "ok the next write fails"

    def _cmd_writecut(self, args: list[str]) -> str:
        self.reader.arm_write("interrupt")
        return "ok the next write is interrupted"

    def _cmd_remove(self, args: list[str]) -> str:
        return "ok removed" if self.reader.remove() else "error no card on the reader"

    def _cmd_noise(self, args: list[str]) -> str:
        count = int(args[0]) if args else 32
        if not 1 <= count <= MAX_NOISE:
            raise ValueError("noise byte count out of range")
        self.reader.noise(count)
        return f"ok noise {count} bytes"

    def _cmd_flip(self, args: list[str]) -> str:
        self.reader.arm("flip")
        return "ok flip armed for the next frame"

    def _cmd_truncate(self, args: list[str]) -> str:
        self.reader.arm("truncate")
        return "ok truncate armed for the next frame"

    def _cmd_dup(self, args: list[str]) -> str:
        self.reader.arm("dup")
        return "ok dup armed for the next frame"

    def _cmd_stall(self, args: list[str]) -> str:
        seconds = float(args[0])
        if not 0 <= seconds <= 3600:
            raise ValueError("stall seconds out of range")
        self.reader.stall(seconds)
        return f"ok stalled for {seconds:g} s"

    def _cmd_unplug(self, args: list[str]) -> str:
        if not self.reader.line.plugged:
            return "error already unplugged"
        self.reader.unplug()
        return "ok unplugged"

    def _cmd_replug(self, args: list[str]) -> str:
        if self.reader.line.plugged:
            return "error already plugged in"
        self.reader.replug()
        return f"ok replugged {self.reader.line.describe()}"

    def _cmd_slow(self, args: list[str]) -> str:
        baud = int(args[0])
        if not 50 <= baud <= 4_000_000:
            raise ValueError("baud out of range")
        self.reader.set_baud(baud)
        return f"ok line paced at {baud} baud"

    def _cmd_dwell(self, args: list[str]) -> str:
        seconds = float(args[0])
        if not 0 <= seconds <= 3600:
            raise ValueError("dwell seconds out of range")
        self.reader.set_dwell(seconds)
        return f"ok dwell {seconds:g} s"

    def _cmd_status(self, args: list[str]) -> str:
        return f"ok status {self.reader.summary()}"

    def _cmd_quit(self, args: list[str]) -> str:
        raise Quit
