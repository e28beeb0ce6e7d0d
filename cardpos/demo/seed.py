"""Demo data: a fresh ledger with members, coupons, a terminal to enroll, and a simulator wallet holding one card
of every kind a cashier may meet; the program is a hotel of three merchants (``cardpos.demo.hotel``). Every card
is issued for real by the ledger's issuer key (or, for the forged and malformed ones, made the way a fraudster
would), so each gets its verdict through the real verification path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.cards.textform import token_to_text
from cardkit.cards.token import TOKEN_VERSION, new_card_id, sign_card_token
from cardkit.cards.verdict import CardClaims
from cardkit.core.members import Tier
from cardkit.wallet import Wallet, WalletCard
from cardpos.demo.hotel import HotelTill, seed_hotel
from ledger import admin
from ledger.home import init_ledger, open_ledger

DAY_S = 86_400
DEMO_ADMIN = ("demo", "cardpos-demo-admin")  # the console's demo owner account: name, password

# name, tier, opening balance (fen), points, notes, preferences
DEMO_MEMBERS: list[tuple[str, Tier, int, int, str, dict[str, str]]] = [
    ("Li Wei 李伟", Tier.GOLD, 50_000, 1_200, "Prefers the window table", {"drink": "jasmine tea"}),
    ("Zhang Min 张敏", Tier.PREFERRED, 12_000, 300, "", {"spice": "mild"}),
    ("Chen Jing 陈静", Tier.STANDARD, 5_000, 40, "", {}),
    ("Wang Fang 王芳", Tier.PLATINUM, 200_000, 8_800, "Birthday in May", {"seat": "private room"}),
]


TEST_MEMBER_NAME = "Test Card 测试卡"


@dataclass(frozen=True)
class DemoSetup:
    ledger_dir: Path
    wallet_path: Path
    terminal_id: str
    enroll_code: str
    member_ids: list[str]
    test_card_text: str
    """The technician's self-test card (a genuine card of a test member, not in the wallet)."""
    hotel_tills: list[HotelTill] = field(default_factory=list)
    """The shop's and the spa's tills, to enroll (``cardpos.demo.hotel``)."""
    member_cards: dict[str, str] = field(default_factory=dict)
    """Each demo member's first card, as text, by first name (``Li``, ``Zhang`` ...)."""
    spa_coupon: str = ""
    """The spa's own coupon, Wang Fang's."""


def seed_demo(root: Path, *, now_s: Callable[[], int] | None = None) -> DemoSetup:
    """Create ``root/ledger`` and ``root/wallet.json``. ``root`` must not hold a ledger yet."""
    clock_s = now_s or (lambda: int(os.environ.get("CARDPOS_DEMO_NOW", "0")) or _wall_s())
    now = clock_s()
    ledger_dir = root / "ledger"
    # The issuer key is created as of 90 days ago so the demo can hold a card that was genuine and has expired.
    init_ledger(ledger_dir, issuer="cardpos-demo", clock=lambda: (now - 90 * DAY_S) * 1000)
    ledger = open_ledger(ledger_dir, clock=lambda: clock_s() * 1000)
    try:
        wallet = Wallet()
        member_ids = []
        member_cards: dict[str, str] = {}
        for name, tier, balance, points, notes, prefs in DEMO_MEMBERS:
            member_id = admin.add_member(name, tier=tier, balance=balance, points=points, notes=notes,
                                         prefs=prefs, phone="138-0000-0000", actor="demo")
            member_ids.append(member_id)
            card = admin.issue_card(member_id, actor="demo")
            member_cards[name.split()[0]] = card.token_text
            wallet.add(WalletCard(f"{name.split()[0]} {name.split()[1]} ({tier.value})", "valid", card.token_text))
        li, zhang, chen, _wang = member_ids
        admin.issue_coupon(li, amount_off=1_000, min_spend=5_000, actor="demo")
        admin.issue_coupon(zhang, percent_off_bp=500, actor="demo")

        key_card = admin.issue_card(li, challenge=True, actor="demo")
        assert key_card.card_private_key is not None
        wallet.add(WalletCard("Li Wei key card (anti-copy)", "challenge", key_card.token_text,
                              key_card.card_private_key.hex()))
        wallet.add(WalletCard("copy of Li Wei's key card", "cloned", key_card.token_text))

        revoked = admin.issue_card(chen, actor="demo")
        admin.revoke_card(revoked.card_id, "lost", actor="demo")
        wallet.add(WalletCard("Chen Jing old card (reported lost)", "revoked", revoked.token_text))
        held = admin.issue_card(zhang, actor="demo")
        admin.hold_card(held.card_id, "review", actor="demo")
        wallet.add(WalletCard("Zhang Min second card (on hold)", "held", held.token_text))

        issuer_key, record = ledger.keys.current_issuer(ledger.issuer)
        expired = CardClaims(version=TOKEN_VERSION, issuer=ledger.issuer, card_id=new_card_id(os.urandom),
                             member_id=chen, tier=Tier.STANDARD, issued_at=now - 60 * DAY_S,
                             not_before=now - 60 * DAY_S, expires_at=now - DAY_S)
        wallet.add(WalletCard("Chen Jing card from last season (expired)", "expired",
                              token_to_text(sign_card_token(expired, issuer_key, record.kid))))
        forged = CardClaims(version=TOKEN_VERSION, issuer=ledger.issuer, card_id=new_card_id(os.urandom),
                            member_id=li, tier=Tier.PLATINUM, issued_at=now, not_before=now,
                            expires_at=now + 365 * DAY_S)
        wallet.add(WalletCard("forged platinum card", "forged",
                              token_to_text(sign_card_token(forged, Ed25519PrivateKey.generate(), record.kid))))
        wallet.add(WalletCard("not a member card", "malformed", "hex:d28443a10126a0f6"))

        # The technician self-test (F9, then T) taps this card through the real verify path; it belongs to a
        # member kept for testing, so a self-test never shows a customer's details.
        tester = admin.add_member(TEST_MEMBER_NAME, tier=Tier.STANDARD, notes="technician self-test card",
                                  actor="demo")
        test_card = admin.issue_card(tester, actor="demo")

        terminal_id, code = admin.add_terminal("demo counter 1", "store-1", actor="demo")
        hotel_tills, spa_coupon = seed_hotel(member_ids)
        from ledger.console import accounts, models

        models.create_tables()
        accounts.add_admin(DEMO_ADMIN[0], "owner", password=DEMO_ADMIN[1], actor="demo")
        wallet_path = root / "wallet.json"
        wallet.save(wallet_path)
    finally:
        ledger.database.close()
    return DemoSetup(ledger_dir=ledger_dir, wallet_path=wallet_path, terminal_id=terminal_id, enroll_code=code,
                     member_ids=member_ids, test_card_text=test_card.token_text, hotel_tills=hotel_tills,
                     member_cards=member_cards, spa_coupon=spa_coupon)


def _wall_s() -> int:
    import time

    return int(time.time())
