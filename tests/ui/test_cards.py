"""Card taps through the real counter: a genuine card opens the member, every refusal is red words without
member data and is journaled, and manual entry takes the printed card text."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, Static

from cardkit.cards.textform import token_to_text
from cardkit.cards.verdict import RejectReason
from terminal.ui.screens.idle import IdleScreen
from terminal.ui.screens.manual import ManualEntryScreen
from terminal.ui.screens.member import MemberScreen
from terminal.ui.screens.refusal import RefusalScreen
from tests.fixtures.cards import DAY, key_from_seed
from tests.fixtures.ui import UiWorld, settle, sign_in, tap, text_of

pytestmark = pytest.mark.anyio



def screen_text(app) -> str:
    return "\n".join(str(w.render()) for w in app.screen.query(Static))


async def test_genuine_card_opens_the_member_with_figures_coupons_notes_and_history(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await tap(pilot, ui_world.world.token())
        assert isinstance(app.screen, MemberScreen)
        assert text_of(app, "#member-name") == "Li Na"
        assert "Gold" in text_of(app, "#member-tier")
        money = text_of(app, "#member-money")
        assert "1000.00 CNY" in money and "500" in money and "0123456789abcdef" in money
        coupons = text_of(app, "#member-coupons")
        assert "C10 -10.00 ≥50.00" in coupons and "P5 -5%" in coupons
        assert "OLD" not in coupons  # expired coupons are not offered
        assert "prefers paper receipts" in text_of(app, "#member-notes")
        assert "lang=zh" in text_of(app, "#member-prefs")
        # The counter is offline in this world: figures are marked as estimates.
        assert text_of(app, "#member-estimate") == "[OFFLINE ESTIMATE]"


async def test_member_is_marked_up_to_date_when_online(ui_world: UiWorld) -> None:
    ui_world.world.online_flag[0] = True
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await tap(pilot, ui_world.world.token())
        assert text_of(app, "#member-estimate") == "[up to date]"
        await pilot.press("e")  # notes move no figure: still the ledger's figures
        await settle(pilot)
        await pilot.press(*"call first", "enter", "enter")
        await settle(pilot)
        assert "call first" in text_of(app, "#member-notes")
        assert text_of(app, "#member-estimate") == "[up to date]"
        await pilot.press("t", *"200", "enter")  # a top-up: the ledger has not confirmed it yet
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert text_of(app, "#member-estimate") == "[NOT YET CONFIRMED]"


async def test_forged_card_is_refused_in_red_words_with_no_member_data(ui_world: UiWorld) -> None:
    forged = ui_world.world.token(key=key_from_seed(bytes([9]) * 32))  # signed by a key that is not the issuer's
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await tap(pilot, forged)
        assert isinstance(app.screen, RefusalScreen)
        assert app.screen.reason is RejectReason.BAD_SIGNATURE
        shown = screen_text(app)
        assert "CARD REFUSED" in shown
        assert "Forged card: the signature does not match" in shown
        assert "Li Na" not in shown and "1000.00" not in shown and "M0001" not in shown
        refusal = app.screen.query_one("#refusal")
        assert refusal.styles.background.r > 150 and refusal.styles.background.g < 100  # red
        assert refusal.region.width == 78  # the whole body width
        # Enter goes back to waiting for a card.
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, IdleScreen)
    rejects = [e for e in ui_world.counter.store.journal.entries() if e.kind == "card_reject"]
    assert [e.payload["reason"] for e in rejects] == ["bad_signature"]


async def test_expired_and_unreadable_cards_say_why(ui_world: UiWorld) -> None:
    world = ui_world.world
    now = world.cards.now
    expired = world.token(issued_at=now - 300 * DAY, not_before=now - 300 * DAY, expires_at=now - DAY)
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await tap(pilot, expired)
        assert isinstance(app.screen, RefusalScreen)
        assert "Card has expired" in screen_text(app)
        await pilot.press("enter")
        await tap(pilot, b"\x00garbage")
        assert "Card data is unreadable or not a cardpos card" in screen_text(app)


async def test_refusal_words_are_chinese_with_zh(ui_world: UiWorld) -> None:
    forged = ui_world.world.token(key=key_from_seed(bytes([9]) * 32))
    app = ui_world.app("zh")
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await tap(pilot, forged)
        shown = screen_text(app)
        assert "卡片被拒绝" in shown and "伪造卡：签名不匹配" in shown


async def test_manual_entry_accepts_the_printed_card_text(ui_world: UiWorld) -> None:
    text = token_to_text(ui_world.world.token())
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("m")
        await settle(pilot)
        assert isinstance(app.screen, ManualEntryScreen)
        field = app.screen.query_one("#token-text", Input)
        field.value = text  # a keyboard-wedge scanner types the whole text, then Enter
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MemberScreen)
        assert text_of(app, "#member-name") == "Li Na"


async def test_manual_entry_of_nonsense_is_refused_and_journaled_as_manual(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await pilot.press("m")
        await pilot.press(*"HELLO", "enter")
        await settle(pilot)
        assert isinstance(app.screen, RefusalScreen)
        assert app.screen.reason is RejectReason.MALFORMED
    reject = [e for e in ui_world.counter.store.journal.entries() if e.kind == "card_reject"][-1]
    assert reject.payload["manual"] is True


async def test_a_tap_before_sign_in_opens_nothing(ui_world: UiWorld) -> None:
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await tap(pilot, ui_world.world.token())
        assert not isinstance(app.screen, MemberScreen)
        assert not [e for e in ui_world.counter.store.journal.entries() if e.kind == "card_reject"]


async def test_member_history_lists_recent_operations(ui_world: UiWorld) -> None:
    from cardkit.core.money import Money

    counter = ui_world.counter
    claims = counter.tap(ui_world.world.token()).claims
    for minor in (1_000, 2_000, 3_000):
        counter.sale(claims, Money(minor, "CNY"), tender="cash", cashier_id="c1")
    app = ui_world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot)
        await tap(pilot, ui_world.world.token())
        table = app.screen.query_one("#member-history", DataTable)
        assert table.row_count == 3
        newest = [str(c) for c in table.get_row_at(0)]
        assert "sale 26.40 CNY by cash" in newest[2]  # 30.00 less the 12% gold discount
