"""The simulator process as a technician (or the demo app) drives it: console replies, errors, hex log, probe."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

from tests.conftest import CARDPOS, REPO_ROOT
from tests.fixtures.sim import SimFactory


def test_console_replies_one_line_per_command(sim_process: SimFactory, wallet_file: Path) -> None:
    sim = sim_process(wallet_file, link=False)
    assert sim.first_line.startswith("cardpos-sim: pty /dev/pts/") and Path(sim.port).exists()
    listing = sim.command("list")
    assert listing.startswith("ok 11 cards: 1 valid member 1") and "11 malformed not a card" in listing
    assert sim.command("help").startswith("ok commands: list, tap N [hold]")
    assert sim.command("frobnicate") == "error unknown command 'frobnicate' (try 'help')"
    assert sim.command("tap 99") == "error there is no card 99; the wallet has 11 cards"
    assert sim.command("tap x").startswith("error bad arguments for 'tap'")
    assert sim.command("remove") == "error no card on the reader"
    assert sim.command("tap 2 hold") == "ok tapped 2 valid (held)"
    time.sleep(0.8)
    assert "card='member 2" in sim.command("status")  # still held after the usual dwell
    assert sim.command("remove") == "ok removed"
    assert sim.command("noise 0").startswith("error bad arguments")
    assert sim.command("slow 9600") == "ok line paced at 9600 baud"
    assert sim.command("stall 0.1") == "ok stalled for 0.1 s"
    assert sim.command("unplug") == "ok unplugged"
    assert sim.command("unplug") == "error already unplugged"
    assert sim.command("tap 1") == "error the reader is unplugged"
    replug = sim.command("replug")
    assert replug.startswith("ok replugged pty /dev/pts/")
    assert Path(replug.removeprefix("ok replugged pty ")).exists()
    assert sim.command("quit") == "ok bye"
    assert sim.proc.wait(timeout=5) == 0


def test_link_follows_the_pty_across_replug(sim_process: SimFactory, wallet_file: Path) -> None:
    sim = sim_process(wallet_file)
    link = Path(sim.port)
    assert link.is_symlink() and str(link.resolve()) == sim.pty
    sim.command("unplug")
    assert not link.exists() and not link.is_symlink()  # like a by-id link vanishing on unplug
    new = sim.command("replug").removeprefix("ok replugged pty ")
    assert link.is_symlink() and str(link.resolve()) == new
    sim.stop()
    assert not link.is_symlink()  # cleaned up on exit


def _cardpos(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    config = Path(env["CARDPOS_CONFIG"])
    if not config.exists():
        config.write_text("")  # defaults: an empty config file
    return subprocess.run([*CARDPOS, *args], capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                          timeout=timeout)


def test_sim_start_errors_are_one_line(tmp_path: Path, clean_env: dict[str, str]) -> None:
    missing = _cardpos("sim", "--wallet", str(tmp_path / "nope.json"), env=clean_env)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip() == f"cardpos: wallet file {tmp_path / 'nope.json'} does not exist"
    bad = tmp_path / "bad.txt"
    bad.write_text("wait soon\n")
    script = _cardpos("sim", "--script", str(bad), env=clean_env)
    assert script.returncode == 1 and "line 1: cannot read 'wait soon'" in script.stderr
    assert len(script.stderr.strip().splitlines()) == 1 and "Traceback" not in script.stderr


def test_script_mode_exits_and_logs_hex(tmp_path: Path, clean_env: dict[str, str], wallet_file: Path) -> None:
    script = tmp_path / "s.txt"
    script.write_text("# two taps\ntap 1\nwait 0.2\nat 0.3 noise 4\nstatus\n")
    log = tmp_path / "hex.log"
    proc = _cardpos("sim", "--wallet", str(wallet_file), "--script", str(script), "--hex-log", str(log),
                    "--heartbeat", "0", env=clean_env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("cardpos-sim: pty /dev/pts/")
    assert lines[1] == "ok tapped 1 valid" and lines[2] == "ok noise 4 bytes"
    assert lines[3].startswith("ok status plugged=yes") and "taps=1 " in lines[3]
    assert lines[-1] == "cardpos-sim: script done"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600  # it holds card tokens
    tx = [line.split() for line in log.read_text().splitlines()]
    assert tx[0][1] == "tx" and tx[0][2].startswith("02") and tx[0][2][6:8] == "10"  # CARD_PRESENT first
    assert any(len(bytes.fromhex(row[2])) == 4 for row in tx)  # the noise burst


def test_probe_reports_the_reader(sim_process: SimFactory, wallet_file: Path, clean_env: dict[str, str]) -> None:
    sim = sim_process(wallet_file, "--heartbeat", "0.3")
    proc = _cardpos("reader", "probe", "--port", sim.port, "--seconds", "1", "--json", env=clean_env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["answering"] is True and result["firmware"] == "hwsim 1.0"
    assert result["frames"] >= 3 and result["crc_errors"] == 0 and result["last_raw_hex"].startswith("02")
    assert result["reader"]["heartbeat_ms"] == 300
    text = _cardpos("reader", "probe", "--port", sim.port, "--seconds", "0.5", env=clean_env)
    assert text.returncode == 0
    assert text.stdout.startswith(f"reader at {sim.port}: hwsim 1.0")
    assert "CRC errors: 0" in text.stdout and "last raw frame: 02" in text.stdout


def test_probe_missing_port_is_one_clear_line(tmp_path: Path, clean_env: dict[str, str]) -> None:
    proc = _cardpos("reader", "probe", "--port", str(tmp_path / "ttyUSB7"), env=clean_env)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == (f"cardpos: The card reader port {tmp_path / 'ttyUSB7'} does not exist; "
                           f"is the reader plugged in?\n")
    none = _cardpos("reader", "probe", env=clean_env)
    assert none.returncode == 1 and "No reader port given" in none.stderr


def test_probe_of_a_silent_port_says_so(clean_env: dict[str, str]) -> None:
    master, slave = os.openpty()  # a port with nothing behind it
    try:
        proc = _cardpos("reader", "probe", "--port", os.ttyname(slave), "--seconds", "0.5", env=clean_env)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 1
    first = proc.stdout.splitlines()[0]
    assert first.endswith("no answer in 0.5 s (wrong port or baud, or the reader is off)")
    assert "frames seen: 0 (0 status, 0 cards)" in proc.stdout
