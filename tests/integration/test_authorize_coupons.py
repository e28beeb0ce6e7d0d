"""A single-use coupon used at two terminals that were both offline: the ledger applies both (they happened), the
anomaly engine raises ``coupon_reuse`` naming both operations, and ``ledger verify`` reports the coupon applied
twice. A coupon given back by a void can be used again without either complaint. Real ledger process."""

from __future__ import annotations

from tests.fixtures.ledger import LedgerServer, LedgerTerminal, sale


def _till(server: LedgerServer, name: str) -> LedgerTerminal:
    return LedgerTerminal.enroll(server.url, server.admin_json("terminal", "add", name)["code"])


def _offline(payload: dict) -> dict:
    return {**payload, "offline": True, "auth": "offline"}


def test_a_coupon_used_twice_offline_is_caught(ledger_server: LedgerServer) -> None:
    member = ledger_server.admin_json("member", "add", "Coupon Twice", "--balance", "100.00")["member_id"]
    coupon = ledger_server.admin_json("coupon", "issue", "--member", member, "--percent", "12.5")["coupon_id"]
    a, b = _till(ledger_server, "till-a"), _till(ledger_server, "till-b")
    a.append("sale", _offline(sale(member, 875, sv=0, coupons=[coupon])))
    b.append("sale", _offline(sale(member, 875, sv=0, coupons=[coupon])))
    assert a.push(1, 1).status_code == 200
    assert b.push(1, 1).status_code == 200

    alerts = ledger_server.admin_json("alerts", "list", "--rule", "coupon_reuse")["alerts"]
    assert [(x["rule"], x["severity"], x["evidence"]) for x in alerts] == [
        ("coupon_reuse", "critical", [f"{a.terminal_id}:1", f"{b.terminal_id}:1"])]
    verified = ledger_server.admin("verify", check=False)
    assert verified.returncode != 0
    assert f"coupon {coupon}: applied twice ({a.terminal_id}/1 and {b.terminal_id}/1)" in verified.stdout + \
        verified.stderr


def test_a_coupon_given_back_by_a_void_can_be_used_again(ledger_server: LedgerServer) -> None:
    member = ledger_server.admin_json("member", "add", "Coupon Back", "--balance", "100.00")["member_id"]
    coupon = ledger_server.admin_json("coupon", "issue", "--member", member, "--amount", "5.00")["coupon_id"]
    till = _till(ledger_server, "till-v")
    first = till.append("sale", sale(member, 500, sv=0, coupons=[coupon]))
    till.append("void", {"card": "card", "member": member, "cur": "CNY", "orig": first.uuid,
                         "sv": 0, "pts_back": 0, "pts_rev": 0, "spend": 500, "coupons_back": [coupon],
                         "supervisor": "s1", "offline": False})
    till.append("sale", sale(member, 500, sv=0, coupons=[coupon]))
    assert till.push(1, 3).status_code == 200
    assert ledger_server.admin_json("alerts", "list", "--rule", "coupon_reuse")["alerts"] == []
    verified = ledger_server.admin("verify", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
