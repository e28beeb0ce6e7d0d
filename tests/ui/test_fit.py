"""Every screen at 80x24, in English and in Chinese, with the longest real labels: nothing cut, nothing wrapped.

One walk per language drives every screen and dialog with keys, on real parts (the counter world's store, the
reader simulator on a pty, the printer simulator), after giving the screens their longest real content: a member
with a long name and long coupon ids, a history with every kind of operation, the status bar offline since
yesterday with a printer out of paper and a receipt not printed, a Z-report with every operation kind, and the
technician's reader counters. At each screen ``tests.fixtures.fit.cuts`` checks the live widgets (see there what
counts as a cut), a Chinese screen is held to the English-sentence detector too, and the screen's text is
compared with its golden file in ``tests/ui/snapshots/``.

After an intended change: ``CARDPOS_UPDATE_SNAPSHOTS=1 pytest tests/ui/test_fit.py`` and read the diff.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from cardkit.cards.textform import token_to_text
from cardkit.core.members import Tier
from cardkit.wallet import Wallet, WalletCard
from terminal.printer.device import ReceiptPrinter
from terminal.reader.device import ReaderDevice
from terminal.ui.app import CashierApp
from terminal.ui.messages import SyncStatusChanged
from terminal.ui.screens.dialogs import ConfirmScreen, DeclineScreen, DemoTapScreen, SupervisorScreen
from terminal.ui.screens.fee import FeeScreen
from terminal.ui.screens.idle import IdleScreen
from terminal.ui.screens.manual import ManualEntryScreen
from terminal.ui.screens.member import EditMemberScreen, MemberScreen
from terminal.ui.screens.receipt import ReceiptScreen
from terminal.ui.screens.redeem import RedeemScreen
from terminal.ui.screens.refusal import RefusalScreen
from terminal.ui.screens.reverse import ReverseScreen
from terminal.ui.screens.sale import SaleScreen
from terminal.ui.screens.shift import ShiftScreen
from terminal.ui.screens.signin import SignInScreen
from terminal.ui.screens.technician import TechnicianScreen
from terminal.ui.screens.topup import TopUpScreen
from tests.fixtures.cards import key_from_seed
from tests.fixtures.counter import member_snapshots
from tests.fixtures.english import english_runs, screen_text
from tests.fixtures.fit import cuts, steady_text
from tests.fixtures.printer import PrinterSimFactory
from tests.fixtures.ui import SUPERVISOR_PIN, TECHNICIAN_PIN, UiWorld, settle, sign_in, tap, wait_until
from tests.ui.test_reader import SimTapper

pytestmark = pytest.mark.anyio

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("CARDPOS_UPDATE_SNAPSHOTS") == "1"
LONG_CARD = "00000000000000c4"
LONG_NAME = "Ouyang Xiaoming-Alexandra"
"""A long member name as people have them (25 characters)."""
LONG_NOTES = "allergic to peanuts; wants the receipt by e-mail as well as on paper"
NAMES = ("Cashier One", "Supervisor One", "Tech One", "Li Na", "Wang Wei", LONG_NAME, "Li Na (gold)", "Forged copy",
         LONG_NOTES, "(call first)", "oolong tea")
"""Names and what people typed: shown as they are in Chinese too (the English-sentence check passes them)."""
LONG_COUPONS = ("SPRING-WELCOME-2026", "BIRTHDAY-GOLD-15PCT", "STORE-OPENING-ANNIV")
"""Coupon ids as long as a campaign writes them."""
SCREENS = ("signin", "signin-refused", "idle", "manual", "refusal", "demo-wallet", "member", "sale", "declined",
           "receipt-sale", "topup", "gift", "receipt-gift", "fee", "notes", "reverse", "supervisor", "member-history",
           "confirm-upgrade", "idle-offline", "zreport", "confirm-close", "technician")


def _long_member(now_s: int) -> dict[str, Any]:
    coupons = [{"coupon_id": cid, "currency": "CNY", "amount_off": 1_000 * (i + 1), "percent_off_bp": None,
                "min_spend": 10_000, "valid_from": now_s - 86_400, "valid_until": now_s + 30 * 86_400,
                "stackable": True} for i, cid in enumerate(LONG_COUPONS)]
    return {"member_id": "M0003", "name": LONG_NAME, "phone": "", "email": "",
            "notes": LONG_NOTES,
            "prefs": {"seat": "window", "spice": "mild", "drink": "oolong tea"}, "tier": "gold",
            "balance": 1_234_567_89, "points": 123_456, "currency": "CNY", "yearly_spend": 9_876_543,
            "card_ids": [LONG_CARD], "coupons": coupons}


class Shots:
    """Each screen's text and what does not fit on it."""

    def __init__(self, app: Any, lang: str) -> None:
        self.app = app
        self.lang = lang
        self.texts: dict[str, str] = {}
        self.problems: list[str] = []

    async def __call__(self, pilot: Any, name: str, screen_type: type | None = None) -> None:
        # The queue depth and the printer's state are read on timers; read them now, so each capture shows
        # the state after the keys before it, whatever the timers' phase.
        self.app._read_queue_depth()
        if self.app.ops.has_printer:
            self.app._read_printer()
        await settle(pilot)
        if screen_type is not None:
            assert isinstance(self.app.screen, screen_type), f"{name}: on {type(self.app.screen).__name__}"
        for field in self.app.screen.query(Input):
            field.cursor_blink = False
        text = self.texts[name] = screen_text(self.app)
        self.problems += [f"{name}-{self.lang}: {problem}" for problem in cuts(self.app)]
        if self.lang == "zh":  # and with the longest content too, no English sentence on a Chinese screen
            self.problems += [f"{name}-zh: English: {run}" for run in english_runs(text, NAMES)]


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_every_screen_fits_80x24_with_the_longest_labels(
        ui_world: UiWorld, printer_sim: PrinterSimFactory, sim_process: Any, tmp_path: Path, lang: str) -> None:
    world = ui_world.world
    now_s = world.clock.now
    ui_world.counter.store.cache.apply_snapshot([*member_snapshots(now_s), _long_member(now_s)], 2)
    long_token = world.token(card_id=LONG_CARD, member_id="M0003", tier=Tier.GOLD)
    wallet = Wallet()
    wallet.add(WalletCard(label="Li Na (gold)", kind="valid", token_text=token_to_text(world.token())))
    wallet.add(WalletCard(label="Forged copy", kind="forged",
                          token_text=token_to_text(world.token(key=key_from_seed(bytes([9]) * 32)))))
    wallet_path = tmp_path / "wallet.json"
    wallet.save(wallet_path)
    reader_sim = sim_process(wallet_path)
    printer = printer_sim()

    class DemoSim(SimTapper):
        def accounts(self) -> list[tuple[str, str, str]]:
            return [("cashier", "c1", "1111"), ("supervisor", "s1", "2468"), ("technician", "t1", "5555")]

    services = ui_world.services(printer=ReceiptPrinter(printer.port))
    services.reader = ReaderDevice(reader_sim.port, on_event=services.reader_events, debounce_ms=200)
    app = CashierApp(services, lang=lang, demo=DemoSim(reader_sim, wallet))
    shot = Shots(app, lang)

    async with app.run_test(size=(80, 24), notifications=False) as pilot:
        await wait_until(pilot, lambda: app.reader_state == "connected", 15, "the reader to connect")
        await settle(pilot)
        await shot(pilot, "signin", SignInScreen)
        await pilot.press(*"c1", "enter", *"9999", "enter")
        await settle(pilot)
        await shot(pilot, "signin-refused", SignInScreen)
        app.screen.query_one("#cashier-id", Input).value = ""
        app.screen.query_one("#cashier-id").focus()
        await sign_in(pilot)
        await shot(pilot, "idle", IdleScreen)
        await pilot.press("m")
        await settle(pilot)
        await shot(pilot, "manual", ManualEntryScreen)
        await pilot.press(*"not a card", "enter")
        await settle(pilot)
        await shot(pilot, "refusal", RefusalScreen)
        await pilot.press("enter", "f2")
        await settle(pilot)
        await shot(pilot, "demo-wallet", DemoTapScreen)
        await pilot.press("escape")
        await settle(pilot)

        await tap(pilot, long_token)
        await shot(pilot, "member", MemberScreen)
        await pilot.press("s", *"99999")
        await settle(pilot)
        await pilot.press("c", "c")
        await settle(pilot)
        await shot(pilot, "sale", SaleScreen)
        await pilot.press("backspace", "backspace", "backspace", "backspace", "backspace", *"100000000")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await shot(pilot, "declined", DeclineScreen)
        await pilot.press("enter", *["backspace"] * 9, *"1234.56", "t", "enter")
        await settle(pilot)
        await shot(pilot, "receipt-sale", ReceiptScreen)
        await pilot.press("enter", "t", *"1000")
        await settle(pilot)
        await shot(pilot, "topup", TopUpScreen)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("enter", "g")
        await settle(pilot)
        await shot(pilot, "gift", RedeemScreen)
        await pilot.press("down", "down", "down", "enter")
        await settle(pilot)
        await shot(pilot, "receipt-gift", ReceiptScreen)
        await pilot.press("enter", "f")
        await settle(pilot)
        await pilot.press("down", "down")
        await settle(pilot)
        await shot(pilot, "fee", FeeScreen)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("enter", "e")
        await settle(pilot)
        await shot(pilot, "notes", EditMemberScreen)
        await pilot.press("end", *" (call first)", "enter", "end", *"; bag=paper", "enter")
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("down", "down", "tab", *"12.34")
        await settle(pilot)
        await shot(pilot, "reverse", ReverseScreen)
        await pilot.press("r")
        await settle(pilot)
        await pilot.press(*"c1", "enter", *"1111", "enter")
        await settle(pilot)
        await shot(pilot, "supervisor", SupervisorScreen)
        app.screen.query_one("#sup-id", Input).value = ""
        app.screen.query_one("#sup-id").focus()
        await pilot.press(*"s1", "enter", *SUPERVISOR_PIN, "enter")
        await settle(pilot)
        await pilot.press("enter", "r")
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        await pilot.press(*"s1", "enter", *SUPERVISOR_PIN, "enter")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await shot(pilot, "member-history", MemberScreen)
        await pilot.press("escape")
        await settle(pilot)

        await tap(pilot, world.std_token())  # Wang Wei, near the next tier
        await pilot.press("s", *"50", "t", "enter")
        await settle(pilot)
        await pilot.press("enter", "u")
        await settle(pilot)
        await shot(pilot, "confirm-upgrade", ConfirmScreen)
        await pilot.press("escape", "escape")
        await settle(pilot)

        # The longest status bar: offline since yesterday, a queue, an old sync, the printer out of paper with a
        # receipt it did not print.
        from terminal.sync.service import SyncStatus

        yesterday_ms = (now_s - 86_400) * 1000
        app.post_message(SyncStatusChanged(SyncStatus(online=False, offline_since_ms=yesterday_ms, queue_depth=1234,
                                                      last_sync_ms=yesterday_ms, last_error="timed out")))
        printer.command("paper out")
        await tap(pilot, world.std_token())
        await pilot.press("s", *"5", "t", "enter")
        await settle(pilot)
        await pilot.press("enter", "escape")
        await settle(pilot)
        await shot(pilot, "idle-offline", IdleScreen)
        printer.command("paper in")
        await pilot.press("z")
        await settle(pilot)
        await shot(pilot, "zreport", ShiftScreen)
        await pilot.press("c")
        await settle(pilot)
        await shot(pilot, "confirm-close", ConfirmScreen)
        await pilot.press("escape", "escape")
        await settle(pilot)
        await pilot.press("ctrl+l")
        await settle(pilot)

        await sign_in(pilot, "t1", TECHNICIAN_PIN)
        await pilot.press("f9")
        await settle(pilot)
        await pilot.press("t")
        await settle(pilot)
        await shot(pilot, "technician", TechnicianScreen)

    assert tuple(shot.texts) == SCREENS
    SNAPSHOTS.mkdir(exist_ok=True)
    changed: list[str] = []
    for name, text in shot.texts.items():
        golden = SNAPSHOTS / f"{name}-{lang}.txt"
        steady = steady_text(text, volatile=name == "technician")
        if UPDATE or not golden.exists():
            golden.write_text(steady, encoding="utf-8")
        elif golden.read_text(encoding="utf-8") != steady:
            changed.append("".join(difflib.unified_diff(golden.read_text(encoding="utf-8").splitlines(True),
                                                        steady.splitlines(True), golden.name, "now")))
    assert shot.problems == [], "\n".join(shot.problems)
    assert changed == [], "screens differ from their golden text (CARDPOS_UPDATE_SNAPSHOTS=1 to accept):\n" + \
        "\n".join(changed)


