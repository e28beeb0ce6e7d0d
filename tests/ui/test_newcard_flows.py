"""The app's new-card flows end to end with real processes: one ``cardpos ledger serve`` for the module, terminals
enrolled with the real CLI, the reader simulator on a pty driven by the app's own reader connection.

- Tier upgrade (U on the member screen): the ledger issues the new card online, a failed write is retried (F8)
  with the same card, the simulator's blank card receives it, the new card taps to the same member, the old
  card is refused as revoked.
- Sign-up (N on the idle screen): the member is created online, the first card is written to the blank card on
  the reader, and tapping it shows the new member.
- No reader: the issued card is shown as a QR code of its text form. Offline: the new card is queued, said in zh.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static

from cardkit.cards.textform import token_to_text
from cardkit.config import load_settings
from cardkit.wallet import Wallet, WalletCard
from terminal.compose import build_services
from terminal.service import newcard
from terminal.ui.app import CashierApp
from terminal.ui.screens.idle import IdleScreen
from terminal.ui.screens.member import MemberScreen
from terminal.ui.screens.newcard import NewCardScreen
from terminal.ui.screens.receipt import ReceiptScreen
from terminal.ui.screens.refusal import RefusalScreen
from terminal.ui.screens.signup import SignupScreen
from tests.fixtures.english import english_runs
from tests.fixtures.printer import PrinterSimFactory
from tests.fixtures.sim import SimFactory
from tests.fixtures.sync import SyncWorld, init_world
from tests.fixtures.ui import settle, sign_in, text_of, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncWorld]:
    """One ledger process for the module (each test enrolls its own terminal)."""
    built = init_world(tmp_path_factory.mktemp("newcard-ui"), n_members=4)
    built.server()
    try:
        yield built
    finally:
        built.stop_all()



def lift(sim: Any) -> None:
    """Take whatever card is on the simulated reader off it (a tapped card may have left on its own already)."""
    assert sim.command("remove") in ("ok removed", "error no card on the reader")


async def key_in(pilot: Any, app: CashierApp, card_text: str) -> None:
    """Manual entry of a card's text form the way a keyboard-wedge scanner gives it (at once, then Enter)."""
    await pilot.press("m")
    await settle(pilot)
    app.screen.query_one("#token-text", Input).value = card_text
    await pilot.press("enter")



def terminal_for(world: SyncWorld, name: str) -> Path:
    """A terminal enrolled with the real CLI, cashier c1 (PIN 1111) added with it, and a first sync."""
    _, data_dir = world.enroll(name, world.server().url)
    world.add_cashier_and_sync(data_dir)
    return data_dir


def member_due_upgrade(world: SyncWorld, data_dir: Path, member_id: str) -> str:
    """A fresh card for ``member_id`` with enough yearly spend (paid in cash) for the preferred tier."""
    from ledger import admin

    world.open_admin()
    card = admin.issue_card(member_id).token_text
    sold = world.cardpos(data_dir, "terminal", "op", "sale", "2100.00", "--tender", "cash", "--card", card, "--json",
                         timeout=90)
    assert sold.returncode == 0, sold.stderr
    return card


def app_for(world: SyncWorld, data_dir: Path, *, reader: str | None, lang: str = "en",
            printer: str = "", env: dict[str, str] | None = None) -> CashierApp:
    settings = load_settings(env={**world.terminal_env(data_dir), **(env or {})})
    settings.reader.port = reader or ""
    settings.printer.url = printer
    return CashierApp(build_services(settings), lang=lang)


async def ready(pilot: Any, app: CashierApp, *, reader: bool = True) -> None:
    await sign_in(pilot, "c1", "1111")
    if reader:
        await wait_until(pilot, lambda: app.reader_state == "connected", 15, "the reader to connect")
    await wait_until(pilot, lambda: app.sync_status is not None and app.sync_status.online, 15, "the first sync")


async def upgrade_to_new_card_screen(pilot: Any, app: CashierApp) -> NewCardScreen:
    await wait_until(pilot, lambda: isinstance(app.screen, MemberScreen), 15, "the member screen")
    assert app.screen.query_one("#member-upgrade").display  # "Qualifies for Preferred", in either language
    await pilot.press("u")
    await settle(pilot)
    await pilot.press("enter")  # confirm
    await wait_until(pilot, lambda: isinstance(app.screen, ReceiptScreen), 15, "the upgrade's receipt")
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, NewCardScreen), 15, "the new card screen")
    screen = app.screen
    assert isinstance(screen, NewCardScreen)
    return screen


