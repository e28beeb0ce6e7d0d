"""Bring up and tear down the demo: ledger process, enrollment, cashiers, simulator process, the app."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cardkit.config import Settings
from cardkit.errors import ConfigError
from cardkit.wallet import Wallet
from cardpos.demo.children import CARDPOS, Child, ChildError
from cardpos.demo.hotel import run_demo_day, settle_command
from cardpos.demo.seed import DEMO_ADMIN, DemoSetup, seed_demo
from cardpos.demo.tapper import SimTapper
from cardpos.parentdeath import env_for_child

if TYPE_CHECKING:
    from terminal.ui.app import CashierApp

# Cashier accounts created in the demo terminal: id, name, role, PIN.
DEMO_CASHIERS = [
    ("1001", "Demo Cashier", "cashier", "1234"),
    ("9001", "Demo Supervisor", "supervisor", "9999"),
    ("7001", "Demo Technician", "technician", "7777"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DemoRunner:
    def __init__(self, root: Path, *, ledger_port: int | None = None) -> None:
        self.root = root
        self.terminal_dir = root / "terminal"
        self.logs = root / "logs"
        self.ledger_port = ledger_port or free_port()
        self.ledger_url = f"http://127.0.0.1:{self.ledger_port}"
        self.ledger: Child | None = None
        self.console: Child | None = None
        self.console_url = f"http://127.0.0.1:{free_port()}"
        self.sim: Child | None = None
        self.printer: Child | None = None
        self.printed_dir = root / "printed"
        """Where the printer simulator renders what it printed: ticket-NNNN.txt and .png."""
        self.printer_link = root / "printer"
        self.setup: DemoSetup | None = None
        self.wallet: Wallet | None = None
        self.app: CashierApp | None = None
        self.pty_path = ""
        self.till_syncs: list[Child] = []
        """The shop's and the spa's ``terminal sync`` processes."""
        self._stop_lock = threading.Lock()
        # Children must not read the user's own config; everything they need is on their command line.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CARDPOS_")}
        self.config_path = root / "config.toml"
        self.env["CARDPOS_CONFIG"] = str(self.config_path)
        self.env["CARDPOS_DATA_DIR"] = str(self.terminal_dir)
        self.env["PYTHONUNBUFFERED"] = "1"

    def start(self) -> None:
        """Seed, start the ledger, enroll the terminal, add cashiers, start the simulator."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("# cardpos demo: the demo passes paths and ports on command lines; its tills sync "
                                    "often\n[sync]\ninterval_s = 5.0\n")
        self.terminal_dir.mkdir(parents=True, exist_ok=True)
        self.setup = seed_demo(self.root)
        # Children are started from this (the main) thread: their parent-death signal is tied to it.
        self.ledger = Child("ledger", ["ledger", "serve", "--ledger-dir", str(self.setup.ledger_dir),
                                       "--host", "127.0.0.1", "--port", str(self.ledger_port)],
                            env=self.env, stderr_path=self.logs / "ledger.log")
        self.ledger.wait_for("cardpos-ledger: listening", timeout_s=60)
        self.console = Child("console", ["ledger", "console", "--ledger-dir", str(self.setup.ledger_dir), "--host",
                                         "127.0.0.1", "--port", self.console_url.rsplit(":", 1)[1]],
                             env=self.env, stderr_path=self.logs / "console.log")
        self.console.wait_for("cardpos-console: listening", timeout_s=60)
        self._enroll(self.terminal_dir, self.setup.enroll_code)
        self._add_cashiers(self.terminal_dir)
        self._add_test_card()
        self._start_hotel_tills()
        self.wallet = Wallet.load(self.setup.wallet_path)
        self.sim = Child("simulator", ["sim", "--wallet", str(self.setup.wallet_path)],
                         env=self.env, stderr_path=self.logs / "sim.log")
        self.pty_path = self.sim.wait_for("cardpos-sim: pty", timeout_s=30)
        self._start_printer()

    def _start_printer(self) -> None:
        """The receipt printer simulator on a pty behind ``printer`` in the demo folder: receipts and the
        Z-report print to it, and it renders each ticket as text and PNG in ``printed/``."""
        self.printer = Child("printer", ["sim-printer", "--out", str(self.printed_dir), "--link",
                                         str(self.printer_link)], env=self.env, stderr_path=self.logs / "printer.log")
        self.printer.wait_for("cardpos-sim: pty", timeout_s=30)
        printer = self.printer
        # Its stdout says each ticket it rendered; read it so a long demo never fills the pipe and stalls it.
        threading.Thread(target=_drain, args=(printer,), name="demo printer output", daemon=True).start()

    def _enroll(self, data_dir: Path, code: str) -> None:
        proc = subprocess.run(
            [*CARDPOS, "terminal", "enroll", "--data-dir", str(data_dir), "--ledger", self.ledger_url,
             "--code", code],
            env={**self.env, **env_for_child()}, capture_output=True, text=True, timeout=60,
        )
        if proc.returncode != 0:
            raise ChildError(f"enrolling the demo terminal failed: {proc.stderr.strip() or proc.stdout.strip()}")

    def _enroll_here(self, data_dir: Path, code: str) -> None:
        """``cardpos terminal enroll`` run in this process (a process of its own costs seconds to start), with the
        demo's config; what it prints is not the demo's to show."""
        from terminal.commands.terminal_sync import cmd_enroll

        args = argparse.Namespace(config=self.config_path, data_dir=data_dir, ledger=self.ledger_url, code=code,
                                  suite="x25519", root_key=None, json=True)
        with contextlib.redirect_stdout(io.StringIO()):
            cmd_enroll(args)

    def _start_hotel_tills(self) -> None:
        """The shop's and the spa's live tills: enrolled in ``<demo>/<merchant>``, their morning made at them and
        synced (``cardpos.demo.hotel.run_demo_day``), then kept in sync by a ``terminal sync`` process each."""
        assert self.setup is not None
        tills: dict[str, Settings] = {}
        for till in self.setup.hotel_tills:
            data_dir = self.till_dir(till.merchant_id)
            data_dir.mkdir(parents=True, exist_ok=True)
            self._enroll_here(data_dir, till.code)
            self._add_cashiers(data_dir)
            settings = Settings(data_dir=data_dir)
            settings.sync.ledger_url = self.ledger_url
            tills[till.merchant_id] = settings
        run_demo_day(tills, self.setup.member_cards, self.setup.spa_coupon)
        for merchant_id, settings in tills.items():
            child = Child(f"{merchant_id} till sync", ["terminal", "sync", "--data-dir", str(settings.data_dir)],
                          env=self.env, stderr_path=self.logs / f"{merchant_id}-sync.log")
            self.till_syncs.append(child)
            threading.Thread(target=_drain, args=(child,), name=f"demo {merchant_id} sync output",
                             daemon=True).start()

    def till_dir(self, merchant_id: str) -> Path:
        """Where a hotel merchant's till keeps its data (``--data-dir`` for ``cardpos terminal op``)."""
        return self.root / merchant_id

    def _add_cashiers(self, data_dir: Path) -> None:
        from terminal.documents import require_enrollment
        from terminal.offline.store import TerminalStore

        enrollment = require_enrollment(data_dir)
        store = TerminalStore.open(data_dir, enrollment.terminal_id)
        try:
            for cashier_id, name, role, pin in DEMO_CASHIERS:
                store.cashiers.add(cashier_id, name, role, pin)
        finally:
            store.close()

    def _add_test_card(self) -> None:
        from terminal.compose import TEST_CARD_FILE

        assert self.setup is not None
        (self.terminal_dir / TEST_CARD_FILE).write_text(self.setup.test_card_text + "\n", encoding="ascii")

    def settings(self) -> Settings:
        settings = Settings(data_dir=self.terminal_dir)
        settings.reader.port = self.pty_path
        settings.sync.ledger_url = self.ledger_url
        settings.sync.interval_s = 5.0
        if self.printer is not None:
            settings.printer.url = str(self.printer_link)
        return settings

    def banner(self) -> str:
        cashiers = ", ".join(f"{role} {cid} PIN {pin}" for cid, _, role, pin in DEMO_CASHIERS)
        return (f"cardpos demo: ledger {self.ledger_url}, reader simulator on {self.pty_path}\n"
                f"cardpos demo: admin console {self.console_url}, sign in as {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}\n"
                f"cardpos demo: sign in as {cashiers}; F2 taps a wallet card; Ctrl+Q quits\n"
                f"cardpos demo: the hotel's shop and spa tills (cards: {self.root / 'wallet.json'}): "
                f"cardpos terminal op sale 12.00 --card CARD_TEXT --data-dir {self.till_dir('shop')} "
                f"(or {self.till_dir('spa')})\n"
                f"cardpos demo: the day's settlement between the hotel's merchants: "
                f"{settle_command(str(self.root / 'ledger'), int(time.time()))}\n"
                f"cardpos demo: receipts print to the simulated printer: {self.printed_dir}/ticket-NNNN.txt\n"
                f"cardpos demo: files in {self.root}")

    def run_app(self, *, lang: str) -> None:
        """Run the cashier app until it quits (``self.app`` meanwhile, so a signal can ask it to quit)."""
        from terminal.compose import LANGUAGES, build_services
        from terminal.ui.app import CashierApp

        assert self.sim is not None and self.wallet is not None
        if lang not in LANGUAGES:
            raise ConfigError(f"language {lang!r} is not supported (en or zh)")
        services = build_services(self.settings())
        tapper = SimTapper(self.sim, self.wallet, accounts=[(role, cid, pin) for cid, _, role, pin in DEMO_CASHIERS])
        self.app = CashierApp(services, lang=lang, demo=tapper)
        try:
            self.app.run()
        finally:
            self.app.close_services()

    def stop(self) -> None:
        """Stop the simulator and the ledger (idempotent; a signal's thread and the demo's clean-up may race)."""
        with self._stop_lock:
            for child in (*self.till_syncs, self.printer, self.sim, self.console, self.ledger):
                if child is not None:
                    child.stop()


def _drain(child: Child) -> None:
    while child.proc.poll() is None:
        try:
            child.read_line(timeout_s=60.0)
        except ChildError:  # a quiet minute, or its output closing as it ends (the loop then sees it)
            time.sleep(0.5)
