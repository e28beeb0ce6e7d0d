"""A shift's worth of taps and faults from the scenario file in the repo, run by the real simulator process
against the real driver; the outcome must match the scenario's ``# expect:`` line."""

from __future__ import annotations

import time
from pathlib import Path

from hwsim.testcards import IssuedWallet

from cardkit.cards.verify import CardVerifier
from terminal.reader.device import ReaderDevice
from terminal.reader.events import CardPresented
from tests.conftest import REPO_ROOT
from tests.fixtures.sim import EventSink, SimFactory

SHIFT = REPO_ROOT / "hardware-sim" / "hwsim" / "scenarios" / "shift.txt"


def _expect(path: Path) -> dict[str, int]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# expect:"):
            return {k: int(v) for k, v in (item.split("=") for item in line.removeprefix("# expect:").split())}
    raise AssertionError("scenario has no '# expect:' line")


def test_shift_scenario(sim_process: SimFactory, wallet_file: Path, issued_wallet: IssuedWallet,
                        event_sink: EventSink, tmp_path: Path) -> None:
    expect = _expect(SHIFT)
    hex_log = tmp_path / "line.hex"
    sim = sim_process(wallet_file, "--script", str(SHIFT), "--hex-log", str(hex_log))
    device = ReaderDevice(sim.port, on_event=event_sink)
    device.start()
    try:
        sim.wait_notice("cardpos-sim: script done", timeout=60)
        time.sleep(0.3)
        stats = device.stats
    finally:
        device.stop()
    assert sim.proc.wait(timeout=10) == 0

    replies = [sim.reply(1) for _ in range(_command_count(SHIFT))]
    assert all(r.startswith("ok") for r in replies), [r for r in replies if not r.startswith("ok")]
    assert sum(r.startswith("ok tapped") for r in replies) == expect["taps"]

    cards = [e for e in event_sink.snapshot() if isinstance(e, CardPresented)]
    print(f"\nshift: {len(cards)} cards, {stats.debounced} debounced, {stats.crc_errors} CRC errors, "
          f"{stats.framing_errors} framing errors, {stats.resyncs} resyncs, {stats.reconnects} reconnects, "
          f"{stats.heartbeats} heartbeats")
    assert len(cards) == stats.cards == expect["cards"]
    assert stats.debounced == expect["debounced"]
    assert stats.reconnects == expect["reconnects"]
    assert stats.crc_errors >= expect["crc_errors_min"]
    assert stats.heartbeats >= 5

    # Every delivered token is a real card from the wallet with its intended verdict: no corrupted frame leaked.
    verifier = CardVerifier(issued_wallet.trust, issued_wallet.revocations, issuer=issued_wallet.issuer)
    tokens = {c.token_bytes(): n for n, c in enumerate(issued_wallet.wallet.cards, start=1)}
    for event in cards:
        number = tokens[event.token]
        assert verifier.verify(event.token, int(time.time())).reason == issued_wallet.expected[number]

    log = hex_log.read_text().splitlines()
    assert any(" tx " in line for line in log) and any(" rx " in line for line in log)


def _command_count(path: Path) -> int:
    count = 0
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].split()
        if line and line[0] != "wait":
            count += 1
    return count
