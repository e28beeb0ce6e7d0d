"""``cardpos demo`` starts the admins' console next to the ledger, prints its URL and a demo admin login, and
stops it with everything else."""

from __future__ import annotations

from pathlib import Path

from cardpos.demo.runner import DemoRunner
from cardpos.demo.seed import DEMO_ADMIN
from tests.fixtures.console import ConsoleClient


def test_the_demo_runs_the_console_with_a_demo_admin(tmp_path: Path) -> None:
    runner = DemoRunner(tmp_path / "demo")
    try:
        runner.start()
        banner = runner.banner()
        assert f"admin console {runner.console_url}, sign in as {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}" in banner
        client = ConsoleClient(runner.console_url)
        assert client.signin(*DEMO_ADMIN).status_code == 303
        page = client.get("/members?q=Li+Wei")
        assert page.status_code == 200 and "Li Wei" in page.text
        console = runner.console
        assert console is not None
    finally:
        runner.stop()
    assert console.proc.poll() is not None, "the console stops with the demo"