QR_CHARACTERS = frozenset(" ▌▐█") | {chr(code) for code in range(0x1FB00, 0x1FB3C)}
HALF_BLOCKS = frozenset(" ▀▄█")


def masked_qr(text: str, qr: str) -> str:
    """The screen's text with each line of the card's QR code as a run of ▒ as wide, and the provisional member
    id (random) as ``Pxxxxxxxxxx``: the golden file keeps where the code stands and how big it is; what it holds
    is the card's signed token, drawn by ``cardkit.qr`` (tests/unit/test_qr_text.py reads it back). A blank line
    of the code (the half blocks' last, quiet zone) is left: it would match any run of spaces."""
    for line in qr.splitlines():
        if line.strip():
            text = text.replace(line, "▒" * len(line), 1)
    return re.sub(r"\bP[0-9a-f]{10}\b", "P" + "x" * 10, text)


def check_golden(name: str, steady: str) -> None:
    golden = SNAPSHOTS / name
    if UPDATE or not golden.exists():
        golden.write_text(steady, encoding="utf-8")
    assert golden.read_text(encoding="utf-8") == steady, "".join(difflib.unified_diff(
        golden.read_text(encoding="utf-8").splitlines(True), steady.splitlines(True), golden.name, "now"))


HINTS = {"en": ("F7: boxes instead of a code?", "F7: the smaller code"),
         "zh": ("F7：二维码成了方框？", "F7：改回小二维码")}
