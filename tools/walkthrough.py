"""The newcomer's walk-through of `cardpos demo` at 80x24 in tmux, captured as text in docs/screens/walk-*.txt.

A newcomer's path with keys alone: start the demo, read the demo PINs on the sign-in screen, sign in, tap a card
from the demo wallet (F2), a sale, a top-up, the membership fee, a gift from the catalogue, a refund approved by
the supervisor, the Z-report printed on the simulated printer, the switch to Chinese, quit. Each step waits for
words on the screen (never a fixed sleep alone), then saves ``tmux capture-pane`` as a text file; the Z-report
as the printer simulator rendered it is saved too.

    python tools/walkthrough.py [--out docs/screens] [--keep]     # about a minute; needs tmux
    python tools/walkthrough.py --dry-run                          # the steps, without running anything

Not part of ``make test`` (it starts a ledger, two simulators and the app); ``tests/unit/test_walkthrough.py``
checks that the script and its steps hold together.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SESSION = "cardpos-walkthrough"
WIDTH, HEIGHT = 80, 24


class WalkError(Exception):
    """A step did not see what it waited for (the screen at that moment is in the message)."""


@dataclass(frozen=True)
class Step:
    name: str
    """The capture's file name part: walk-NN-<name>.txt (empty: no capture)."""
    keys: tuple[str, ...]
    """tmux send-keys arguments, sent one by one (``Enter``, ``F2``, ``C-q``; text is sent literally)."""
    wait_for: str
    """A regular expression the screen shows once the step is done."""
    timeout_s: float = 30.0


