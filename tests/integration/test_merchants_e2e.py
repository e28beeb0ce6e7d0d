"""One program, three merchants, end to end with real processes: a ledger server, and a terminal data dir per
merchant driven by the real ``cardpos terminal`` command line (enroll, op, sync). Every figure of the statement
and of the next period's adjustment is computed by hand below from the default rules (top-up of 1000.00 gets a
120.00 bonus; standard tier: no discount, one point per 1.00) and the program's point cost (1.00 per 100 points).

Members are served at every store once issue 17's "every store" part lands; until then the member's home store is
moved to the merchant serving them next, so that merchant's terminal receives them on its pull.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ledger.settlement import periods
from tests.fixtures.ledger import LedgerServer

REPO_ROOT = Path(__file__).resolve().parents[2]
PIN = "2468"


class Till:
    def __init__(self, server: LedgerServer, root: Path, merchant: str) -> None:
        self.store = f"{merchant}-1"
        code = server.admin_json("terminal", "add", f"{merchant} till", "--store", self.store)["code"]
        self.data_dir = root / merchant
        self.data_dir.mkdir()
        config = root / "terminal-config.toml"
        config.touch()
        self.env = {**{k: v for k, v in server.env.items() if not k.startswith("CARDPOS_")},
                    "CARDPOS_DATA_DIR": str(self.data_dir), "CARDPOS_CONFIG": str(config),
                    "CARDPOS_SYNC_TIMEOUT_S": "5", "SUP_PIN": PIN}
        self.run("terminal", "enroll", "--ledger", server.url, "--code", code)
        self.run("terminal", "cashier", "add", "s1", "--name", "Supervisor", "--role", "supervisor",
                 "--pin-env", "SUP_PIN")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "cardpos", *args], env=self.env, cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"cardpos {' '.join(args)}: {done.stderr.strip()} {done.stdout.strip()}"
        return done

    def op(self, *args: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.run("terminal", "op", *args, "--json", "--no-print").stdout)
        assert result.get("ok", True), result
        return result

    def sync(self) -> None:
        self.run("terminal", "sync", "--once")


def _serve_member_at(server: LedgerServer, member: str, till: Till) -> None:
    server.admin("member", "update", member, "--store", till.store)
    till.sync()


def test_three_merchants_statement_and_late_adjustment(ledger_server: LedgerServer, tmp_path: Path) -> None:
    server = ledger_server
    for merchant in ("restaurant", "shop", "spa"):
        server.admin("merchant", "add", merchant.title(), "--id", merchant)
        server.admin("merchant", "store", f"{merchant}-1", "--merchant", merchant)
    server.admin("program", "set", "--point-cost", "1.00/100", "--name", "Hotel")
    member = server.admin("member", "add", "Guest", "--store", "shop-1").stdout.strip()
    card = server.admin("card", "issue", "--member", member).stdout.strip()
    shop, restaurant, spa = (Till(server, tmp_path, m) for m in ("shop", "restaurant", "spa"))

    shop.sync()
    topped = shop.op("topup", "1000.00", "--card", card, "--tender", "cash")
    assert topped["payload"]["bonus"] == 12_000
    shop.sync()

    _serve_member_at(server, member, restaurant)
    meal = restaurant.op("sale", "300.00", "--card", card)
    assert (meal["payload"]["sv"], meal["payload"]["pts_earn"]) == (30_000, 300)
    restaurant.sync()

    _serve_member_at(server, member, spa)
    massage = spa.op("sale", "200.00", "--card", card)
    refund = spa.op("refund", massage["uuid"], "50.00", "--supervisor", "s1", "--supervisor-pin-env", "SUP_PIN")
    assert (refund["payload"]["sv"], refund["payload"]["pts_rev"]) == (5_000, 50)
    spa.sync()

    late = spa.op("sale", "80.00", "--card", card)  # journaled now, synced only after the period is closed
    period = periods.period_of(int(late["wall_ms"]) if "wall_ms" in late else int(time.time() * 1000))
    closed = server.admin_json("settlement", "run", "--period", period, "--early")
    spa.sync()

    # By hand. Shop: took 1000.00 and funded the 120.00 bonus. Restaurant: delivered 300.00 against stored value
    # and issued 300 points (3.00). Spa: 200.00 less the 50.00 refunded, 200 - 50 = 150 points (1.50).
    expected = {"shop": -(100_000 + 12_000), "restaurant": 30_000 - 300, "spa": 15_000 - 150}
    expected["program"] = -sum(expected.values())
    rows = {row["party"]: row for row in closed["parties"]}
    assert {p["party"]: p["net"] for p in closed["positions"]} == expected
    assert (rows["shop"]["sv_taken_in"], rows["shop"]["bonus_funded"]) == (100_000, 12_000)
    assert (rows["spa"]["sv_redeemed"], rows["spa"]["points_issued"]) == (15_000, 150)
    assert closed["transfers"] == [{"from": "program", "to": "restaurant", "amount": 29_700},
                                   {"from": "shop", "to": "program", "amount": 112_000},
                                   {"from": "program", "to": "spa", "amount": 14_850}]
    shop_liability = next(r for r in closed["liability"] if r["issuer"] == "shop")
    assert (shop_liability["taken_in"], shop_liability["redeemed"], shop_liability["closing"]) == (
        112_000, 45_000, 67_000)

    # The late 80.00 spa sale (80 points, 0.80) is next period's adjustment; the closed statement is unchanged.
    again = server.admin_json("settlement", "run", "--period", period)
    assert again == closed
    following = server.admin_json("settlement", "show", "--period", periods.next_period(period))
    assert [(a["from_period"], a["party"], a["sv_redeemed"], a["net"]) for a in following["adjustments"]] == [
        (period, "spa", 8_000, 8_000 - 80), (period, "program", 0, -(8_000 - 80))]
    assert following["transfers"] == [{"from": "program", "to": "spa", "amount": 7_920}]
    balance = server.admin_json("member", "show", member, "--history", "0")["balance"]
    assert balance == 112_000 - 30_000 - 20_000 + 5_000 - 8_000
    verified = server.admin("verify", check=False)
    assert verified.returncode == 0, verified.stdout
