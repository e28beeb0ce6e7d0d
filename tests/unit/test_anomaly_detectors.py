"""Every detector against hand-built, really chained journal entries (cardkit.journal.make_entry)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cardkit.journal import JournalEntry
from ledger.anomaly import AnomalyEngine, MemoryState, Thresholds
from ledger.anomaly.model import Finding, Severity
from ledger.events import BatchRejected, TerminalSeen
from tests.fixtures.alerts import Chain

T0 = 1_790_000_000_000  # a fixed epoch ms
MIN = 60_000


class View:
    def __init__(self) -> None:
        self.balances: dict[str, int] = {}
        self.blocked: dict[str, int] = {}
        self.enrolled: dict[str, tuple[str, str, int | None]] = {}

    def balance_minor(self, member_id: str) -> int | None:
        return self.balances.get(member_id)

    def card_blocked_since(self, card_id: str) -> int | None:
        return self.blocked.get(card_id)

    def terminals(self) -> dict[str, tuple[str, str, int | None]]:
        return self.enrolled


def sale(card: str = "card-1", member: str = "m-1", net: int = 5000, sv: int = 0, **extra: Any) -> dict[str, Any]:
    return {"card": card, "member": member, "cur": "CNY", "gross": net, "tier_disc": 0, "coupon_disc": 0,
            "pts_disc": 0, "net": net, "tender": "sv" if sv else "cash", "sv": sv, "pts_earn": 0, "pts_redeem": 0,
            "coupons": [], "offline": True, **extra}


def reject(reason: str, card: str | None = None, manual: bool = False) -> dict[str, Any]:
    return {"reason": reason, "card": card, "kid": None, "manual": manual}


@pytest.fixture
def view() -> View:
    return View()


@pytest.fixture
def engine(view: View) -> AnomalyEngine:
    return AnomalyEngine(Thresholds(), MemoryState(), view)


def rules(findings: list[Finding]) -> list[str]:
    return [f.rule for f in findings]


def run_each(engine: AnomalyEngine, chain: Chain, entries: list[JournalEntry]) -> list[Finding]:
    out: list[Finding] = []
    for e in entries:
        out += engine.on_event(chain.batch([e]))
    return out


def test_forged_burst_counts_every_tap_into_one_subject(engine: AnomalyEngine) -> None:
    t = Chain("T1")
    entries = [t.add("card_reject", reject("bad_signature"), T0 + i * 100) for i in range(1000)]
    found = run_each(engine, t, entries)
    assert set(rules(found)) == {"forged_burst"}
    assert sum(f.count for f in found) == 1000  # 5 that crossed the threshold + 995 more
    assert found[0].count == 5 and found[0].severity is Severity.CRITICAL and found[0].subject_id == "T1"
    assert found[0].evidence == tuple(f"T1:{i}" for i in range(1, 6))


def test_forged_taps_below_threshold_or_spread_out_raise_nothing(engine: AnomalyEngine) -> None:
    t = Chain("T1")
    entries = [t.add("card_reject", reject("unknown_key"), T0 + i * 3 * MIN) for i in range(20)]  # 1 per 3 min
    assert run_each(engine, t, entries) == []


def test_forged_burst_spread_over_a_store_is_a_store_alert(engine: AnomalyEngine) -> None:
    chains = [Chain(f"T{i}") for i in range(4)]
    found: list[Finding] = []
    for i in range(8):  # two taps per terminal, under the per-terminal threshold of 5
        c = chains[i % 4]
        found += engine.on_event(c.batch([c.add("card_reject", reject("bad_signature"), T0 + i * MIN)]))
    assert rules(found) == ["forged_burst_store"]
    assert found[0].subject_id == "S1" and found[0].count == 8


def test_store_burst_right_after_a_single_terminal_burst_is_still_seen(engine: AnomalyEngine) -> None:
    one, two, three = Chain("T1"), Chain("T2"), Chain("T3")
    found = engine.on_event(one.batch([one.add("card_reject", reject("bad_signature"), T0 + i * 1000)
                                       for i in range(8)]))
    assert rules(found) == ["forged_burst"] * 4  # one terminal alone: not a store burst
    spread = [two.add("card_reject", reject("unknown_key"), T0 + MIN), three.add("card_reject",
                                                                                 reject("unknown_key"), T0 + 2 * MIN)]
    found = engine.on_event(two.batch(spread[:1])) + engine.on_event(three.batch(spread[1:]))
    assert rules(found) == ["forged_burst_store"] * 2  # the second terminal's tap fires it, the third adds one
    assert found[0].count == 9 and {e.split(":")[0] for e in found[0].evidence} == {"T1", "T2"}
    assert found[1].count == 1


def test_a_late_batch_still_completes_a_store_burst(engine: AnomalyEngine) -> None:
    one, two, late = Chain("T1"), Chain("T2"), Chain("T3")
    engine.on_event(one.batch([one.add("card_reject", reject("bad_signature"), T0 + i * 1000) for i in range(4)]))
    engine.on_event(two.batch([two.add("card_reject", reject("bad_signature"), T0 + 3 * 3_600_000)]))
    # T3 was offline for hours: its four taps, made next to T1's, arrive after everything else
    found = engine.on_event(late.batch([late.add("card_reject", reject("unknown_key"), T0 + 500 + i * 1000)
                                        for i in range(4)], received_ms=T0 + 4 * 3_600_000))
    assert rules(found) == ["forged_burst_store"] and found[0].count == 8


def test_revoked_card_taps_and_use_after_block(engine: AnomalyEngine, view: View) -> None:
    t = Chain("T1")
    first = engine.on_event(t.batch([t.add("card_reject", reject("revoked", "card-9"), T0)]))
    assert first == []  # one stray tap of a revoked card is not yet an incident
    second = engine.on_event(t.batch([t.add("card_reject", reject("on_hold", "card-9"), T0 + MIN)]))
    assert rules(second) == ["revoked_card_use"] and second[0].subject_id == "card-9" and second[0].count == 2
    view.blocked["card-7"] = T0 + 10 * MIN
    before = engine.on_event(t.batch([t.add("sale", sale("card-7"), T0 + 5 * MIN)]))
    after = engine.on_event(t.batch([t.add("sale", sale("card-7"), T0 + 20 * MIN)]))
    assert "revoked_card_use" not in rules(before)
    assert rules(after) == ["revoked_card_use"] and after[0].severity is Severity.CRITICAL


def test_double_spend_after_merging_two_terminals_asks_for_a_hold(engine: AnomalyEngine, view: View) -> None:
    a, b = Chain("TA"), Chain("TB")
    view.balances["m-1"] = 10_000 - 8_000
    first = engine.on_event(a.batch([a.add("sale", sale(sv=8_000, net=8_000), T0)]))
    assert "double_spend" not in rules(first)
    view.balances["m-1"] = 10_000 - 8_000 - 8_000  # the ledger merged TB's offline spend too
    second = engine.on_event(b.batch([b.add("sale", sale(sv=8_000, net=8_000), T0 + MIN)]))
    ds = [f for f in second if f.rule == "double_spend"]
    assert len(ds) == 1
    assert ds[0].hold_card == "card-1" and ds[0].subject_id == "card-1" and ds[0].severity is Severity.CRITICAL
    assert set(ds[0].evidence) == {"TA:1", "TB:1"}


def test_double_spend_hold_can_be_switched_off(view: View) -> None:
    engine = AnomalyEngine(Thresholds(double_spend_hold=0), MemoryState(), view)
    a = Chain("TA")
    view.balances["m-1"] = -1
    found = engine.on_event(a.batch([a.add("sale", sale(sv=100, net=100), T0)]))
    assert [f.hold_card for f in found if f.rule == "double_spend"] == [None]


def test_cloned_card_at_two_stores_too_close_in_time(engine: AnomalyEngine) -> None:
    a, b = Chain("TA", "S1"), Chain("TB", "S2")
    engine.on_event(a.batch([a.add("sale", sale(), T0)]))
    close = engine.on_event(b.batch([b.add("sale", sale(), T0 + 2 * MIN)]))
    assert rules(close) == ["cloned_card"] and set(close[0].evidence) == {"TA:1", "TB:1"}
    c = Chain("TC", "S3")
    far = engine.on_event(c.batch([c.add("sale", sale(), T0 + 60 * MIN)]))
    assert "cloned_card" not in rules(far)


def test_cloned_card_seen_out_of_order(engine: AnomalyEngine) -> None:
    a, b = Chain("TA", "S1"), Chain("TB", "S2")
    engine.on_event(a.batch([a.add("sale", sale(), T0 + 5 * MIN)]))  # synced first, happened later
    found = engine.on_event(b.batch([b.add("sale", sale(), T0)]))
    assert rules(found) == ["cloned_card"]


def test_same_store_two_terminals_is_not_a_clone(engine: AnomalyEngine) -> None:
    a, b = Chain("TA", "S1"), Chain("TB", "S1")
    engine.on_event(a.batch([a.add("sale", sale(), T0)]))
    assert engine.on_event(b.batch([b.add("sale", sale(), T0 + MIN)])) == []


def test_challenge_failure_is_a_clone(engine: AnomalyEngine) -> None:
    t = Chain("T1")
    found = engine.on_event(t.batch([t.add("card_reject", reject("challenge_failed", "card-3"), T0)]))
    assert rules(found) == ["cloned_card"] and found[0].subject_id == "card-3"


def test_velocity_per_hour_one_finding_per_operation(engine: AnomalyEngine) -> None:
    t = Chain("T1")
    entries = [t.add("sale", sale(net=1000), T0 + i * MIN) for i in range(25)]
    found = [f for f in run_each(engine, t, entries) if f.rule == "velocity"]
    assert found[0].count == 20 and sum(f.count for f in found) == 25


def test_velocity_per_day(engine: AnomalyEngine) -> None:
    t = Chain("T1")
    entries = [t.add("sale", sale(net=1000), T0 + i * 20 * MIN) for i in range(60)]  # 3/hour, 60 in 20 h
    found = [f for f in run_each(engine, t, entries) if f.rule == "velocity"]
    assert len(found) == 1 and found[0].count == 60 and "day" in found[0].summary


def test_normal_use_has_no_velocity(engine: AnomalyEngine) -> None:
    t = Chain("T1")
    entries = [t.add("sale", sale(net=1000), T0 + i * 90 * MIN) for i in range(40)]  # 16 per day
    assert run_each(engine, t, entries) == []


def test_unusual_amount_against_own_history(engine: AnomalyEngine) -> None:
    t = Chain("T1")
    usual = [4800, 5200, 5000, 5100, 4900, 5300, 4700, 5000, 5050, 4950]
    entries = [t.add("sale", sale(net=n), T0 + i * 120 * MIN) for i, n in enumerate(usual)]
    assert run_each(engine, t, entries) == []
    big = engine.on_event(t.batch([t.add("sale", sale(net=60_000), T0 + 30 * 120 * MIN)]))
    assert rules(big) == ["unusual_amount"] and big[0].subject_id == "m-1"
    modest = engine.on_event(t.batch([t.add("sale", sale(net=7_000), T0 + 31 * 120 * MIN)]))
    assert modest == []


def test_unusual_amount_needs_history(engine: AnomalyEngine) -> None:
    t = Chain("T1")
    entries = [t.add("sale", sale(net=n), T0 + i * 120 * MIN) for i, n in enumerate([5000] * 5 + [900_000])]
    assert run_each(engine, t, entries) == []


def test_cashier_refunds_per_shift(engine: AnomalyEngine) -> None:
    t = Chain("T1", cashier="alice")
    entries = [t.add("shift_open", {"shift": "s1"}, T0)]
    entries += [t.add("refund", {"card": "card-1", "member": "m-1", "cur": "CNY", "orig": str(uuid.uuid4()),
                                 "amount": 100, "sv": 0, "pts_back": 0, "pts_rev": 0, "tender": "cash",
                                 "supervisor": "bob", "offline": False}, T0 + i * MIN) for i in range(1, 7)]
    found = engine.on_event(t.batch(entries))
    assert rules(found) == ["cashier_refunds", "cashier_refunds"]
    assert found[0].subject_id == "alice" and found[0].count == 5 and found[0].window == "T1/s1"
    t2 = [t.add("shift_close", {"shift": "s1"}, T0 + 10 * MIN), t.add("shift_open", {"shift": "s2"}, T0 + 11 * MIN)]
    t2 += [t.add("void", {"card": "card-1", "member": "m-1", "cur": "CNY", "orig": str(uuid.uuid4()), "sv": 0,
                          "pts_back": 0, "pts_rev": 0, "coupons_back": [], "supervisor": "bob", "offline": False},
                 T0 + (12 + i) * MIN) for i in range(3)]
    assert engine.on_event(t.batch(t2)) == []


def _refund(i: int) -> dict[str, Any]:
    return {"card": "card-1", "member": "m-1", "cur": "CNY", "orig": str(uuid.UUID(int=i)), "amount": 100, "sv": 0,
            "pts_back": 0, "pts_rev": 0, "tender": "cash", "supervisor": "bob", "offline": False}


def test_refund_threshold_follows_the_fleet_norm(engine: AnomalyEngine) -> None:
    t = Chain("T1", cashier="dora")
    at = T0
    for day in range(25):  # a busy store: six refunds in every shift is its normal
        entries = [t.add("shift_open", {"shift": f"d{day}"}, at)]
        entries += [t.add("refund", _refund(k), at + (k + 1) * MIN) for k in range(6)]
        entries.append(t.add("shift_close", {"shift": f"d{day}"}, at + 10 * MIN))
        found = engine.on_event(t.batch(entries))
        # before 20 closed shifts the configured floor (5) applies; afterwards the norm (above 6) does
        assert bool(found) == (day < 20), day
        at += 24 * 60 * MIN
    entries = [t.add("shift_open", {"shift": "odd"}, at)]
    entries += [t.add("refund", _refund(k), at + (k + 1) * MIN) for k in range(7)]
    found = engine.on_event(t.batch(entries))
    assert [(f.rule, f.count) for f in found] == [("cashier_refunds", 7)]


def test_cashier_manual_entries(engine: AnomalyEngine) -> None:
    t = Chain("T1", cashier="carol")
    entries = [t.add("card_reject", reject("expired", "card-x", manual=True), T0 + i * MIN) for i in range(10)]
    found = engine.on_event(t.batch(entries))
    assert rules(found) == ["cashier_manual_entries"] and found[0].count == 10


def test_sequence_gap_and_broken_chain_in_applied_batches(engine: AnomalyEngine) -> None:
    t = Chain("T1")
    engine.on_event(t.batch([t.add("shift_open", {"shift": "s"}, T0)]))
    t.add("sale", sale(), T0 + MIN)  # seq 2 never reaches the ledger
    gap = engine.on_event(t.batch([t.add("sale", sale(), T0 + 2 * MIN)]))
    assert rules(gap) == ["sequence_gap"] and gap[0].evidence == ("T1:1", "T1:3")
    t.prev = b"\x01" * 32  # the next entry links to a hash that is not the previous entry's
    broken = engine.on_event(t.batch([t.add("sale", sale(), T0 + 3 * MIN)]))
    assert rules(broken) == ["broken_chain"] and broken[0].severity is Severity.CRITICAL


@pytest.mark.parametrize(("reason", "rule", "severity"), [
    ("sequence_gap", "sequence_gap", Severity.WARNING),
    ("broken_chain", "broken_chain", Severity.CRITICAL),
    ("tampered", "tampered_batch", Severity.CRITICAL),
    ("replayed", "replayed_batch", Severity.INFO),
    ("decrypt_failed", "rejected_batch", Severity.WARNING),
])
def test_rejected_batches(engine: AnomalyEngine, reason: str, rule: str, severity: Severity) -> None:
    found = engine.on_event(BatchRejected("T1", reason, "detail", T0, [4, 5]))
    assert [(f.rule, f.severity, f.evidence) for f in found] == [(rule, severity, ("T1:4", "T1:5"))]


def test_clock_skew_future_entries_and_wall_jump(engine: AnomalyEngine) -> None:
    t = Chain("T1")
    future = engine.on_event(t.batch([t.add("sale", sale(), T0 + 3600_000)], received_ms=T0))
    assert rules(future) == ["clock_skew"]
    u = Chain("T2")
    entries = [u.add("sale", sale(card="c2", member="m2"), T0)]
    # the wall clock jumps back a day while only a second of monotonic time passes
    entries.append(u.add("sale", sale(card="c2", member="m2"), T0 - 86_400_000, mono_step_ns=1_000_000_000))
    jump = engine.on_event(u.batch(entries, received_ms=T0))
    assert rules(jump) == ["clock_skew"] and jump[0].evidence == ("T2:2",)


def test_offline_backlog_is_not_clock_skew(engine: AnomalyEngine) -> None:
    t = Chain("T1")
    # entries made a day ago while offline, synced now; the terminal rebooted in between (mono restarted)
    old = [t.add("sale", sale(), T0 - 86_400_000 + i * MIN, mono_step_ns=60_000_000_000) for i in range(3)]
    assert engine.on_event(t.batch(old, received_ms=T0)) == []
    assert engine.on_event(TerminalSeen("T1", "S1", T0 - 86_400_000, T0)) == []
    ahead = engine.on_event(TerminalSeen("T1", "S1", T0 + 3_600_000, T0))
    assert rules(ahead) == ["clock_skew"]


def test_silent_terminal_reported_once_per_silence(engine: AnomalyEngine) -> None:
    engine.on_event(TerminalSeen("T1", "S1", None, T0))
    engine.on_event(TerminalSeen("T2", "S1", None, T0 + 50 * MIN))
    assert engine.check_silent_terminals(T0 + 30 * MIN) == []
    found = engine.check_silent_terminals(T0 + 61 * MIN)
    assert [(f.rule, f.subject_id) for f in found] == [("terminal_silent", "T1")]
    assert engine.check_silent_terminals(T0 + 62 * MIN) == []
    engine.on_event(TerminalSeen("T1", "S1", None, T0 + 70 * MIN))
    assert [f.subject_id for f in engine.check_silent_terminals(T0 + 200 * MIN)] == ["T1", "T2"]


def test_silence_of_enrolled_terminals_and_not_of_disabled_ones(engine: AnomalyEngine, view: View) -> None:
    view.enrolled = {"T-new": ("active", "S1", T0), "T-off": ("disabled", "S1", T0), "T-wait": ("pending", "S1", None)}
    engine.on_event(TerminalSeen("T-off", "S1", None, T0))  # heard from once, then disabled by an admin
    found = engine.check_silent_terminals(T0 + 61 * MIN)
    assert [(f.rule, f.subject_id) for f in found] == [("terminal_silent", "T-new")]  # enrolled, never synced


def test_thresholds_from_rules_mapping() -> None:
    th = Thresholds.from_mapping({"ops_per_card_hour": 3, "not_a_threshold": 1})
    assert th.ops_per_card_hour == 3 and th.ops_per_card_day == Thresholds().ops_per_card_day