"""The start of the QR screens' F7 line, sextants shown and half blocks shown."""


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_the_sign_up_screen_with_the_cards_qr_code_fits_80x24(ui_world: UiWorld, lang: str) -> None:
    """No reader here: the new member's card, issued by the ledger, is shown as a QR code of its text form, whole
    on the screen beside the sign-up's result (no scrolling), in both languages. F7 draws it in half blocks (for a
    font without sextants, which shows boxes): taller than the screen, it scrolls; F7 again, sextants again."""
    from cardkit.card_issue import NewCard
    from terminal.service.newcard import NewCardState, Stage
    from terminal.ui.messages import SignupCardDone
    from terminal.ui.screens.signup import SignupScreen
    from terminal.ui.widgets.qrcode import QrCodeBox

    world = ui_world.world
    app = ui_world.app(lang=lang)
    problems: list[str] = []
    async with app.run_test(size=(80, 24), notifications=False) as pilot:
        await sign_in(pilot)
        await pilot.press("n")
        await settle(pilot)
        await pilot.press(*LONG_NAME, "enter", *"139 1234 5678", "enter", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SignupScreen) and screen.card_state is not None  # queued: no ledger here
        member = screen.card_state.member_id
        # The ledger's answer as the card worker posts it once the terminal is online: the card issued, no reader.
        token = world.token(card_id="00000000000000c9", member_id="M0042")
        issued = NewCardState(old_card="", request=member, member_id=member, tier="standard", stage=Stage.ISSUED,
                              card=NewCard(request=member, old_card="", card_id="00000000000000c9",
                                           member_id="M0042", tier="standard", token=token), kind="signup")
        screen.post_message(SignupCardDone(issued))
        await settle(pilot)
        qr = str(screen.query_one("#signup-qr").render())
        assert screen.query_one("#signup-qr-box").display
        assert set(qr) <= QR_CHARACTERS | {"\n"} and 13 <= len(qr.splitlines()) <= 19, qr
        text = screen_text(app)
        problems += cuts(app)
        if lang == "zh":
            problems += [f"English: {run}" for run in english_runs(text, NAMES)]
        assert all(line in text for line in qr.splitlines()), "the QR code is not whole on the screen"
        assert HINTS[lang][0] in text.replace("\n ", "")

        await pilot.press("f7")  # the cashier sees boxes: plain half blocks, which every font has
        await settle(pilot)
        half = str(screen.query_one("#signup-qr").render())
        assert set(half) <= HALF_BLOCKS | {"\n"} and len(half.splitlines()) >= 24, half
        half_text = screen_text(app)
        problems += cuts(app)
        if lang == "zh":
            problems += [f"English: {run}" for run in english_runs(half_text, NAMES)]
        assert half.splitlines()[1] in half_text and HINTS[lang][1] in half_text.replace("\n ", "")
        box = screen.query_one(QrCodeBox)
        assert box.has_focus and box.max_scroll_y > 0  # taller than its room: the arrow keys scroll it
        await pilot.press("end")
        await settle(pilot)
        assert box.scroll_y == box.max_scroll_y and half.splitlines()[-2] in screen_text(app)
        await pilot.press("f7")  # and back
        await settle(pilot)
        assert str(screen.query_one("#signup-qr").render()) == qr
    assert problems == [], "\n".join(problems)
    check_golden(f"signup-qr-{lang}.txt", steady_text(masked_qr(text, qr)))
    check_golden(f"signup-qr-half-{lang}.txt", steady_text(masked_qr(half_text, half)))