async def wait_for_answer(pilot: Any, screen: NewCardScreen) -> newcard.NewCardState:
    await wait_until(pilot, lambda: not screen.asking and screen.state is not None, 30, "the new card's answer")
    assert screen.state is not None
    return screen.state


async def test_upgrade_in_the_app_writes_the_new_card_through_its_reader_and_retries_the_same_card(
        world: SyncWorld, sim_process: SimFactory, tmp_path: Path) -> None:
    data_dir = terminal_for(world, "till upgrade")
    old_text = member_due_upgrade(world, data_dir, "M001")
    wallet = Wallet()
    wallet.add(WalletCard(label="Member 1", kind="valid", token_text=old_text))
    wallet.save(tmp_path / "wallet.json")
    sim = sim_process(tmp_path / "wallet.json")
    app = app_for(world, data_dir, reader=sim.port)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        assert sim.command("tap 1").startswith("ok")
        await wait_until(pilot, lambda: isinstance(app.screen, MemberScreen), 15, "the member screen")
        assert sim.command("remove") == "ok removed"
        assert sim.command("blank new card for Member 1") == "ok blank card 2 on the reader"
        assert sim.command("writefail") == "ok the next write fails"
        screen = await upgrade_to_new_card_screen(pilot, app)

        # The ledger issued the card; the reader's write failed: said, and the card kept for a retry.
        first = await wait_for_answer(pilot, screen)
        assert first.stage == newcard.Stage.ISSUED and first.card is not None, first
        assert "issued, not written" in text_of(app, "#newcard-result")
        assert sim.command("card 2") == "ok card 2 blank -"
        await pilot.press("f8")
        second = await wait_for_answer(pilot, screen)
        assert second.stage == newcard.Stage.WRITTEN and second.card == first.card, second  # the same card
        assert f"New card {first.card.card_id} written" in text_of(app, "#newcard-result")
        assert sim.command("card 2") == f"ok card 2 valid {token_to_text(first.card.token)}"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, IdleScreen)

        # The new card taps to the same member, now preferred; the old one is refused as revoked.
        lift(sim)
        assert sim.command("tap 2").startswith("ok")
        await wait_until(pilot, lambda: isinstance(app.screen, MemberScreen), 15, "the new card's member")
        member = app.screen
        assert isinstance(member, MemberScreen)
        assert member.card.card_id == first.card.card_id and member.card.view.member_id == "M001"
        assert member.card.tier == "preferred"
        await pilot.press("escape")
        await settle(pilot)
        lift(sim)
        assert sim.command("tap 1").startswith("ok")
        await wait_until(pilot, lambda: isinstance(app.screen, RefusalScreen), 15, "the old card's refusal")
        assert "revoked" in text_of(app, "#refusal-reason").lower()
    shown = world.member_show("M001")
    assert shown["tier"] == "preferred", shown


