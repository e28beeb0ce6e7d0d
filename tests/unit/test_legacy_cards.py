"""Old card numbers of an imported program (issue 17, docs/merchants.md "Old card numbers at the counter"): staff
find the member by the old number and issue their cardpos card by it, over the real CLI; the number typed at a
till's manual entry is refused as unreadable and journaled as a manual entry, never served (it is not signed)."""

from __future__ import annotations

import json
from pathlib import Path

from cardkit.cards.verdict import RejectReason
from tests.fixtures.counter import CounterWorld, counter_world  # noqa: F401  (the fixture)
from tests.fixtures.ledger import ledger_env, run_ledger_cli

MERCHANTS = "merchant_id,name\nspa,Spa\n"
STORES = "store_id,merchant_id\nspa-1,spa\n"
MEMBERS = "member_id,name,store_id,balance,card_number\nA1,Ann Lee,spa-1,100.00,OLD-0001\nA2,Bo Chan,spa-1,5.00,\n"


def test_staff_find_the_member_by_the_old_number_and_issue_their_card_by_it(tmp_path: Path) -> None:
    env, ledger_dir = ledger_env(tmp_path), tmp_path / "ledger"
    run_ledger_cli(ledger_dir, env, "init")
    for name, text in (("merchants.csv", MERCHANTS), ("stores.csv", STORES), ("members.csv", MEMBERS)):
        (tmp_path / name).write_text(text, encoding="utf-8")
    run_ledger_cli(ledger_dir, env, "import", "--merchants", str(tmp_path / "merchants.csv"), "--stores",
                   str(tmp_path / "stores.csv"), "--members", str(tmp_path / "members.csv"))

    found = json.loads(run_ledger_cli(ledger_dir, env, "member", "find", "--legacy-card", " OLD-0001 ",
                                      "--json").stdout)
    assert [(m["member_id"], m["name"], m["legacy_card"]) for m in found["members"]] == [("A1", "Ann Lee",
                                                                                           "OLD-0001")]
    both = json.loads(run_ledger_cli(ledger_dir, env, "member", "find", "--legacy-card", "OLD-0001", "--name", "bo",
                                     "--json").stdout)
    assert both["members"] == []  # every criterion given must match
    issued = json.loads(run_ledger_cli(ledger_dir, env, "card", "issue", "--legacy-card", "OLD-0001",
                                       "--json").stdout)
    assert issued["member_id"] == "A1" and issued["token_text"].startswith("CP1:")

    for args, reason in ((("card", "issue", "--legacy-card", "OLD-9999"), "no imported member has the old card "
                                                                          "number OLD-9999"),
                         (("member", "find", "--legacy-card", "no way"), "an old card number is 4 to 40"),
                         (("card", "issue", "--legacy-card", "OLD-0001", "--member", "A1"), "not allowed with")):
        done = run_ledger_cli(ledger_dir, env, *args, check=False)
        assert done.returncode != 0 and reason in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) <= 2  # argparse: usage line and the sentence


def test_an_old_number_typed_at_the_till_is_refused_and_journaled_as_manual(
        counter_world: CounterWorld) -> None:  # noqa: F811
    counter = counter_world.counter()
    tapped = counter.tap(b"OLD-0001", manual=True)  # what the manual entry screen passes for text that is no card
    assert not tapped.accepted and tapped.verdict.reason is RejectReason.MALFORMED
    assert tapped.reject_entry is not None and tapped.reject_entry.payload["manual"] is True