class Tmux:
    def __init__(self, session: str) -> None:
        self.session = session

    def run(self, *args: str) -> str:
        done = subprocess.run(["tmux", *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise WalkError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def start(self, command: str, env: dict[str, str]) -> None:
        exports = " ".join(f"{k}={_quote(v)}" for k, v in env.items())
        self.run("new-session", "-d", "-s", self.session, "-x", str(WIDTH), "-y", str(HEIGHT),
                 f"env {exports} {command}; sleep 2")

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def send(self, key: str) -> None:
        if re.fullmatch(r"(Enter|Escape|Tab|Down|Up|BSpace|F\d+|C-[a-z])", key):
            self.run("send-keys", "-t", self.session, key)
        else:
            self.run("send-keys", "-t", self.session, "-l", key)
        time.sleep(0.15)  # a person's pace: each key reaches the app before the next

    def wait_for(self, pattern: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if re.search(pattern, screen):
                time.sleep(0.4)  # let the rest of the screen settle after the awaited words
                return self.screen()
            time.sleep(0.2)
        raise WalkError(f"waited {timeout_s:.0f} s for {pattern!r}; the screen showed:\n{screen}")

    def alive(self) -> bool:
        return subprocess.run(["tmux", "has-session", "-t", self.session], capture_output=True,
                              check=False).returncode == 0

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True, check=False)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def demo_accounts(screen: str) -> dict[str, tuple[str, str]]:
    """The demo ids and PINs as the sign-in screen lists them: role -> (id, PIN)."""
    found = re.findall(r"([a-z]+) (\d{4}) / (\d{4})", screen)
    return {role.lower(): (cashier_id, pin) for role, cashier_id, pin in found}


def steps(cashier: tuple[str, str], supervisor: tuple[str, str]) -> list[Step]:
    """The walk after the sign-in screen, with the ids and PINs read from it."""
    return [
        Step("pin-typed", (*cashier[0], "Enter", *cashier[1]), r"Cashier sign-in"),
        Step("idle", ("Enter",), r"TAP CARD"),
        Step("wallet", ("F2",), r"Demo: tap a wallet card"),
        Step("member", ("Enter",), r"Last 10 operations"),
        Step("", ("s",), r"Amount \(keypad\)"),
        Step("sale", tuple("100"), r"To pay"),
        Step("sale-receipt", ("Enter",), r"Receipt printed|Not printed"),
        Step("", ("Enter",), r"Last 10 operations"),
        Step("", ("t",), r"Top-up amount"),
        Step("topup", tuple("500"), r"bonus"),
        Step("topup-receipt", ("Enter",), r"Receipt printed|Not printed"),
        Step("", ("Enter",), r"Last 10 operations"),
        Step("", ("f",), r"Price a year"),
        Step("fee", ("Down",), r"Gold for"),
        Step("fee-receipt", ("Enter",), r"Receipt printed|Not printed"),
        Step("", ("Enter",), r"Last 10 operations"),
        Step("gift", ("g",), r"Coffee mug"),
        Step("gift-receipt", ("Enter",), r"Receipt printed|Not printed"),
        Step("", ("Enter",), r"Last 10 operations"),
        Step("", ("r",), r"Recent sales and top-ups[\s\S]*#\d"),
        Step("refund", ("Down", "Tab", *"10"), r"10 CNY"),
        Step("supervisor", ("r",), r"Supervisor approval"),
        Step("refund-receipt", (*supervisor[0], "Enter", *supervisor[1], "Enter"), r"Receipt printed|Not printed"),
        Step("member-after", ("Enter",), r"refund 10\.00"),
        Step("", ("Escape",), r"TAP CARD"),
        Step("zreport", ("z",), r"Z-REPORT"),
        Step("zreport-close", ("c",), r"Close the shift"),
        Step("signed-out", ("Enter",), r"Cashier sign-in"),
        Step("", (*cashier[0], "Enter", *cashier[1], "Enter"), r"TAP CARD"),
        Step("idle-zh", ("l",), r"请刷卡"),
        Step("", ("F2",), r"模拟"),
        Step("member-zh", ("Enter",), r"最近"),
        Step("", ("Escape",), r"请刷卡"),
    ]


def walk(out: Path, *, keep: bool, log: Callable[[str], None]) -> list[Path]:
    if shutil.which("tmux") is None:
        raise WalkError("tmux is not installed; the walk-through needs it")
    work = Path(tempfile.mkdtemp(prefix="cardpos-walk-"))
    demo_dir = work / "demo"
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "hardware-sim")]), "TERM": "xterm-256color",
           "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", str(work))}
    tmux = Tmux(SESSION)
    tmux.kill()
    written: list[Path] = []
    out.mkdir(parents=True, exist_ok=True)

    def save(number: int, name: str, text: str) -> None:
        path = out / f"walk-{number:02d}-{name}.txt"
        path.write_text("\n".join(line.rstrip() for line in text.splitlines()) + "\n", encoding="utf-8")
        written.append(path)
        log(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")

    try:
        tmux.start(f"{_quote(sys.executable)} -m cardpos demo --dir {_quote(str(demo_dir))}", env)
        screen = tmux.wait_for(r"Demo sign-ins[\s\S]*\d{4} / \d{4}[\s\S]*Reader: connected", 120)
        save(1, "signin", screen)
        accounts = demo_accounts(screen)
        if "cashier" not in accounts or "supervisor" not in accounts:
            raise WalkError(f"the sign-in screen does not list the demo PINs:\n{screen}")
        number = 2
        for step in steps(accounts["cashier"], accounts["supervisor"]):
            for key in step.keys:
                tmux.send(key)
            screen = tmux.wait_for(step.wait_for, step.timeout_s)
            if step.name:
                save(number, step.name, screen)
                number += 1
        printed = sorted((demo_dir / "printed").glob("ticket-*.txt"))
        z_reports = [p for p in printed if "Z-REPORT" in p.read_text(encoding="utf-8")]
        if not z_reports:
            raise WalkError(f"no Z-report among the printed tickets {[p.name for p in printed]}")
        save(number, "zreport-printed", z_reports[-1].read_text(encoding="utf-8"))
        tmux.send("C-q")
        deadline = time.monotonic() + 30
        while tmux.alive() and time.monotonic() < deadline:  # the demo ends its ledger and simulators, then exits
            time.sleep(0.2)
        log(f"printed tickets: {len(printed)} in {demo_dir / 'printed'}")
        return written
    finally:
        tmux.kill()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screens", help="where the captures go")
    parser.add_argument("--keep", action="store_true", help="keep the demo folder (printed tickets, logs)")
    parser.add_argument("--dry-run", action="store_true", help="list the steps and exit")
    args = parser.parse_args(argv)
    if args.dry_run:
        for step in steps(("ID", "PIN"), ("SUP", "PIN")):
            print(f"{step.name or '-':18} keys {' '.join(step.keys):40} until /{step.wait_for}/")
        return 0
    try:
        started = time.monotonic()
        written = walk(args.out, keep=args.keep, log=print)
    except WalkError as exc:
        print(f"walkthrough: {exc}", file=sys.stderr)
        return 1
    print(f"walkthrough: {len(written)} captures in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
