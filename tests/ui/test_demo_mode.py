"""The app as ``cardpos demo`` runs it for a newcomer: the demo PINs on the sign-in screen, F9 asking for a
technician, and visible feedback from the technician's probe (on the real simulator, on a silent port)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from textual.widgets import Input

from cardpos.demo.runner import DEMO_CASHIERS
from terminal.reader.device import ReaderDevice
from terminal.ui.app import CashierApp
from terminal.ui.screens.dialogs import SupervisorScreen
from terminal.ui.screens.idle import IdleScreen
from terminal.ui.screens.signin import SignInScreen
from terminal.ui.screens.technician import TechnicianScreen
from tests.fixtures.ui import TECHNICIAN_PIN, UiWorld, settle, sign_in, text_of

pytestmark = pytest.mark.anyio


class DemoAccounts:
    """The part of the demo the sign-in screen uses: its accounts (this app taps no card)."""

    def cards(self) -> list[tuple[int, str, str]]:
        return []

    def accounts(self) -> list[tuple[str, str, str]]:
        return [(role, cashier_id, pin) for cashier_id, _, role, pin in DEMO_CASHIERS]

    def tap(self, index: int) -> None:
        raise AssertionError("no card is tapped in these tests")


def demo_app(world: UiWorld, lang: str = "en") -> CashierApp:
    for cashier_id, name, role, pin in DEMO_CASHIERS:
        world.counter.store.cashiers.add(cashier_id, name, role, pin)
    return world.app(lang, demo=DemoAccounts())



def notices(app: CashierApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def wait_for_notice(pilot: Any, app: CashierApp, start: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [n for n in notices(app) if n.startswith(start)]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"no notice {start!r} within {timeout_s} s; got {notices(app)}"
        await pilot.pause(0.05)


async def test_demo_sign_in_shows_every_demo_pin_and_they_work(ui_world: UiWorld) -> None:
    app = demo_app(ui_world)
    async with app.run_test(size=(80, 24)) as pilot:
        assert isinstance(app.screen, SignInScreen)
        shown = text_of(app, "#signin-demo")
        assert shown.splitlines() == ["Demo sign-ins (id / PIN):",
                                      "cashier 1001 / 1234    supervisor 9001 / 9999    technician 7001 / 7777"]
        assert app.screen.query_one("#signin-demo").region.bottom <= 23  # on screen at 80x24, above the footer
        await sign_in(pilot, "7001", "7777")
        assert isinstance(app.screen, IdleScreen) and app.cashier is not None
        assert app.cashier.role == "technician"


async def test_demo_pins_in_chinese(ui_world: UiWorld) -> None:
    app = demo_app(ui_world, "zh")
    async with app.run_test(size=(80, 24)):
        assert text_of(app, "#signin-demo").splitlines() == [
            "演示账号（工号／密码）：", "收银员 1001／1234    主管 9001／9999    技术员 7001／7777"]


async def test_no_pins_outside_the_demo(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)):
        assert isinstance(app.screen, SignInScreen)
        assert not app.screen.query("#signin-demo")


async def test_f9_asks_for_a_technician_not_a_supervisor(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("f9")
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen)
        assert app.screen.query_one("#sup-id", Input).placeholder == "Technician or supervisor id"
        assert "Technician sign-in" in [str(w.render()) for w in app.screen.query(".dialog-title")]
        await pilot.press(*"t1", "enter", "enter")  # no PIN yet
        await settle(pilot)
        assert text_of(app, "#sup-error") == "Type the technician's or supervisor's id and PIN."
        await pilot.press(*TECHNICIAN_PIN, "enter")
        await settle(pilot)
        assert isinstance(app.screen, TechnicianScreen)


async def technician_screen(pilot: Any, app: CashierApp) -> None:
    await sign_in(pilot, "t1", TECHNICIAN_PIN)
    await pilot.press("f9")
    await settle(pilot)
    assert isinstance(app.screen, TechnicianScreen)


async def test_probe_says_the_simulated_reader_answered(ui_world: UiWorld, sim_process: Any) -> None:
    sim = sim_process(None, "--heartbeat", "0")  # no heartbeats: only the probe makes the reader speak
    services = ui_world.services()
    services.reader = ReaderDevice(sim.port, on_event=services.reader_events, heartbeat_timeout_s=30)
    app = CashierApp(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await technician_screen(pilot, app)
        await pilot.press("p")
        answer = await wait_for_notice(pilot, app, "Probe: the reader answered", 10)
        assert answer == "Probe: the reader answered (hwsim 1.0, connected)."
        said = notices(app)
        assert said.index("Probe: asking the reader for its status…") < said.index(answer)  # at once, then the answer


async def test_probe_of_a_silent_reader_says_so(ui_world: UiWorld) -> None:
    master, slave = os.openpty()  # a port with nothing behind it
    try:
        services = ui_world.services()
        services.reader = ReaderDevice(os.ttyname(slave), on_event=services.reader_events, heartbeat_timeout_s=30)
        app = CashierApp(services)
        async with app.run_test(size=(80, 24)) as pilot:
            await technician_screen(pilot, app)
            await pilot.press("p")
            await pilot.pause()
            assert notices(app)[-1] == "Probe: asking the reader for its status…"  # feedback at once
            silent = await wait_for_notice(pilot, app, "Probe: no answer", 10)
            assert silent == "Probe: no answer from the reader within 2 s; check the cable and the port."
    finally:
        os.close(master)
        os.close(slave)
