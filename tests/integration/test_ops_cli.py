"""`cardpos terminal op` and `cardpos terminal cashier` as a real subprocess against a real data dir."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from terminal.offline.store import TerminalStore
from tests.conftest import CARDPOS
from tests.fixtures.cards import key_from_seed
from tests.fixtures.counter import CARD_GOLD, SUPERVISOR_PIN, TERMINAL_ID, CounterWorld


def cardpos(env: dict[str, str], *args: str, stdin: str | None = None,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CARDPOS, *args], env={**env, **(extra_env or {})}, capture_output=True, text=True,
                          input=stdin, timeout=60, check=False)


def op(env: dict[str, str], *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return cardpos(env, "terminal", "op", *args, **kw)


def as_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.stdout.count("\n") == 1, result.stdout + result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def journal(data_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    with TerminalStore.open(data_dir, TERMINAL_ID) as store:
        return [(e.kind, e.payload) for e in store.journal.entries()]


def test_balance_sale_and_history(cli_world: CounterWorld, clean_env: dict[str, str]) -> None:
    card = cli_world.text()
    balance = op(clean_env, "balance", "--card", card, "--json")
    assert balance.returncode == 0, balance.stderr
    data = as_json(balance)
    assert (data["member"], data["balance"], data["points"], data["tier"]) == ("M0001", "1000.00", 500, "gold")
    assert [c["coupon_id"] for c in data["coupons"]] == ["C10", "P5"]

    sale = op(clean_env, "sale", "123.45", "--card", card, "--coupon", "C10", "--redeem-points", "200",
              "--cashier", "c1", "--json")
    assert sale.returncode == 0, sale.stderr
    receipt = as_json(sale)
    assert receipt["ok"] and receipt["kind"] == "sale" and receipt["cashier"] == "c1"
    assert (receipt["payload"]["net"], receipt["payload"]["sv"], receipt["payload"]["pts_earn"]) == (9664, 9664, 144)
    assert receipt["payload"]["offline"] is True  # a headless operation never reaches the ledger
    assert "manual" not in receipt["payload"]  # a card from a scanner, file or script is no manual entry
    kinds = [k for k, _ in journal(cli_world.data_dir)]
    assert kinds == ["sale"]

    human = op(clean_env, "sale", "20.00", "--card", card, "--tender", "cash")
    assert human.returncode == 0 and "TOTAL" in human.stdout and "17.60 CNY" in human.stdout

    after = as_json(op(clean_env, "balance", "--card", card, "--json"))
    assert (after["balance"], after["points"]) == ("903.36", 500 - 200 + 144 + 26)
    assert after["offline_estimate"] is True

    history = op(clean_env, "history", "--card", card)
    assert history.returncode == 0
    lines = history.stdout.strip().splitlines()
    assert len(lines) == 2 and "sale 17.60 CNY by cash" in lines[0] and receipt["uuid"] in lines[1]


def test_declines_say_why_with_exit_status_1(cli_world: CounterWorld, clean_env: dict[str, str]) -> None:
    std = cli_world.cards.token(card_id="00000000000000a2", member_id="M0002")
    from cardkit.cards.textform import token_to_text
    text = token_to_text(std)
    declined = op(clean_env, "sale", "50.00", "--card", text)
    assert declined.returncode == 1
    line = one_line_error(declined)
    assert line.startswith("cardpos: declined: Stored value is 20.00 CNY but 50.00 CNY is needed")
    as_data = as_json(op(clean_env, "sale", "50.00", "--card", text, "--json"))
    assert as_data["ok"] is False and as_data["error"] == "insufficient_balance"
    used = as_json(op(clean_env, "sale", "10.00", "--card", cli_world.text(), "--coupon", "OLD", "--json"))
    assert used["error"] == "coupon_expired" and "remove it from the sale" in used["message"]
    assert journal(cli_world.data_dir) == []  # declines record nothing


def test_rejected_cards_are_journaled_as_manual_entries_only_when_typed(cli_world: CounterWorld,
                                                                        clean_env: dict[str, str]) -> None:
    forged = cli_world.text(key=key_from_seed(bytes([9]) * 32))
    result = op(clean_env, "balance", "--card", forged, "--json", "--source", "typed")
    assert result.returncode == 1
    data = as_json(result)
    assert (data["error"], data["reason"]) == ("card_rejected", "bad_signature")
    garbage = op(clean_env, "sale", "1.00", "--card", "not a card at all", "--source", "typed")
    assert garbage.returncode == 1
    assert one_line_error(garbage) == "cardpos: card rejected: Card data is unreadable or not a cardpos card"
    scanned = op(clean_env, "balance", "--card", forged)  # the default source: a scanner, a file or a script
    assert scanned.returncode == 1
    rejects = journal(cli_world.data_dir)
    assert rejects == [
        ("card_reject", {"reason": "bad_signature", "card": CARD_GOLD, "kid": "k1", "manual": True}),
        ("card_reject", {"reason": "malformed", "card": None, "kid": None, "manual": True}),
        ("card_reject", {"reason": "bad_signature", "card": CARD_GOLD, "kid": "k1", "manual": False}),
    ]


def test_only_a_typed_card_makes_a_manual_sale(cli_world: CounterWorld, clean_env: dict[str, str]) -> None:
    card = cli_world.text()
    typed = as_json(op(clean_env, "sale", "1.00", "--card", card, "--tender", "cash", "--source", "typed", "--json"))
    assert typed["payload"]["manual"] is True
    read = as_json(op(clean_env, "sale", "1.00", "--card", card, "--tender", "cash", "--source", "reader", "--json"))
    assert "manual" not in read["payload"]
    bad = op(clean_env, "sale", "1.00", "--card", card, "--source", "keyboard")
    assert bad.returncode == 2 and "--source" in one_line_error(bad) and "reader" in one_line_error(bad)
    assert [("manual" in p) for _, p in journal(cli_world.data_dir)] == [True, False]


@pytest.mark.parametrize("args", [
    ["sale", "12.5.0"],
    ["sale", "12.505"],
    ["sale", "0.00"],
    ["sale", "12.50", "--tender", "voucher"],
    ["sale", "12.50", "--cashier", "nobody"],
    ["sale", "12.50", "--redeem-points", "many"],
    ["topup", "100.00", "--tender", "sv"],
    ["history", "-n", "0"],
])
def test_bad_input_is_exit_status_2_in_one_line(cli_world: CounterWorld, clean_env: dict[str, str],
                                                args: list[str]) -> None:
    result = op(clean_env, args[0], "--card", cli_world.text(), *args[1:])
    assert result.returncode == 2, result.stdout + result.stderr
    one_line_error(result)
    assert journal(cli_world.data_dir) == []


def test_refund_and_void_need_a_supervisor_pin(cli_world: CounterWorld, clean_env: dict[str, str]) -> None:
    card = cli_world.text()
    sale = as_json(op(clean_env, "sale", "100.00", "--card", card, "--json"))
    uuid = sale["uuid"]
    pin = {"SUP_PIN": SUPERVISOR_PIN}
    wrong = op(clean_env, "refund", uuid, "10.00", "--supervisor", "s1", "--supervisor-pin-env", "SUP_PIN",
               extra_env={"SUP_PIN": "0000"})
    assert wrong.returncode == 1 and "not authorised: wrong PIN" in one_line_error(wrong)
    cashier = op(clean_env, "refund", uuid, "10.00", "--supervisor", "c1", "--supervisor-pin-env", "SUP_PIN",
                 extra_env={"SUP_PIN": "1111"})
    assert cashier.returncode == 1 and "needs a supervisor" in one_line_error(cashier)
    missing = op(clean_env, "refund", uuid, "10.00", "--supervisor", "s1", "--supervisor-pin-env", "NOPE")
    assert missing.returncode == 2
    refund = op(clean_env, "refund", uuid, "10.00", "--supervisor", "s1", "--supervisor-pin-env", "SUP_PIN",
                "--json", extra_env=pin)
    assert refund.returncode == 0, refund.stderr
    assert as_json(refund)["payload"]["supervisor"] == "s1"
    too_much = as_json(op(clean_env, "refund", uuid, "80.00", "--supervisor", "s1", "--supervisor-pin-env",
                          "SUP_PIN", "--json", extra_env=pin))
    assert too_much["error"] == "refund_exceeds"
    void = as_json(op(clean_env, "void", uuid, "--supervisor", "s1", "--supervisor-pin-env", "SUP_PIN", "--json",
                      extra_env=pin))
    assert void["error"] == "already_refunded"
    topup = as_json(op(clean_env, "topup", "500.00", "--card", card, "--json"))
    assert topup["payload"]["bonus"] == 5000
    voided = op(clean_env, "void", topup["uuid"], "--supervisor", "s1", "--supervisor-pin-env", "SUP_PIN",
                extra_env=pin)
    assert voided.returncode == 0 and "VOID" in voided.stdout
    assert [k for k, _ in journal(cli_world.data_dir)] == ["sale", "refund", "topup", "void"]


def test_offline_limit_reached_from_the_command_line(cli_world: CounterWorld, clean_env: dict[str, str]) -> None:
    card = cli_world.text()
    for _ in range(cli_world.rules.offline.max_consecutive_offline_ops):
        assert op(clean_env, "sale", "5.00", "--card", card).returncode == 0
    refused = as_json(op(clean_env, "sale", "5.00", "--card", card, "--json"))
    assert refused["error"] == "offline_limit" and "cash and bank card still work" in refused["message"]
    assert op(clean_env, "sale", "5.00", "--card", card, "--tender", "bank_card").returncode == 0
    redeem = as_json(op(clean_env, "redeem", "--card", card, "--points", "100", "--item", "mug", "--json"))
    assert redeem["ok"] and redeem["payload"]["pts"] == 100


def test_cashier_add_and_list(cli_world: CounterWorld, clean_env: dict[str, str]) -> None:
    added = cardpos(clean_env, "terminal", "cashier", "add", "c2", "--name", "Zhao Min", "--role", "cashier",
                    "--pin-env", "NEW_PIN", extra_env={"NEW_PIN": "482913"})
    assert added.returncode == 0 and added.stdout.strip() == "added cashier c2"
    from_stdin = cardpos(clean_env, "terminal", "cashier", "add", "s2", "--name", "Qian", "--role", "supervisor",
                         "--json", stdin="5555\n")
    assert as_json(from_stdin) == {"ok": True, "cashier": "s2", "role": "supervisor"}
    bad_pin = cardpos(clean_env, "terminal", "cashier", "add", "c3", "--name", "X", "--role", "cashier",
                      stdin="12\n")
    assert bad_pin.returncode == 2 and "4 to 12 digits" in one_line_error(bad_pin)
    twice = cardpos(clean_env, "terminal", "cashier", "add", "c2", "--name", "Y", "--role", "cashier",
                    stdin="4444\n")
    assert twice.returncode == 1 and "already exists" in one_line_error(twice)
    listing = as_json(cardpos(clean_env, "terminal", "cashier", "list", "--json"))
    assert [c["cashier"] for c in listing["cashiers"]] == ["c1", "c2", "s1", "s2"]
    with TerminalStore.open(cli_world.data_dir, TERMINAL_ID) as store:
        assert store.cashiers.authenticate("c2", "482913", now=cli_world.clock.ms()).name == "Zhao Min"
    # The new supervisor can approve a refund.
    sale = as_json(op(clean_env, "sale", "10.00", "--card", cli_world.text(), "--tender", "cash", "--json"))
    refund = op(clean_env, "refund", sale["uuid"], "8.80", "--supervisor", "s2", "--supervisor-pin-env", "P",
                extra_env={"P": "5555"})
    assert refund.returncode == 0, refund.stderr


def test_not_enrolled_is_one_clear_line(tmp_path: Path, clean_env: dict[str, str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = op({**clean_env, "CARDPOS_DATA_DIR": str(empty)}, "balance", "--card", "CP1:00")
    assert result.returncode == 1
    assert "not enrolled" in one_line_error(result)


def test_upgrade_fee_and_zreport(cli_world: CounterWorld, clean_env: dict[str, str]) -> None:
    from cardkit.cards.textform import token_to_text
    from cardkit.core.members import Tier

    std = token_to_text(cli_world.cards.token(card_id="00000000000000a2", member_id="M0002", tier=Tier.STANDARD))
    not_yet = as_json(op(clean_env, "upgrade", "--card", std, "--json"))
    assert not_yet["error"] == "tier_not_due"
    assert op(clean_env, "sale", "60.00", "--card", std, "--tender", "cash").returncode == 0  # 1950 + 60 >= 2000
    upgraded = as_json(op(clean_env, "upgrade", "--card", std, "--json"))
    assert upgraded["payload"] == {"member": "M0002", "card": "00000000000000a2", "from": "standard",
                                   "to": "preferred"}
    fee = as_json(op(clean_env, "fee", "--card", std, "--tier", "gold", "--tender", "bank_card", "--json"))
    assert fee["payload"]["amount"] == 29_900 and fee["after"]["tier"] == "gold"
    report = as_json(op(clean_env, "zreport", "--json"))
    assert report["counts"] == {"membership_fee": 1, "sale": 1, "tier_upgrade": 1}
    assert report["totals"] == {"membership_fee": {"bank_card": 29_900}, "sale": {"cash": 6_000}}
    assert report["unsynced_total"] == 3
    text = op(clean_env, "zreport")
    assert text.returncode == 0 and text.stdout.startswith("Z-REPORT  terminal T-COUNTER-1")


def test_a_challenge_card_cannot_be_used_from_a_script(cli_world: CounterWorld, clean_env: dict[str, str]) -> None:
    from cardkit.cards.textform import token_to_text

    text = token_to_text(cli_world.cards.challenge_token())
    result = as_json(op(clean_env, "balance", "--card", text, "--json"))
    assert (result["error"], result["reason"]) == ("card_rejected", "challenge_failed")
    assert journal(cli_world.data_dir)[0][1]["reason"] == "challenge_failed"


def test_gifts_come_from_the_catalogue_by_id(cli_world: CounterWorld, clean_env: dict[str, str]) -> None:
    listed = op(clean_env, "gifts")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split() == ["tote", "300", "pts", "Canvas", "tote", "bag"]
    assert [g["id"] for g in as_json(op(clean_env, "gifts", "--json"))["gifts"]] == [
        "mug", "tote", "umbrella", "voucher-50"]
    gift = as_json(op(clean_env, "gift", "--item", "tote", "--card", cli_world.text(), "--json"))
    assert (gift["kind"], gift["payload"]["item"], gift["payload"]["pts"]) == ("redeem", "tote", 300)
    unknown = op(clean_env, "gift", "--item", "sofa", "--card", cli_world.text())
    assert unknown.returncode == 1
    assert one_line_error(unknown) == "cardpos: declined: No gift 'sofa' in this store's catalogue"
    assert [k for k, _ in journal(cli_world.data_dir)] == ["redeem"]


def test_balance_says_how_the_figures_stand_to_the_last_sync(cli_world: CounterWorld,
                                                             clean_env: dict[str, str]) -> None:
    fresh = op(clean_env, "balance", "--card", cli_world.text())
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.splitlines()[-1].startswith("As of the last sync, 2026-")
    assert "estimate" not in fresh.stdout
    op(clean_env, "topup", "200.00", "--card", cli_world.text())
    after = op(clean_env, "balance", "--card", cli_world.text())
    assert after.stdout.splitlines()[-1].startswith("Offline estimate: includes operations the ledger has not")
    data = as_json(op(clean_env, "balance", "--card", cli_world.text(), "--json"))
    assert data["pending"] is True and data["last_sync"].startswith("2026-")