async def test_sign_up_online_writes_the_first_card_and_tapping_it_shows_the_member(
        world: SyncWorld, sim_process: SimFactory, tmp_path: Path) -> None:
    data_dir = terminal_for(world, "till signup")
    wallet_path = tmp_path / "wallet.json"
    wallet_path.write_text('{"version": 1, "cards": []}\n')
    sim = sim_process(wallet_path)
    app = app_for(world, data_dir, reader=sim.port)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        assert sim.command("blank card for Zhao Lei") == "ok blank card 1 on the reader"
        assert sim.command("writecut") == "ok the next write is interrupted"
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, SignupScreen)
        await pilot.press(*"Zhao Lei", "enter", *"137 0000 1111", "enter", "enter")
        signup = app.screen
        await wait_until(pilot, lambda: signup.card_state is not None, 30, "the sign-up's card")
        state = signup.card_state
        assert isinstance(state, newcard.NewCardState) and state.stage == newcard.Stage.ISSUED, state
        assert "issued, not written" in text_of(app, "#signup-result")

        assert signup.query_one("#signup-qr-box").display  # its text form as a QR code meanwhile
        # The blank card put back on the reader: the app writes the same card to it (no key needed).
        assert sim.command("tap 1").startswith("ok tapped 1 blank")
        await wait_until(pilot, lambda: signup.card_state is not None and signup.card_state.stage == "written", 30,
                         "the sign-up's card, written")
        written = signup.card_state
        assert isinstance(written, newcard.NewCardState) and written.stage == newcard.Stage.WRITTEN, written
        assert written.card == state.card and written.card is not None
        assert "written to the card on the reader" in text_of(app, "#signup-result")
        assert not signup.query_one("#signup-qr-box").display
        member_id = written.card.member_id
        await pilot.press("enter")
        await settle(pilot)

        lift(sim)
        assert sim.command("tap 1").startswith("ok tapped 1 valid")
        await wait_until(pilot, lambda: isinstance(app.screen, MemberScreen), 15, "the new member")
        member = app.screen
        assert isinstance(member, MemberScreen)
        assert member.card.view.member_id == member_id and member.card.name == "Zhao Lei"
    shown = world.member_show(member_id)
    assert shown["name"] == "Zhao Lei", shown
    assert json.loads(wallet_path.read_text())["cards"][0]["token_text"] == token_to_text(written.card.token)


async def test_without_a_reader_the_issued_card_is_shown_as_a_qr_code_and_printed(
        world: SyncWorld, printer_sim: PrinterSimFactory) -> None:
    data_dir = terminal_for(world, "till no reader")
    old_text = member_due_upgrade(world, data_dir, "M002")
    printer = printer_sim()
    # This terminal's font has no sextant blocks: its settings say half blocks (terminal.qr_blocks).
    app = app_for(world, data_dir, reader=None, printer=printer.port, env={"CARDPOS_TERMINAL_QR_BLOCKS": "half"})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app, reader=False)
        await key_in(pilot, app, old_text)
        screen = await upgrade_to_new_card_screen(pilot, app)
        state = await wait_for_answer(pilot, screen)
        assert state.stage == newcard.Stage.ISSUED and state.card is not None
        assert "No reader writes cards here" in text_of(app, "#newcard-result")
        half = text_of(app, "#newcard-qr")
        assert set(half) <= set(" \n\u2580\u2584\u2588") and len(half.splitlines()) >= 24  # ▀ ▄ █, scrolled
        assert "F7: the smaller code" in text_of(app, "#newcard-qr-hint")
        await pilot.press("f7")  # the smaller code, for a font that has sextants
        await settle(pilot)
        qr = text_of(app, "#newcard-qr")
        assert app.screen.query_one("#newcard-qr-box").display
        assert "F7: boxes instead of a code?" in text_of(app, "#newcard-qr-hint")
        blocks = {" ", "\n", "\u258c", "\u2590", "\u2588", *map(chr, range(0x1FB00, 0x1FB3C))}  # sextants
        assert set(qr) <= blocks and len(qr.splitlines()) > 10
        assert not screen.check_action("write_again", ())  # nothing to retry without a reader
        _, printed = printer.wait_tickets(2)  # the upgrade's receipt, then the new card
        assert "NEW MEMBER CARD" in printed and state.card.card_id in printed
        unspaced = "".join(printed.split())  # the text form is printed in lines of the printer's width
        assert "".join(token_to_text(state.card.token).split()) in unspaced


async def test_offline_the_new_card_is_queued_and_said_so_in_chinese(world: SyncWorld) -> None:
    data_dir = terminal_for(world, "till offline")
    old_text = member_due_upgrade(world, data_dir, "M003")
    world.ledger.stop()  # last test of the module: the ledger is gone
    app = app_for(world, data_dir, reader=None, lang="zh")
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot, "c1", "1111")
        await key_in(pilot, app, old_text)
        screen = await upgrade_to_new_card_screen(pilot, app)
        state = await wait_for_answer(pilot, screen)
        assert state.stage == newcard.Stage.QUEUED and state.card is None
        assert "离线：新卡排队中" in text_of(app, "#newcard-result")
        shown = "\n".join(str(w.render()) for w in app.screen.query(Static))
        assert english_runs(shown, names=("cardpos terminal op newcard",)) == [], shown
        assert screen.check_action("write_again", ())  # F8 asks the ledger again
