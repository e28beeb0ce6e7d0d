"""Card lifecycle through the ledger CLI, checked with the terminal's own verifier on documents pulled over HTTP:
issue, hold/unhold, revoke, key rotation and retirement, expiry, challenge-response cards, replacement."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit.cards.challenge import check_challenge, needs_challenge, new_nonce, sign_challenge
from cardkit.cards.revocation import RevocationList, load_revocation_delta
from cardkit.cards.textform import token_from_text
from cardkit.cards.trust import TrustList, load_trust_list
from cardkit.cards.verdict import RejectReason, Verdict
from cardkit.cards.verify import CardVerifier
from cardkit.wallet import Wallet
from tests.conftest import REPO_ROOT
from tests.fixtures.ledger import ISSUER, LedgerServer, LedgerTerminal, b64d, sale, topup

DAY_S = 86_400


@dataclass
class TerminalView:
    """What an enrolled terminal knows: trust list and revocations, kept up to date by delta pulls."""

    till: LedgerTerminal
    trust: TrustList | None = None
    revocations: RevocationList = field(default_factory=RevocationList)

    def refresh(self) -> None:
        trust_version = self.trust.version if self.trust else 0
        resp = self.till.pull(trust=trust_version, revocations=self.revocations.version, rules=0, members=0)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        if body["trust_list"] is not None:
            self.trust = load_trust_list(b64d(body["trust_list"]), self.till.root_public_key)
        if body["revocations"] is not None:
            self.revocations.apply(load_revocation_delta(b64d(body["revocations"]), self.till.root_public_key))

    def verify(self, token_text: str, *, at: int | None = None) -> Verdict:
        self.refresh()
        assert self.trust is not None
        verifier = CardVerifier(self.trust, self.revocations, issuer=ISSUER, clock_skew_s=300)
        return verifier.verify(token_from_text(token_text), int(time.time()) if at is None else at)


def enrolled(server: LedgerServer) -> TerminalView:
    code = server.admin_json("terminal", "add", "till")["code"]
    return TerminalView(LedgerTerminal.enroll(server.url, code))


@pytest.fixture(scope="module")
def view(shared_ledger_server: LedgerServer) -> TerminalView:
    return enrolled(shared_ledger_server)


def test_issue_hold_unhold_revoke(shared_ledger_server: LedgerServer, view: TerminalView) -> None:
    server = shared_ledger_server
    member_id = server.admin("member", "add", "Bo").stdout.strip()
    issued = server.admin_json("card", "issue", "--member", member_id)
    text = issued["token_text"]
    verdict = view.verify(text)
    assert verdict.accepted and verdict.claims is not None
    assert verdict.claims.member_id == member_id and verdict.claims.card_id == issued["card_id"]
    server.admin("card", "hold", issued["card_id"], "--reason", "suspicious")
    assert view.verify(text).reason is RejectReason.ON_HOLD
    server.admin("card", "unhold", issued["card_id"])
    assert view.verify(text).accepted
    server.admin("card", "revoke", issued["card_id"], "--reason", "lost")
    assert view.verify(text).reason is RejectReason.REVOKED
    assert view.revocations.reason(issued["card_id"]) == "lost"
    again = server.admin("card", "unhold", issued["card_id"], check=False)
    assert again.returncode == 1 and "not on hold" in again.stderr
    fresh = enrolled(server)  # a terminal enrolled later gets the full list from version 0
    assert fresh.verify(text).reason is RejectReason.REVOKED


def test_expired_card_is_refused(shared_ledger_server: LedgerServer, view: TerminalView) -> None:
    member_id = shared_ledger_server.admin("member", "add", "Cy").stdout.strip()
    text = shared_ledger_server.admin("card", "issue", "--member", member_id, "--expires-days", "1").stdout.strip()
    assert view.verify(text).accepted
    assert view.verify(text, at=int(time.time()) + 2 * DAY_S).reason is RejectReason.EXPIRED


def test_challenge_card_goes_to_the_wallet_with_its_key(shared_ledger_server: LedgerServer, view: TerminalView,
                                                        tmp_path: Path) -> None:
    server = shared_ledger_server
    member_id = server.admin("member", "add", "Di").stdout.strip()
    wallet_path = tmp_path / "wallet.json"
    text = server.admin("card", "issue", "--member", member_id, "--challenge", "--wallet", str(wallet_path),
                        "--label", "Di key card").stdout.strip()
    assert wallet_path.stat().st_mode & 0o777 == 0o600
    card = Wallet.load(wallet_path).card(1)
    assert card.label == "Di key card" and card.kind == "challenge" and card.token_text == text
    assert card.card_private_key_hex is not None
    verdict = view.verify(text)
    assert needs_challenge(verdict)
    nonce = new_nonce(lambda n: bytes(range(n)))
    card_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(card.card_private_key_hex))
    assert check_challenge(verdict, nonce, sign_challenge(card_key, nonce)).accepted
    clone = check_challenge(verdict, nonce, sign_challenge(Ed25519PrivateKey.generate(), nonce))
    assert clone.reason is RejectReason.CHALLENGE_FAILED


def test_replace_moves_balance_points_coupons_prefs_and_history(shared_ledger_server: LedgerServer,
                                                                view: TerminalView) -> None:
    server = shared_ledger_server
    member_id = server.admin("member", "add", "Eve", "--balance", "50.00", "--points", "40",
                             "--pref", "milk=oat").stdout.strip()
    old = server.admin_json("card", "issue", "--member", member_id)
    till = view.till
    first = len(till.entries) + 1
    till.append("topup", topup(member_id, 10_000, bonus=500, card=old["card_id"]))
    till.append("sale", sale(member_id, 2_500, pts_earn=25, card=old["card_id"]))
    assert till.push(first, len(till.entries)).status_code == 200
    coupon = server.admin_json("coupon", "issue", "--member", member_id, "--amount", "5.00")["coupon_id"]
    before = server.admin_json("member", "show", member_id)
    assert (before["balance"], before["points"], before["tier"]) == (5_000 + 10_500 - 2_500, 65, "standard")

    new = server.admin_json("card", "replace", old["card_id"], "--tier", "gold")
    assert new["replaced"] == old["card_id"] and new["tier"] == "gold"
    assert view.verify(old["token_text"]).reason is RejectReason.REVOKED
    assert view.revocations.reason(old["card_id"]) == "replaced"
    verdict = view.verify(new["token_text"])
    assert verdict.accepted and verdict.claims is not None
    assert verdict.claims.tier.value == "gold" and verdict.claims.member_id == member_id

    after = server.admin_json("member", "show", member_id)
    assert (after["balance"], after["points"], after["tier"]) == (before["balance"], before["points"], "gold")
    assert after["prefs"] == {"milk": "oat"}
    assert [c["coupon_id"] for c in after["coupons"]] == [coupon]
    assert [e["kind"] for e in after["history"]][-3:] == ["topup", "sale", "tier_upgrade"]
    by_id = {c["card_id"]: c for c in after["cards"]}
    assert by_id[old["card_id"]]["status"] == "replaced"
    assert by_id[old["card_id"]]["replaced_by"] == new["card_id"]
    assert after["card_ids"] == [new["card_id"]]

    resp = till.pull(members=0)
    snapshot = till.open_members(resp.json()["members"])
    mine = next(m for m in snapshot.members if m["member_id"] == member_id)
    assert mine["card_ids"] == [new["card_id"]]
    assert (mine["balance"], mine["points"], mine["tier"]) == (after["balance"], after["points"], "gold")
    assert [c["coupon_id"] for c in mine["coupons"]] == [coupon]
    assert server.admin("verify", check=False).returncode == 0


def test_rotation_keeps_old_cards_until_their_key_is_retired(ledger_server: LedgerServer) -> None:
    view = enrolled(ledger_server)
    member_id = ledger_server.admin("member", "add", "Flo").stdout.strip()
    old = ledger_server.admin_json("card", "issue", "--member", member_id)
    assert old["kid"] == "k1"
    refused = ledger_server.admin("keys", "retire", "k1", check=False)
    assert refused.returncode == 1 and "current key" in refused.stderr
    assert ledger_server.admin_json("keys", "rotate")["kid"] == "k2"
    new = ledger_server.admin_json("card", "issue", "--member", member_id)
    assert new["kid"] == "k2"
    assert view.verify(old["token_text"]).accepted
    assert view.verify(new["token_text"]).accepted
    ledger_server.admin("keys", "retire", "k1")
    assert view.verify(old["token_text"]).reason is RejectReason.UNKNOWN_KEY
    assert view.verify(new["token_text"]).accepted
    keys = {k["kid"]: k for k in ledger_server.admin_json("keys", "list")["keys"]}
    assert keys["k2"]["current"] and keys["k1"]["retired_ms"] is not None


def test_the_terminal_cli_follows_the_ledger_cli(shared_ledger_server: LedgerServer, tmp_path: Path) -> None:
    """End to end with both real command lines: ledger admin on one side, an enrolled terminal on the other."""
    server = shared_ledger_server
    data_dir = tmp_path / "terminal"
    data_dir.mkdir()
    env = {**server.env, "CARDPOS_DATA_DIR": str(data_dir)}

    def terminal(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cardpos", *args], env=env, cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=60)

    member_id = server.admin("member", "add", "Hal").stdout.strip()
    old = server.admin("card", "issue", "--member", member_id).stdout.strip()
    code = server.admin_json("terminal", "add", "cli till")["code"]
    enrolled_ = terminal("terminal", "enroll", "--ledger", server.url, "--code", code)
    assert enrolled_.returncode == 0, enrolled_.stderr
    assert terminal("card", "verify", old).returncode == 0
    new = server.admin_json("card", "replace", token_id(old), "--tier", "platinum")["token_text"]
    synced = terminal("terminal", "sync", "--once")
    assert synced.returncode == 0, synced.stderr
    refused = terminal("card", "verify", old, "--json")
    assert refused.returncode == 1 and json.loads(refused.stdout)["reason"] == "revoked"
    accepted = terminal("card", "verify", new, "--json")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


def token_id(token_text: str) -> str:
    from cardkit.cards.token import decode_card_token

    return decode_card_token(token_from_text(token_text)).claims.card_id
