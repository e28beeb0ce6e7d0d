"""The demo hotel's shop and spa are live tills (issue 17): enrolled, their morning made at them with their
merchant's rules and synced, and still taking operations that their own sync processes carry to the ledger.

Figures by hand from the demo's rules. Shop: Zhang Min's 500.00 cash top-up (50.00 bonus); Chen Jing's 45.00 from
stored value. Spa (gold 15%, platinum 20%, only its own coupons): Zhang Min (preferred, the program's 10%) 120.00
→ 108.00 from stored value; Chen Jing's 200.00 top-up (10.00 bonus); Wang Fang (platinum) 680.00 − 136.00 − the
spa's 30.00 coupon = 514.00 from stored value. Li Wei (gold) at the shop, 10.00 cash: 12% off → 8.80, and a point
per 2.00 at 1.5x → 6 points.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from cardpos.demo.runner import DemoRunner
from ledger import store
from ledger.home import open_ledger
from ledger.settlement import books, periods

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_hotels_shop_and_spa_are_live_tills(tmp_path: Path) -> None:
    runner = DemoRunner(tmp_path / "demo")
    try:
        runner.start()
        assert runner.setup is not None
        setup = runner.setup
        tills = {t.merchant_id: t.terminal_id for t in setup.hotel_tills}
        home = open_ledger(setup.ledger_dir)
        try:
            day = books.draft(periods.period_of(home.now_ms()))
            rows = {r["party"]: r for r in day["parties"]}
            assert (rows["shop"]["sv_taken_in"], rows["shop"]["bonus_funded"]) == (50_000, 5_000)
            assert (rows["spa"]["sv_taken_in"], rows["spa"]["bonus_funded"]) == (20_000, 1_000)
            assert (rows["shop"]["sv_redeemed"], rows["spa"]["sv_redeemed"]) == (4_500, 10_800 + 51_400)
            assert rows["spa"]["coupons_funded"] == rows["spa"]["coupons_honoured"] == 3_000
            nets = {p["party"]: p["net"] for p in day["positions"]}
            assert sum(nets.values()) == 0 and nets["shop"] < 0 < nets["spa"]
            live = store.Terminal.select().where(store.Terminal.terminal_id.in_(list(tills.values())))
            assert {t.status for t in live} == {"active"}

            env = {**runner.env, "CARDPOS_DATA_DIR": str(runner.till_dir("shop"))}
            done = subprocess.run([sys.executable, "-m", "cardpos", "terminal", "op", "sale", "10.00", "--tender",
                                   "cash", "--card", setup.member_cards["Li"], "--json", "--no-print"],
                                  env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr + done.stdout
            sold = json.loads(done.stdout)
            assert (sold["payload"]["net"], sold["payload"]["pts_earn"]) == (880, 6)
            deadline = time.monotonic() + 60  # the shop's own sync process carries it (every 5 s)
            while store.AppliedEntry.get_or_none(store.AppliedEntry.uuid == sold["uuid"]) is None:
                assert time.monotonic() < deadline, "the shop till's sync did not bring the sale to the ledger"
                time.sleep(0.5)
        finally:
            home.database.close()
    finally:
        runner.stop()
    assert all(child.proc.poll() is not None for child in runner.till_syncs)
