"""The cashier app: start-up time, memory after many operations, and key latency while a big sync runs.

Figures (baselines measured in the same run):
- time from ``cardpos terminal run`` to the first screen drawn on a real pty (sign-in), and on to the idle
  screen after a cashier signs in, against ``python -c "import textual"`` in the same environment;
- resident memory of the app process after 1,000 stored-value sales driven with keys through the real counter
  and journal (100 with ``quick``), against a bare Textual app's RSS;
- key latency (a key queued as the terminal driver queues it, until the focused field shows the new character)
  while the sync service drains 10,000 queued operations to a real ledger process, against the same latency with
  sync idle.
Targets: start-up < 1.5 s, RSS < 150 MB.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from functools import partial
from pathlib import Path
from typing import Any

from bench import figure_row

REPO = Path(__file__).resolve().parent.parent
START_TARGET_S = 1.5
RSS_TARGET_MB = 150.0


def _env(data_dir: Path) -> dict[str, str]:
    config = data_dir / "config.toml"
    config.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDPOS_")}
    env.update(CARDPOS_DATA_DIR=str(data_dir), CARDPOS_CONFIG=str(config), TERM="xterm-256color",
               PYTHONUNBUFFERED="1")
    return env


def _terminal_dir(root: Path) -> Path:
    """An enrolled terminal data dir (signed trust list and rules, members, cashier c1/1111) on the real clock."""
    sys.path.insert(0, str(REPO))
    from tests.fixtures.cards import CardWorld
    from tests.fixtures.counter import build_terminal_dir, signed_rules

    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    cards = CardWorld(now=int(time.time()))
    build_terminal_dir(data_dir, cards, now_s=cards.now, rules=signed_rules())
    (data_dir / "token.hex").write_text(cards.token().hex())
    return data_dir


# -- start-up -------------------------------------------------------------------------------------------------
def _run_on_pty(args: list[str], env: dict[str, str], steps: list[tuple[bytes, bytes]],
                timeout: float = 30.0) -> list[float]:
    """Start ``args`` on an 80x24 pty; for each (wait_for, then_type) step, the seconds since start when
    ``wait_for`` appeared in the output. The process is then stopped."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the program
        os.chdir(REPO)
        os.execvpe(args[0], args, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    started = time.perf_counter()
    seen = b""
    times: list[float] = []
    try:
        for wait_for, then_type in steps:
            deadline = started + timeout
            while wait_for not in seen:
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise RuntimeError(f"{wait_for!r} did not appear within {timeout} s")
                ready, _, _ = select.select([fd], [], [], min(left, 0.5))
                if ready:
                    try:
                        seen += os.read(fd, 65536)
                    except OSError:
                        raise RuntimeError(f"the app exited before showing {wait_for!r}: {seen[-500:]!r}") from None
            times.append(time.perf_counter() - started)
            seen = b""
            for char in then_type:  # one key at a time, as a person types
                os.write(fd, bytes([char]))
                time.sleep(0.02)
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    return times


def _startup(data_dir: Path, repeats: int) -> tuple[float, float, float]:
    env = _env(data_dir)
    cmd = [sys.executable, "-m", "cardpos", "terminal", "run", "--no-sync"]
    first, idle = [], []
    for _ in range(repeats):
        t = _run_on_pty(cmd, env, [(b"Cashier sign-in", b"c1\r1111\r"), (b"TAP CARD", b"")])
        first.append(t[0])
        idle.append(t[1])
    imports = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import textual"], check=True, timeout=60)
        imports.append(time.perf_counter() - t0)
    return statistics.median(first), statistics.median(idle), statistics.median(imports)


# -- memory ---------------------------------------------------------------------------------------------------
def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def child_bare_rss() -> None:
    """A bare Textual app with one label, run headless: its RSS once the screen is up."""
    from textual.app import App, ComposeResult
    from textual.widgets import Label

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield Label("hello")

    async def main() -> float:
        async with Bare().run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            return _rss_mb()

    print(json.dumps({"rss_mb": asyncio.run(main())}))


def child_ops_rss(data_dir: str, n_ops: int) -> None:
    """The real app (build_services) run headless: sign in, tap, then ``n_ops`` cash sales with keys."""
    from cardkit.config import load_settings
    from cardkit.core.money import Money
    from terminal.compose import build_services
    from terminal.reader.events import CardPresented
    from terminal.ui.app import CashierApp
    from terminal.ui.messages import ReaderEventArrived
    from terminal.ui.screens.member import MemberScreen
    from terminal.ui.screens.receipt import ReceiptScreen

    path = Path(data_dir)
    settings = load_settings(env=_env(path))
    services = build_services(settings, with_sync=False)
    token = bytes.fromhex((path / "token.hex").read_text())
    app = CashierApp(services)

    async def main() -> dict[str, float]:
        from terminal.ui.screens.sale import SaleScreen
        from terminal.ui.widgets.amount import AmountEntry

        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press(*"c1", "enter", *"1111", "enter")
            await app.workers.wait_for_complete()
            app.post_message(ReaderEventArrived(CardPresented(token)))
            await _until(app, lambda: isinstance(app.screen, MemberScreen))
            start_rss = _rss_mb()
            started = time.perf_counter()
            for i in range(n_ops):
                _send_key(app, "s")
                await _until(app, lambda: isinstance(app.screen, SaleScreen) and isinstance(app.focused, AmountEntry))
                for key in [*str(1 + i % 50), "t", "enter"]:  # cash: no offline stored-value limit
                    _send_key(app, key)
                await _until(app, lambda: isinstance(app.screen, ReceiptScreen))
                _send_key(app, "enter")
                await _until(app, lambda: isinstance(app.screen, MemberScreen))
            elapsed = time.perf_counter() - started
            await pilot.pause()
            rss = _rss_mb()
        # Baseline: the same cash sales straight on the counter (verify once, quote, journal fsync, receipt).
        counter = services.counter
        claims = counter.tap(token).claims
        direct_n = max(20, n_ops // 10)
        t0 = time.perf_counter()
        for i in range(direct_n):
            receipt = counter.sale(claims, Money(100 * (1 + i % 50), "CNY"), tender="cash", cashier_id="c1")
            receipt.write(services.receipts_dir)
        direct = direct_n / (time.perf_counter() - t0)
        return {"rss_mb": rss, "start_rss_mb": start_rss, "ops_per_s": n_ops / elapsed, "direct_ops_per_s": direct}

    print(json.dumps(asyncio.run(main())))


def _send_key(app: Any, key: str) -> None:
    """Queue one key press as the terminal driver does (Pilot's ``press`` also waits for the CPU to go idle, which
    on a busy machine adds ~100 ms per key and would measure the machine, not the app)."""
    from textual import events

    char = key if len(key) == 1 else {"enter": "\r"}.get(key)
    event = events.Key(key, char)
    event.set_sender(app)
    app._driver.send_message(event)


async def _until(app: Any, condition: Any, timeout: float = 20.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"screen stuck on {app.screen!r}")
        await asyncio.sleep(0.002)


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench.bench_ui", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"bench child {args[0]} failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- latency during sync ----------------------------------------------------------------------------------------
def _latency(n_ops: int, samples: int) -> tuple[float, float, int, float]:
    """(p95 idle ms, p95 during-sync ms, samples taken during the drain, drain seconds)."""
    import random

    from textual.widgets import Input

    from bench.bench_sync import _cli, _sale, _serve
    from cardkit.config import SyncSettings, load_settings
    from ledger import admin
    from ledger.home import open_ledger
    from terminal import documents
    from terminal.compose import build_services
    from terminal.offline.store import TerminalStore
    from terminal.sync.service import SyncService, load_identity_key
    from terminal.ui.app import CashierApp
    from terminal.ui.screens.manual import ManualEntryScreen

    root = Path(tempfile.mkdtemp(prefix="cardpos-bench-ui-"))
    server = None
    try:
        ledger_dir = root / "ledger"
        _cli(root, "ledger", "init", "--ledger-dir", str(ledger_dir), "--issuer", "bench")
        open_ledger(ledger_dir)
        members = []
        for i in range(50):
            member_id = admin.add_member(f"Member {i}", balance=10_000_000, member_id=f"M{i:05d}")
            members.append((member_id, admin.issue_card(member_id).card_id))
        terminal_id, code = admin.add_terminal("bench till")
        server, url = _serve(root, ledger_dir)
        data_dir = root / "data"
        _cli(root, "terminal", "enroll", "--ledger", url, "--code", code, "--data-dir", str(data_dir))
        enrollment = documents.require_enrollment(data_dir)
        rng = random.Random(7)
        with TerminalStore.open(data_dir, terminal_id) as store:
            SyncService(store, enrollment, load_identity_key(data_dir),
                        settings=SyncSettings(ledger_url=url, timeout_s=60)).sync_once()
            store.cashiers.add("c1", "Bench", "cashier", "1111")
            store.db.execute_sql("PRAGMA synchronous=OFF")  # filling the queue is set-up, not measured
            for _ in range(n_ops):
                store.journal.append("sale", _sale(rng, members), "c1")
            store.db.execute_sql("PRAGMA synchronous=FULL")

        settings = load_settings(config_path=_empty_config(root), env={})
        settings.data_dir = data_dir
        settings.sync.timeout_s = 60

        async def measure(with_sync: bool) -> tuple[list[float], list[float], float]:
            # The sync service is built as build_services builds it, but started only once the screen is ready,
            # so the whole drain happens while keys are measured.
            services = build_services(settings, with_sync=False)
            sync = SyncService(services.store, documents.require_enrollment(data_dir), load_identity_key(data_dir),
                               settings=settings.sync, on_status=services.sync_status)
            app = CashierApp(services)
            idle: list[float] = []
            busy: list[float] = []
            drain_s = 0.0
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot.press(*"c1", "enter", *"1111", "enter")
                await app.workers.wait_for_complete()
                await pilot.pause()
                await pilot.press("m")
                await pilot.pause()
                if not isinstance(app.screen, ManualEntryScreen):
                    raise RuntimeError("manual entry did not open")
                field = app.screen.query_one("#token-text", Input)
                if with_sync:
                    services.sync = sync  # the app stops it on exit
                    sync.start()
                started = time.perf_counter()

                async def one_key() -> float:
                    before = len(field.value)
                    if before > 40:
                        field.value = ""
                        await asyncio.sleep(0.005)
                        before = 0
                    t0 = time.perf_counter()
                    _send_key(app, "7")
                    await _until(app, lambda: len(field.value) > before)
                    took = (time.perf_counter() - t0) * 1000
                    await asyncio.sleep(0.005)  # a fast typist: ~200 keys per second at most
                    return took

                if not with_sync:
                    for _ in range(samples):
                        idle.append(await one_key())
                else:
                    for _ in range(60_000):  # keys until the queue is empty; bounded (about 10 minutes)
                        if services.store.journal.queue_depth == 0:
                            break
                        busy.append(await one_key())
                    drain_s = time.perf_counter() - started
            return idle, busy, drain_s

        idle, _, _ = asyncio.run(measure(False))
        _, busy, drain_s = asyncio.run(measure(True))
    finally:
        if server is not None:
            server.kill()
            server.wait(30)
        shutil.rmtree(root, ignore_errors=True)
    if not busy:
        raise RuntimeError("the sync finished before any key was measured")

    def p95(values: list[float]) -> float:
        return sorted(values)[max(0, int(len(values) * 0.95) - 1)]

    return p95(idle), p95(busy), len(busy), drain_s


def _empty_config(root: Path) -> Path:
    path = root / "config.toml"
    path.touch()
    return path


_figure = partial(figure_row, ratio_digits=2)  # ratios as this benchmark has always shown them


def run(quick: bool = False) -> list[dict[str, Any]]:
    n_ops = 100 if quick else 1_000
    root = Path(tempfile.mkdtemp(prefix="cardpos-bench-ui-start-"))
    try:
        data_dir = _terminal_dir(root)
        first_s, idle_s, import_s = _startup(data_dir, 3 if quick else 5)
        rss = _child("ops-rss", str(data_dir), str(n_ops))
        bare = _child("bare-rss")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    idle_p95, busy_p95, busy_n, drain_s = _latency(10_000, 100 if quick else 300)
    return [
        _figure("start-up: cardpos terminal run to the first screen (pty)", first_s, "s", import_s,
                "python -c 'import textual'", f"< {START_TARGET_S} s", first_s < START_TARGET_S),
        _figure("start-up to the idle screen, sign-in included", idle_s, "s", import_s,
                "python -c 'import textual'", "(informative)", True),
        _figure(f"RSS after {n_ops} key-driven sales", rss["rss_mb"], "MB", bare["rss_mb"],
                "bare Textual app RSS", f"< {RSS_TARGET_MB:.0f} MB", rss["rss_mb"] < RSS_TARGET_MB),
        _figure("key-driven cash sales through the app (keys, screens, receipt)", rss["ops_per_s"], "ops/s",
                rss["direct_ops_per_s"], "the same sales straight on the counter", "(informative)", True),
        _figure(f"key latency p95 while syncing 10,000 ops ({busy_n} keys, drain {drain_s:.1f} s)", busy_p95,
                "ms", idle_p95, "same latency, sync idle", "(informative)", True),
    ]


if __name__ == "__main__":
    if sys.argv[1] == "bare-rss":
        child_bare_rss()
    elif sys.argv[1] == "ops-rss":
        child_ops_rss(sys.argv[2], int(sys.argv[3]))
    else:
        print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
